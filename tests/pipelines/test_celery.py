"""The DAG toggl_accounts on Airflow's CeleryExecutor, through the scheduler and the workers.

`scripts/celery-cluster start 2`, as docs/many-machines.md runs it: Redis, PostgreSQL, the
scheduler side and two Celery workers, each worker in a copy of the project of its own with its
own Meltano and plugins, and a host name of its own (which Airflow records as the task
instance's `hostname`: that is how the test knows which worker ran what). Runs are triggered with
the airflow CLI, as a user would, and the test waits for them in Airflow's database. The Toggl
stand-ins run in this process: one per account, each with its own tasks and token; `slow`
answers each request late and pages by 5, so its pass takes seconds; `revoked` refuses its token.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.environment import clean_environ
from tests.support.processes import run
from tests.support.project import ROOT
from tests.support.warehouse import assert_warehouse_matches, postgres_rows
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, RecordedRequest, TogglServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
SCRIPT = ROOT / "scripts" / "celery-cluster"
# Eight accounts that work: `slow` (first, so that it starts first) has 60 tasks, the others
# 7 to 31.
GOOD = {"slow": 60} | {f"acct{n}": 3 + 4 * n for n in range(1, 8)}
TOKENS = {name: f"tok-{name}-never-print-me" for name in [*GOOD, "revoked"]}
REFUSED = "Account revoked: tap-toggl-tasks: Toggl refused the credentials (HTTP 403 Forbidden"
SLOW_DELAY_SECONDS = 0.4
STATE_ID = "dev:tap-toggl-tasks-to-target-postgres:{}"


class TimedToggl(TogglServer):
    """The stand-in, also noting when each request arrived and when its answer was ready, and
    answering every request `delay` seconds late (a slow Toggl, or a long way to it)."""

    def __init__(self, *args: Any, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.times: dict[str, list[float]] = {}  # request id: [arrived, answered]
        self._current = threading.local()
        # Called once, as the first request with `since` (an incremental sync) arrives.
        self.before_first_since: Callable[[TogglServer], object] | None = None

    def _arrive(self, request: RecordedRequest) -> Fault | None:
        self.times[request.request_id] = [time.monotonic()]
        hook, self.before_first_since = self.before_first_since, None
        if hook is not None and "since" in request.params:
            hook(self)
        elif hook is not None:
            self.before_first_since = hook
        self._current.request_id = request.request_id
        fault = super()._arrive(request)
        return fault if fault is not None or not self.delay else Fault(delay=self.delay)

    def _respond(self, authorization: str | None, params: dict[str, str]) -> Any:
        answer = super()._respond(authorization, params)
        self.times[self._current.request_id].append(time.monotonic())
        return answer

    def intervals(self, since: int = 0) -> list[tuple[float, float]]:
        return [
            (self.times[r.request_id][0], self.times[r.request_id][-1])
            for r in self.requests[since:]
        ]


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]
    servers: dict[str, TimedToggl]
    settings: dict[str, str]  # cluster.env

    def airflow(self, *args: str) -> str:
        """`scripts/celery-cluster airflow ...`: the airflow CLI on the scheduler side."""
        done = run([str(SCRIPT), "airflow", *args], env=self.env, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        return output

    def sql(self, database: str, query: str, *params: Any) -> list[dict[str, Any]]:
        import psycopg  # noqa: PLC0415 - only the pipeline tests need it
        from psycopg.rows import dict_row  # noqa: PLC0415

        url = self.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/" + database, row_factory=dict_row) as db:
            return db.execute(query, params).fetchall()

    def wait_for_run(self, run_id: str, within: float = 240) -> str:
        """The run's final state, once it has one."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            rows = self.sql("airflow", "select state from dag_run where run_id = %s", run_id)
            if rows and rows[0]["state"] in ("success", "failed"):
                return str(rows[0]["state"])
            time.sleep(1)
        pytest.fail(f"DAG run {run_id} did not end in {within:.0f} s:\n{self.logs_tail()}")

    def syncs(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The sync task's instances of one run, by account: state, tries, worker."""
        rows = self.sql(
            "airflow",
            "select rendered_map_index as account, state, try_number, hostname"
            " from task_instance where task_id = 'sync' and run_id = %s",
            run_id,
        )
        return {row.pop("account"): row for row in rows}

    def tries(self, run_id: str, account: str) -> list[dict[str, Any]]:
        """Every try of one account's sync in one run, earlier tries from the history table.

        By map index (accounts.yml's order): a try that never ended has no rendered name."""
        query = (
            "select try_number, state, hostname, start_date, end_date from {}"
            " where task_id = 'sync' and run_id = %s and map_index = %s"
        )
        index = list(self.servers).index(account)
        rows = [
            *self.sql("airflow", query.format("task_instance_history"), run_id, index),
            *self.sql("airflow", query.format("task_instance"), run_id, index),
        ]
        return sorted(rows, key=lambda row: row["try_number"])

    def warehouse(self, account: str) -> list[dict[str, Any]]:
        url = self.settings["TARGET_POSTGRES_SQLALCHEMY_URL"].replace("+psycopg", "")
        return postgres_rows(url, f"select * from toggl_{account}.tasks")  # noqa: S608

    def worker_session(self, hostname: str) -> int:
        return int((self.folder / "workers" / hostname / "pid").read_text())

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {log}\n{log.read_text(errors='replace')[-2500:]}"
            for log in sorted(self.folder.glob("*/*.log")) + sorted(self.folder.glob("*/*/*.log"))
        )


