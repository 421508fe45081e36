"""The DAG toggl_accounts, run by Airflow for real: one mapped task per account, into PostgreSQL.

Three local Toggl servers stand for three users, each with its own token and tasks; the third
refuses the token it is given. Meltano's state, the warehouse and (for the parallel run) Airflow's
own database live in a private PostgreSQL server.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_toggl_tasks.settings import LOOKBACK_SECONDS
from tests.support.meltano import Meltano, meltano_env
from tests.support.plugins import install_plugins
from tests.support.postgres import (
    create_database,
    postgres_fixture,  # noqa: F401 - the `postgres` fixture
    sqlalchemy_url,
)
from tests.support.processes import run, started
from tests.support.project import AIRFLOW_PYTHON, MELTANO_BIN, ROOT, make_project
from tests.support.warehouse import assert_warehouse_matches, awkward_tasks
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
TOKENS = {
    "acme": "tok-acme-never-print-me",
    "globex": "tok-globex-never-print-me",
    "initech": "tok-initech-revoked-never-print-me",
}
STATE_ID = "dev:tap-toggl-tasks-to-target-postgres:{}"
REFUSED = "Account initech: tap-toggl-tasks: Toggl refused the credentials (HTTP 403 Forbidden"


@pytest.fixture(scope="module")
def plugins_installed() -> None:
    install_plugins("tap-toggl-tasks", "target-postgres", "airflow")


@dataclass
class Accounts:
    """Toggl servers by account name, and the project environment that lists them."""

    servers: dict[str, TogglServer]
    meltano: Meltano
    warehouse: str
    airflow_home: Path
    accounts_file: Path

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`meltano invoke airflow ...`, whatever its exit code; no token may reach its output."""
        return self.meltano.run("invoke", "airflow", *args, timeout=600)

    def rows(self, account: str) -> list[dict[str, Any]]:
        import psycopg  # noqa: PLC0415 - only the pipeline tests need it
        from psycopg.rows import dict_row  # noqa: PLC0415

        with psycopg.connect(self.warehouse, row_factory=dict_row) as db:
            return db.execute(f"select * from toggl_{account}.tasks").fetchall()  # noqa: S608

    def tables(self) -> set[str]:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.warehouse) as db:
            found = db.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
                " where table_schema like 'toggl%'"
            ).fetchall()
            return {name for (name,) in found}

    def bookmark(self, account: str) -> datetime:
        return self.meltano.bookmark(STATE_ID.format(account))


@pytest.fixture
def accounts(
    postgres: str, tmp_path: Path, request: pytest.FixtureRequest, plugins_installed: None
) -> Iterator[Accounts]:
    """acme (40 tasks) and globex (30, some of them acme's too) work; initech's token is refused."""
    name = request.node.name.removeprefix("test_")[:40]
    acme_tasks = [make_task(i) for i in range(1, 41)] + awkward_tasks()
    globex_tasks = [make_task(i, name=f"Globex {i}") for i in range(31, 61)]
    with (
        TogglServer(acme_tasks, api_token=TOKENS["acme"]) as acme,
        TogglServer(globex_tasks, api_token=TOKENS["globex"]) as globex,
        TogglServer([make_task(99)], api_token="the-token-initech-has-now") as initech,
    ):
        servers = {"acme": acme, "globex": globex, "initech": initech}
        # Each token from another of the three places accounts.yml can name.
        sources = {
            "acme": {"token_env": "TOGGL_TOKEN_ACME"},
            "globex": {"token_variable": "toggl_token_globex"},
            "initech": {"token_connection": "toggl_initech"},
        }
        listed = [
            {"name": name, **source, "settings": {"api_url": servers[name].url}}
            for name, source in sources.items()
        ]
        accounts_file = tmp_path / "accounts.yml"
        accounts_file.write_text(yaml.safe_dump({"accounts": listed}))
        warehouse = create_database(postgres, f"warehouse_{name}")
        env = meltano_env(
            acme,
            MELTANO_DATABASE_URI=sqlalchemy_url(create_database(postgres, f"meltano_{name}")),
            TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(warehouse),
            AIRFLOW_HOME=str(tmp_path / "airflow"),
            TOGGL_ACCOUNTS_FILE=str(accounts_file),
            # One quick retry, so a run shows the failing account retried, and alone.
            TOGGL_ACCOUNTS_RETRIES="1",
            TOGGL_ACCOUNTS_RETRY_DELAY_SECONDS="1",
            TOGGL_TOKEN_ACME=TOKENS["acme"],
            AIRFLOW_VAR_TOGGL_TOKEN_GLOBEX=TOKENS["globex"],
            AIRFLOW_CONN_TOGGL_INITECH=json.dumps(
                {"conn_type": "http", "password": TOKENS["initech"]}
            ),
        )
        # No account may fall back on a token or server for all of them.
        del env["TAP_TOGGL_TASKS_API_TOKEN"], env["TAP_TOGGL_TASKS_API_URL"]
        meltano = Meltano(
            env, cwd=make_project(tmp_path / "project"), secrets=tuple(TOKENS.values())
        )
        yield Accounts(servers, meltano, warehouse, tmp_path / "airflow", accounts_file)


