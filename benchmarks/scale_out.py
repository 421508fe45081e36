"""Accounts per minute of the DAG toggl_accounts on Airflow's CeleryExecutor, by worker count.

    python -m benchmarks.scale_out [--accounts 12] [--latency 0.3] [--workers 1,2,4]

One cluster (scripts/celery-cluster) on this machine, one stand-in Toggl per account in this
process, each answering every request `latency` seconds late (300 ms: a request from Europe to
Toggl's API, answered); each account has 300 tasks, one page. For each worker count, the
workers run one account at a time each (CELERY_WORKER_CONCURRENCY=1) and the state and
warehouse are emptied first, so that every measured run is every account's first sync. The
figure is accounts divided by the minutes from the first account's start to the last one's end
(Airflow's own record of the task instances). A benchmark, not a test: it prints what it saw,
with the load average before the cluster starts and after each measure (other work on the
machine shows in it), and leaves nothing behind (its cluster stopped, its folder deleted).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, RecordedRequest, TogglServer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "celery-cluster"


class LateToggl(TogglServer):
    """The stand-in, answering every request `latency` seconds late."""

    def __init__(self, *args: Any, latency: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latency = latency

    def _arrive(self, request: RecordedRequest) -> Fault | None:
        return super()._arrive(request) or Fault(delay=self.latency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    names = [f"bench{n}" for n in range(1, args.accounts + 1)]
    servers = {
        name: LateToggl(
            [make_task(i) for i in range(1, 301)], api_token=f"tok-{name}", latency=args.latency
        ).start()
        for name in names
    }
    with tempfile.TemporaryDirectory(prefix="scale-out-") as folder:
        return measure(args, servers, names, Path(folder), counts)


def measure(
    args: argparse.Namespace,
    servers: dict[str, TogglServer],
    names: list[str],
    folder: Path,
    counts: list[int],
) -> int:
    accounts = folder / "accounts.yml"
    entries = [
        {"name": name, "token_env": f"TOGGL_TOKEN_{name.upper()}", "settings": {"api_url": s.url}}
        for name, s in servers.items()
    ]
    accounts.write_text(yaml.safe_dump({"accounts": entries}))
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MELTANO", "TOGGL"))
        },
        "CELERY_CLUSTER_DIR": str(folder / "cluster"),
        "CELERY_WORKER_CONCURRENCY": "1",
        "TOGGL_ACCOUNTS_FILE": str(accounts),
        "TOGGL_ACCOUNTS_SCHEDULE": "none",
        "TOGGL_ACCOUNTS_RETRIES": "0",
        **{f"TOGGL_TOKEN_{name.upper()}": f"tok-{name}" for name in names},
    }
    print(
        f"{args.accounts} accounts of 300 tasks, {args.latency * 1000:.0f} ms per response; "
        f"{os.cpu_count()} cores, load average {load()} before the cluster starts",
        flush=True,
    )
    try:
        cluster(env, "services")
        cluster(env, "scheduler")
        cluster(env, "airflow", "pools", "set", "toggl_accounts", str(max(counts)), "benchmark")
        cluster(env, "airflow", "dags", "unpause", "toggl_accounts")
        running = 0
        for count in counts:
            for number in range(running + 1, count + 1):
                cluster(env, "worker", f"worker-{number}")
            running = count
            settings = read_settings(folder / "cluster" / "cluster.env")
            empty_state_and_warehouse(settings, names)
            run_id = f"workers-{count}"
            cluster(env, "airflow", "dags", "trigger", "toggl_accounts", "--run-id", run_id)
            first, last, states = wait_for(settings, run_id)
            minutes = (last - first).total_seconds() / 60
            print(
                f"{count} worker(s): {args.accounts / minutes:5.1f} accounts a minute "
                f"({(last - first).total_seconds():.0f} s; {states}; load average {load()})",
                flush=True,
            )
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, capture_output=True)
        for server in servers.values():
            server.stop()
    return 0


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine shows in them."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def cluster(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(
            f"celery-cluster {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )


def read_settings(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def database(settings: dict[str, str], name: str) -> str:
    url = settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
    return url.rsplit("/", 1)[0] + "/" + name


def empty_state_and_warehouse(settings: dict[str, str], names: list[str]) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(database(settings, "meltano"), autocommit=True) as db:
        if db.execute("select to_regclass('state')").fetchone() != (None,):
            db.execute("delete from state")
    with psycopg.connect(database(settings, "warehouse"), autocommit=True) as db:
        for name in names:
            db.execute(f"drop schema if exists toggl_{name} cascade")


def wait_for(settings: dict[str, str], run_id: str) -> tuple[Any, Any, dict[str, int]]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(database(settings, "airflow"), autocommit=True) as db:
        while True:
            (state,) = db.execute(
                "select state from dag_run where run_id = %s", (run_id,)
            ).fetchone() or (None,)
            if state in ("success", "failed"):
                break
            time.sleep(1)
        first, last = db.execute(
            "select min(start_date), max(end_date) from task_instance"
            " where run_id = %s and task_id = 'sync'",
            (run_id,),
        ).fetchone() or (None, None)
        rows = db.execute(
            "select state, count(*) from task_instance where run_id = %s and task_id = 'sync'"
            " group by state",
            (run_id,),
        ).fetchall()
    return first, last, {str(state): int(n) for state, n in rows}


if __name__ == "__main__":
    sys.exit(main())