def session_members(session: int) -> list[int]:
    """The live processes of a session (a worker's whole machine), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(stat.parent.name))
    return members


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("celery") / "cluster"
    servers = {
        name: TimedToggl(
            [make_task(i, name=f"{name} {i}") for i in range(1, count + 1)],
            api_token=TOKENS[name],
            delay=SLOW_DELAY_SECONDS if name == "slow" else 0.0,
        )
        for name, count in GOOD.items()
    }
    servers["revoked"] = TimedToggl([make_task(1)], api_token="the-token-it-has-now")
    for server in servers.values():
        server.start()
    accounts = [
        {
            "name": name,
            "token_env": f"TOGGL_TOKEN_{name.upper()}",
            "settings": {"api_url": server.url, **({"page_size": 5} if name == "slow" else {})},
        }
        for name, server in servers.items()
    ]
    accounts_file = folder.parent / "accounts.yml"
    accounts_file.write_text(yaml.safe_dump({"accounts": accounts}))
    env = clean_environ(
        CELERY_CLUSTER_DIR=str(folder),
        TOGGL_ACCOUNTS_FILE=str(accounts_file),
        # Runs only when triggered; a lost try retried 2 s after Airflow notices it is lost,
        # which a 20 s silence shows (the defaults: 30 minutes, 5 minutes).
        TOGGL_ACCOUNTS_SCHEDULE="none",
        TOGGL_ACCOUNTS_RETRIES="1",
        TOGGL_ACCOUNTS_RETRY_DELAY_SECONDS="2",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="2",
        # The tokens are in the workers' environment (token_env), as a secret store puts them.
        **{f"TOGGL_TOKEN_{name.upper()}": token for name, token in TOKENS.items()},
    )
    try:
        started = run([str(SCRIPT), "start", "2"], env=env, timeout=600, stderr_into_stdout=True)
        assert started.returncode == 0, started.stdout[-6000:]
        settings = dict(
            line.split("=", 1)
            for line in (folder / "cluster.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        yield Cluster(folder, env, servers, settings)
    finally:
        stopped = run([str(SCRIPT), "stop"], env=env, timeout=300, stderr_into_stdout=True)
        for server in servers.values():
            server.stop()
        assert stopped.returncode == 0, stopped.stdout[-3000:]
    assert not folder.exists()


def test_accounts_spread_over_two_workers_land_exact_and_one_fails_alone(
    cluster: Cluster,
) -> None:
    # Between the runs, every task of `slow` changes: the second run's pass is 15 pages too.
    def change_every_task(server: TogglServer) -> None:
        for task_id in list(server.tasks):
            server.modify(task_id, name=f"slow {task_id} renamed")

    cluster.servers["slow"].before_first_since = change_every_task
    cluster.airflow("dags", "unpause", "toggl_accounts")
    # Two runs back to back: the second waits for the first (test_a_worker_lost_mid_sync...).
    cluster.airflow("dags", "trigger", "toggl_accounts", "--run-id", "first")
    cluster.airflow("dags", "trigger", "toggl_accounts", "--run-id", "second")
    while not cluster.sql("airflow", "select 1 from task_instance where state = 'running'"):
        time.sleep(0.5)
    snapshot_redis(cluster)

    assert cluster.wait_for_run("first") == "failed"  # revoked fails, and only it

    syncs = cluster.syncs("first")
    assert {name: (ti["state"], ti["try_number"]) for name, ti in syncs.items()} == {
        **dict.fromkeys(GOOD, ("success", 1)),
        "revoked": ("failed", 2),
    }
    assert {ti["hostname"] for ti in syncs.values()} == {"worker-1", "worker-2"}
    for name in GOOD:
        assert_warehouse_matches(cluster.warehouse(name), cluster.servers[name].tasks)
    # The refused account asked twice (two tries), once each; no other account failed.
    assert [r.status for r in cluster.servers["revoked"].requests] == [403] * 2
    # Its message, one paragraph, in its task's log on the worker that ran its last try.
    worker = syncs["revoked"]["hostname"]
    index = list(cluster.servers).index("revoked")
    log = (
        cluster.folder
        / f"workers/{worker}/airflow/logs/dag_id=toggl_accounts/run_id=first/task_id=sync"
        / f"map_index={index}/attempt=2.log"
    ).read_text()
    messages = [line for line in log.splitlines() if REFUSED in line]
    assert messages, log[-3000:]
    assert "then run again." in messages[-1]


def test_a_worker_lost_mid_sync_is_retried_and_no_account_ever_syncs_twice_at_once(
    cluster: Cluster,
) -> None:
    """SIGKILL to every process of the worker syncing `slow` (its machine gone) mid-pass, while a
    second run waits behind the first: the account's try is retried on a worker, from the state
    in the shared system database, and lands exact; no account's syncs overlap."""
    slow = cluster.servers["slow"]
    before = len(slow.requests)  # the first run's
    # Slower still until the kill: from the first committed page to the kill takes a few seconds
    # of queries on a busy machine, and the pass must not end in them (a CI run saw it end).
    slow.delay = 3 * SLOW_DELAY_SECONDS
    # Mid-pass, a page of it committed: the shared state holds this run's pass (with `since`;
    # the first run's was without) past offset 0.
    deadline = time.monotonic() + 180
    while not (
        (stored := unfinished_pass(cluster, "slow"))
        and stored["since"] is not None
        and stored["pager"]["offset"] > 0
    ):
        assert time.monotonic() < deadline, cluster.logs_tail()
        time.sleep(0.2)
    # Its map index is 0: accounts.yml's order (the rendered name comes when the task ends).
    (lost,) = cluster.sql(
        "airflow",
        "select state, hostname from task_instance"
        " where task_id = 'sync' and run_id = 'second' and map_index = 0",
    )
    assert lost["state"] == "running"
    machine = cluster.worker_session(lost["hostname"])
    for pid in session_members(machine):
        os.kill(pid, signal.SIGKILL)
    killed_at = len(slow.requests)
    slow.delay = SLOW_DELAY_SECONDS
    snapshot_redis(cluster)  # the lost try's and the queued ones' messages
    deadline = time.monotonic() + 30
    while session_members(machine):  # SIGKILL takes effect soon, not at once
        assert time.monotonic() < deadline, session_members(machine)
        time.sleep(0.1)
    # What the killed try left in the shared system database: the pass it was in, and the offset
    # after its last committed page (the loader commits each page and passes its STATE on).
    stored = unfinished_pass(cluster, "slow")
    assert stored is not None, "the pass ended before the kill: slow the stand-in down more"
    # The killed run could not remove its folder, and the tap's config in it holds the token.
    left = cluster.folder / "workers" / lost["hostname"] / "project/.meltano/account-runs/slow"
    assert leaks_in({str(path): path.read_bytes() for path in machine_files(left)})
    # The machine comes back (`scripts/celery-cluster worker NAME`), while its lost tries wait;
    # the worker's start removes the folder.
    restarted = run([str(SCRIPT), "worker", lost["hostname"]], env=cluster.env, timeout=300)
    assert restarted.returncode == 0, restarted.stdout[-3000:] + restarted.stderr[-3000:]
    assert not left.exists()

    assert cluster.wait_for_run("second", within=300) == "failed"  # revoked

    tries = cluster.tries("second", "slow")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0]["hostname"] == lost["hostname"]
    states = {name: ti["state"] for name, ti in cluster.syncs("second").items()}
    assert states == {**dict.fromkeys(GOOD, "success"), "revoked": "failed"}
    # The retry went on from the shared state: the killed try's pass (its `since`), after the
    # last page it committed, not from offset 0; a page asked for and not committed is asked again.
    killed = slow.requests[before:killed_at]
    retried = slow.requests[killed_at:]
    asked = [int(request.params.get("offset", "0")) for request in killed]
    assert killed[0].params.get("since") is not None
    assert stored["since"] == int(killed[0].params["since"])
    assert 0 < stored["pager"]["offset"] <= max(asked) + 5, (stored["pager"], asked)
    assert retried[0].params.get("offset") == str(stored["pager"]["offset"])
    assert retried[0].params.get("since") == killed[0].params["since"]
    for name in GOOD:
        assert_warehouse_matches(cluster.warehouse(name), cluster.servers[name].tasks)
    # Never two syncs of one account at once: no two requests to its Toggl in flight together,
    # each sync's pages in order (a second sync would start again at offset 0 among them), and
    # in Airflow's own record no try started before the one before it ended.
    for name, server in cluster.servers.items():
        spans = sorted(server.intervals())
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), name
        resumed = {killed_at} if name == "slow" else set()
        for sync in syncs_of(server.requests, resumed):
            assert sync == sorted(set(sync)), (name, sync)
        tries = [t for run_id in ("first", "second") for t in cluster.tries(run_id, name)]
        tries.sort(key=lambda t: t["start_date"])
        assert all(b["start_date"] >= a["end_date"] for a, b in itertools.pairwise(tries))