@contextmanager
def execution_api(accounts: Accounts) -> Iterator[None]:
    """Airflow's execution API, which executors' task processes report to, stopped at the end."""
    port = free_port()
    accounts.meltano.env.update(
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        # The server signs each task's token with it, and the task processes present it.
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
    )
    # Stopped at the end with its workers: `started` gives it a process group of its own.
    with started(
        [
            *(str(MELTANO_BIN / "meltano"), "invoke", "airflow", "api-server"),
            *("--apps", "execution", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        cwd=accounts.meltano.cwd,
        env=accounts.meltano.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        wait_for_http(f"http://127.0.0.1:{port}/execution/health", server, within=120)
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_http(url: str, process: subprocess.Popen[bytes], within: float) -> None:
    """Until the URL answers at all; fail if the process serving it exits first, or after
    `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server for {url} exited {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).close()  # noqa: S310 - our own loopback URL
        except urllib.error.HTTPError:
            return  # answering, if not this path
        except OSError:
            time.sleep(0.2)
        else:
            return
    pytest.fail(f"nothing answered at {url} in {within:.0f} s")


def task_instances(accounts: Accounts) -> dict[str, dict[str, Any]]:
    """The sync task's instances of the last DAG run, by account (SQLite metadata database)."""
    with sqlite3.connect(accounts.airflow_home / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "select rendered_map_index, state, try_number from task_instance"
            " where task_id = 'sync' and run_id = (select max(run_id) from dag_run)"
        ).fetchall()
    return {row["rendered_map_index"]: dict(row) for row in rows}


def airflow_task_instances(url: str) -> dict[str, dict[str, Any]]:
    """The sync task's instances, by account, from Airflow's PostgreSQL database."""
    import psycopg  # noqa: PLC0415
    from psycopg.rows import dict_row  # noqa: PLC0415

    with psycopg.connect(url.replace("+psycopg2", ""), row_factory=dict_row) as db:
        rows = db.execute(
            "select rendered_map_index, state, try_number, start_date, end_date, pool"
            " from task_instance where task_id = 'sync'"
        ).fetchall()
    return {row["rendered_map_index"]: row for row in rows}


def assert_no_token_in(folder: Path) -> None:
    """Logs, the metadata database (XComs, rendered templates): no file holds a token."""
    for path in folder.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for token in TOKENS.values():
                assert token.encode() not in content, f"a token is in {path}"


def test_each_account_syncs_in_its_own_mapped_task_and_fails_alone(accounts: Accounts) -> None:
    accounts.meltano("invoke", "airflow:migrate")
    accounts.meltano("invoke", "airflow:pool")
    acme, globex, initech = (accounts.servers[name] for name in ("acme", "globex", "initech"))

    first = accounts.airflow("dags", "test", "toggl_accounts", "2026-01-01")

    log = first.stdout + first.stderr
    assert REFUSED in log, log[-6000:]
    assert {
        name: (ti["state"], ti["try_number"]) for name, ti in task_instances(accounts).items()
    } == {
        "acme": ("success", 1),
        "globex": ("success", 1),
        "initech": ("failed", 2),
    }
    # Each good account synced once (a sync starts at offset 0; the tap decides how many pages
    # follow); the refused one was tried twice, and only it.
    assert [
        (sum(r.params.get("offset") == "0" for r in s.requests), {r.status for r in s.requests})
        for s in (acme, globex, initech)
    ] == [(1, {200}), (1, {200}), (2, {403})]
    first_sync = {name: len(accounts.servers[name].requests) for name in ("acme", "globex")}
    assert_warehouse_matches(accounts.rows("acme"), acme.tasks)
    assert_warehouse_matches(accounts.rows("globex"), globex.tasks)
    # Each account its own tables; the refused one's tasks stays empty (the loader made it at
    # SCHEMA), and its run stopped before tasks_listings' SCHEMA.
    assert accounts.tables() == {f"toggl_{name}.tasks" for name in TOKENS} | {
        f"toggl_{name}.tasks_listings" for name in ("acme", "globex")
    }
    assert accounts.rows("initech") == []
    # Each good account has a bookmark of its own: when its sync began, after its newest task.
    bookmarks = {name: accounts.bookmark(name) for name in ("acme", "globex")}
    for bookmark in bookmarks.values():
        assert datetime.now(UTC) - timedelta(minutes=30) < bookmark <= datetime.now(UTC)

    # Between runs, each account changes on its own.
    acme.modify(3, name="acme renamed 3")
    acme.delete(7)
    globex.add(name="globex new task")
    globex.mark_done(45)

    second = accounts.airflow("dags", "test", "toggl_accounts", "2026-01-02")

    assert REFUSED in second.stdout + second.stderr
    for name in ("acme", "globex"):
        server = accounts.servers[name]
        since = math.floor(bookmarks[name].timestamp()) - LOOKBACK_SECONDS
        # its changes: a page, the empty page after it, and the changes without per_page
        assert [r.params.get("since") for r in server.requests[first_sync[name] :]] == [
            str(since)
        ] * 3, f"{name} did not resume from its own bookmark"
        assert_warehouse_matches(accounts.rows(name), server.tasks)
    assert_no_token_in(accounts.airflow_home)


def test_the_readmes_trial_run_ends_with_the_failing_accounts_message(accounts: Accounts) -> None:
    """`dags test` as the README runs it: the default retries, which a trial run skips."""
    del accounts.meltano.env["TOGGL_ACCOUNTS_RETRIES"]
    del accounts.meltano.env["TOGGL_ACCOUNTS_RETRY_DELAY_SECONDS"]
    accounts.meltano("invoke", "airflow:migrate")
    accounts.meltano("invoke", "airflow:pool")

    # A retry would poll for its 30-minute delay: this bound fails such a run.
    done = run(
        [str(ROOT / "scripts" / "airflow_trial.py"), "toggl_accounts"],
        cwd=accounts.meltano.cwd,
        env=accounts.meltano.env,
        timeout=600,
        stderr_into_stdout=True,  # as a terminal shows the two streams
    )

    output = done.stdout
    for token in TOKENS.values():
        assert token not in output
    assert done.returncode != 0
    assert "up_for_retry" not in output, output[-3000:]
    assert [len(accounts.servers[name].requests) > 0 for name in TOKENS] == [True] * 3
    assert len(accounts.servers["initech"].requests) == 1  # no retry
    assert {name: ti["state"] for name, ti in task_instances(accounts).items()} == {
        "acme": "success",
        "globex": "success",
        "initech": "failed",
    }
    # What the user reads last: a heading, then the one failing account's message.
    heading, message = [line for line in output.splitlines() if line.strip()][-2:]
    assert heading == "The trial run of toggl_accounts failed; what went wrong:"
    assert message.startswith(REFUSED), output[-3000:]
    assert message.endswith("then run again.")


def test_an_executor_runs_the_accounts_at_the_same_time(accounts: Accounts, postgres: str) -> None:
    """LocalExecutor, with Airflow's own database in PostgreSQL, as in production."""
    airflow_db = create_database(postgres, "airflow_parallel").replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    accounts.meltano.env.update(
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_db, AIRFLOW__CORE__EXECUTOR="LocalExecutor"
    )
    # Each good account's first request waits, up to three minutes, for the other's to arrive: both
    # get through only if the two accounts' syncs are in flight together.
    met: list[str] = []
    both = threading.Barrier(2, timeout=180)

    def wait_for_the_other(server: TogglServer) -> None:
        both.wait()
        met.append(next(name for name, s in accounts.servers.items() if s is server))

    for name in ("acme", "globex"):
        accounts.servers[name].script(Fault(before=wait_for_the_other))
    # Taking an account out is editing the list: initech goes (and its retry with it).
    listed = yaml.safe_load(accounts.accounts_file.read_text())
    listed["accounts"] = [entry for entry in listed["accounts"] if entry["name"] != "initech"]
    accounts.accounts_file.write_text(yaml.safe_dump(listed))
    accounts.meltano("invoke", "airflow:migrate")
    accounts.meltano("invoke", "airflow:pool")

    with execution_api(accounts):
        done = accounts.airflow("dags", "test", "--use-executor", "toggl_accounts", "2026-01-01")

    log = done.stdout + done.stderr
    assert sorted(met) == ["acme", "globex"], log[-6000:]
    runs = airflow_task_instances(airflow_db)
    assert {name: (ti["state"], ti["try_number"], ti["pool"]) for name, ti in runs.items()} == {
        "acme": ("success", 1, "toggl_accounts"),
        "globex": ("success", 1, "toggl_accounts"),
    }
    assert re.search(r"DagRun Finished: [^\n]*, state=success,", log), log[-6000:]
    # Airflow's own record agrees: each good account's task started before the other ended.
    acme, globex = runs["acme"], runs["globex"]
    assert acme["start_date"] < globex["end_date"]
    assert globex["start_date"] < acme["end_date"]
    assert_warehouse_matches(accounts.rows("acme"), accounts.servers["acme"].tasks)
    assert_warehouse_matches(accounts.rows("globex"), accounts.servers["globex"].tasks)


# Runs inside Airflow's virtualenv: the DAG module's reading of accounts.yml and the environment
# it builds for one account's `meltano` process.
CHECK_ACCOUNTS = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import toggl_accounts as dag

answers = {}
for number, text in enumerate(json.loads(sys.argv[2])):
    path = Path(sys.argv[3]) / f"accounts{number}.yml"
    path.write_text(text)
    try:
        answers[text] = [account.name for account in dag.read_accounts(path)]
    except dag.AccountsError as error:
        answers[text] = str(error).replace(str(path), "accounts.yml")
listed = dag.read_accounts(path)
hidden = {name for account in listed for name in account.token_variables()}
worker = {"PATH": "/bin", "TOGGL_TOKEN_A": "a-secret", "AIRFLOW_VAR_TOKEN_B": "b-secret",
          "AIRFLOW_CONN_CONN_C": "c-secret", "TAP_TOGGL_TASKS_API_TOKEN": "worker-wide"}
print(json.dumps({"answers": answers, "env_a": listed[0].environment("a-secret", worker, hidden)}))
"""
GOOD_LIST = """accounts:
  - name: a
    token_env: TOGGL_TOKEN_A
    settings: {start_date: '2024-01-01', page_size: 500}
  - name: b
    token_variable: token_b
  - name: c
    token_connection: conn_c
"""


def test_accounts_file_mistakes_are_named_and_each_process_sees_one_token(
    plugins_installed: None, tmp_path: Path
) -> None:
    mistakes: dict[str, str | list[str]] = {
        "accounts:\n  - name: Acme\n    token_env: T\n": (
            "accounts.yml, account 1: name 'Acme' must be lowercase letters, digits and _, "
            "starting with a letter, at most 57 characters (it names the schema toggl_<name>)."
        ),
        "accounts:\n  - name: a\n    token_env: T\n  - name: a\n    token_env: U\n": (
            "accounts.yml, account 2: the name a is used twice."
        ),
        "accounts:\n  - name: a\n": (
            "accounts.yml, account 1 (a): give exactly one of token_env, token_variable, "
            "token_connection, naming where the token is; never the token itself."
        ),
        "accounts:\n  - name: a\n    token_env: T\n    settings: {api_token: tok}\n": (
            "accounts.yml, account 1 (a): credentials never go in this file; name where the "
            "token is with one of token_env, token_variable, token_connection."
        ),
        "accounts:\n": [],
        GOOD_LIST: ["a", "b", "c"],
    }
    dags = make_project(tmp_path / "project") / "orchestrate" / "dags"
    done = run(
        [
            *(str(AIRFLOW_PYTHON), "-c", CHECK_ACCOUNTS, str(dags)),
            *(json.dumps(list(mistakes)), str(tmp_path)),
        ],
        timeout=300,
        env={"PATH": os.environ["PATH"], "AIRFLOW_HOME": str(tmp_path / "airflow")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checked = json.loads(done.stdout.splitlines()[-1])

    assert checked["answers"] == mistakes
    # Account a's process: its token in the one variable the tap reads, no other account's.
    assert checked["env_a"] == {
        "PATH": "/bin",
        "TAP_TOGGL_TASKS_START_DATE": "2024-01-01",
        "TAP_TOGGL_TASKS_PAGE_SIZE": "500",
        "TAP_TOGGL_TASKS_API_TOKEN": "a-secret",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "toggl_a",
    }