def test_no_token_anywhere_and_nothing_local_left_on_the_workers(cluster: Cluster) -> None:
    """After the runs (a refused token, a worker killed mid-sync): no account's token, nor its
    Basic authorization, in the broker (snapshots taken while tasks were queued and running, and
    now), in any database of the cluster (Airflow's metadata: XComs, task instances, rendered
    fields, DAG run conf, its log table; the Celery results; Meltano's; the warehouse), or in any
    file of the scheduler's and the workers' machines (logs, Airflow homes, projects, run
    folders) or PostgreSQL's log. No worker holds a database file, nor a run folder."""
    snapshot_redis(cluster)
    places = readable_places(cluster)
    # What was read: the broker thrice, four databases, the task logs of both workers.
    assert len(REDIS_SNAPSHOTS) == 3
    assert b"toggl_accounts" in places["database airflow"]
    task_logs = [where for where in places if "/airflow/logs/dag_id=toggl_accounts/" in where]
    assert {where.split("/workers/")[-1].split("/")[0] for where in task_logs} == {
        "worker-1",
        "worker-2",
    }
    assert not leaks_in(places), leaks_in(places)  # where, never what

    workers = cluster.folder / "workers"
    databases = [
        path.relative_to(workers)
        for pattern in ("*.db", "*.db-*", "*.sqlite*", "*.duckdb*")
        for path in machine_files(workers)
        if path.match(pattern)
    ]
    assert not databases, databases
    # Each run removed its folder; the killed worker's start removed the killed run's.
    run_folders = [
        folder.relative_to(workers) for folder in workers.glob("*/project/.meltano/account-runs/*")
    ]
    assert not run_folders, run_folders


def readable_places(cluster: Cluster) -> dict[str, bytes]:
    """Everything a token could have reached, by where: the broker's snapshots, the databases
    dumped whole, every file of the machines but their virtualenvs, PostgreSQL's log."""
    places = {f"redis, snapshot {n}": data for n, data in enumerate(REDIS_SNAPSHOTS, 1)}
    for database in ("airflow", "celery_results", "meltano", "warehouse"):
        places[f"database {database}"] = pg_dump(cluster, database)
    postgres = Path((cluster.folder / "postgres-folder").read_text().strip())
    for path in [*machine_files(cluster.folder), *postgres.glob("*.log")]:
        places[str(path)] = path.read_bytes()
    return places


def leaks_in(places: dict[str, bytes]) -> list[str]:
    """Where a token, or its Authorization header, is."""
    return sorted(
        {where for where, data in places.items() for form in SECRET_FORMS if form in data}
    )


def unfinished_pass(cluster: Cluster, account: str) -> dict[str, Any] | None:
    """The pass an account's stored state resumes, from Meltano's table in the shared system
    database (what `meltano state get` shows), or None."""
    (row,) = cluster.sql(
        "meltano", "select completed_state from state where state_id = %s", STATE_ID.format(account)
    )
    state = row["completed_state"]
    tasks = (json.loads(state) if isinstance(state, str) else state)["singer_state"]["bookmarks"][
        "tasks"
    ]
    unfinished: dict[str, Any] | None = tasks.get("unfinished_sync")
    return unfinished


def syncs_of(requests: list[RecordedRequest], resumed: set[int]) -> list[list[int]]:
    """The offsets each sync asked for, a sync starting at offset 0 or resuming at a request
    whose index is in `resumed`."""
    syncs: list[list[int]] = []
    for index, request in enumerate(requests):
        offset = int(request.params.get("offset", "0"))
        if offset == 0 or index in resumed:
            syncs.append([])
        syncs[-1].append(offset)
    return syncs


# Runs in the scheduler side's Airflow virtualenv, which has the redis client.
REDIS_CONTENTS = """
import base64, binascii, json, sys, redis

def strings(value):
    if isinstance(value, str):
        yield value.encode()
        try:
            yield base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)

broker = redis.Redis.from_url(sys.argv[1])
out = []
for key in broker.scan_iter("*"):
    kind = broker.type(key).decode()
    values = {
        "string": lambda: [broker.get(key)],
        "list": lambda: broker.lrange(key, 0, -1),
        "hash": lambda: [b for pair in broker.hgetall(key).items() for b in pair],
        "set": lambda: list(broker.smembers(key)),
        "zset": lambda: broker.zrange(key, 0, -1),
    }[kind]()
    out.append(key)
    for value in values:
        out.append(value)
        try:
            out.extend(strings(json.loads(value)))
        except ValueError:
            pass
sys.stdout.buffer.write(b"\\n".join(out))
"""
REDIS_SNAPSHOTS: list[bytes] = []


def snapshot_redis(cluster: Cluster) -> None:
    """Every key and value in the broker now, for the token scan at the end."""
    python = cluster.folder / "scheduler/project/.meltano/utilities/airflow/venv/bin/python"
    done = subprocess.run(
        [str(python), "-c", REDIS_CONTENTS, cluster.settings["AIRFLOW__CELERY__BROKER_URL"]],
        capture_output=True,
        timeout=60,
        check=True,
    )
    REDIS_SNAPSHOTS.append(done.stdout)


# Each token, the Authorization header that carries it, and both as the hex of a bytea column.
SECRET_FORMS = [
    form
    for token in TOKENS.values()
    for plain in (token.encode(), base64.b64encode(f"{token}:api_token".encode()))
    for form in (plain, plain.hex().encode())
]


def pg_dump(cluster: Cluster, database: str) -> bytes:
    """One database of the cluster's PostgreSQL, whole, as SQL text."""
    url = cluster.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
    done = subprocess.run(
        ["pg_dump", url.rsplit("/", 1)[0] + "/" + database],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def machine_files(folder: Path) -> list[Path]:
    """Every file under the machines' folders but the installed virtualenvs (the packages)."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [name for name in dirs if name not in ("venv", ".meltano-venv")]
        files += [Path(root, name) for name in names if not Path(root, name).is_symlink()]
    return files
