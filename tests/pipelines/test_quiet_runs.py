"""A quiet account stays incremental, on the default loader too (issue 21, point 6).

A run that finds no change loads no row. target-duckdb 0.8.0 then hands Meltano only the FIRST
STATE message it received, so the tap's first STATE of a run must already be the run's own (not
the SDK's copy of the state it was given): otherwise the bookmark `meltano state get` shows never
moves while the account is quiet, its `since` grows old, and once it is older than the tap's
`since` window the next run is a full pass instead of one request. target-postgres hands on the
last STATE; it is checked alike.

Days pass for the whole pipeline: Toggl's clock by the stand-in's `clock_offset`, the host's
(Meltano's, the tap's, the loader's) by libfaketime (tests/support/faketime.py):

    day 0                    first run: a full pass, the bookmark when it began
    day 20, 40, ..., 100     a run each, nothing changed in Toggl: one request with `since`
                             each, and the bookmark moves to when it began

Each run's `since` is the bookmark of the run two before it, less the lookback (each run
re-reads the previous run's window, PROTOCOL): at most 40 days old here, under the tap's window,
where a bookmark stuck at day 0 would be 60 days old on day 60.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.settings import LOOKBACK_SECONDS
from tests.support.changes import requests_since
from tests.support.faketime import meltano_later
from tests.support.meltano import API_TOKEN, Meltano, meltano_project
from tests.support.plugins import install_plugins
from tests.support.postgres import (
    create_database,
    postgres_fixture,  # noqa: F401 - the `postgres` fixture
    sqlalchemy_url,
)
from tests.support.warehouse import duckdb_rows, postgres_rows
from toggl_standin.demo_data import format_at, make_task
from toggl_standin.server import TogglServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

TASKS = 12
EVERY = timedelta(days=20)
QUIET_RUNS = 5  # days 20 to 100


def recent_tasks() -> list[dict[str, Any]]:
    """Tasks changed in the days before the first run, none since."""
    now = datetime.now(UTC)
    return [
        make_task(i, active=i % 4 != 0, at=format_at(now - timedelta(days=i)))
        for i in range(1, TASKS + 1)
    ]


def since_of(moment: datetime) -> str:
    """The `since` the tap sends for a bookmark: whole seconds, less the lookback."""
    return str(math.floor(moment.timestamp()) - LOOKBACK_SECONDS)


def quiet_runs_stay_incremental(
    meltano: Meltano, toggl: TogglServer, loader: str, count_rows: Callable[[], int]
) -> None:
    """The module's timeline through `meltano run tap-toggl-tasks LOADER`; `count_rows` counts
    the loader's tasks table."""
    state_id = f"dev:tap-toggl-tasks-to-{loader}"
    meltano("run", "tap-toggl-tasks", loader)
    first = requests_since(toggl, 0)
    assert first, "the first run asked Toggl nothing"
    assert all("since" not in params for params in first), "a first sync reads every task"
    assert count_rows() == TASKS
    # The bookmarks `meltano state get` showed after each run: what the next run is given.
    bookmarks = [meltano.bookmark(state_id)]

    for run in range(1, QUIET_RUNS + 1):
        ahead = EVERY * run
        toggl.clock_offset = ahead
        before, began = len(toggl.requests), toggl.clock()

        done = meltano_later(meltano, ahead, "run", "tap-toggl-tasks", loader)

        sent = requests_since(toggl, before)
        day = f"the quiet run on day {ahead.days}"
        assert all("since" in params for params in sent), (
            f"{day} read without `since` (a full pass): its bookmark was too old. Requests: "
            f"{sent}\n{done.stderr[-3000:]}"
        )
        # The bookmark two runs back, less the lookback: the previous run's window re-read.
        expected = since_of(bookmarks[max(run - 2, 0)])
        assert [params["since"] for params in sent] == [expected], (
            f"{day} sent other requests than one with `since` {expected} (the bookmark of the "
            f"run two before, less the lookback): {sent}"
        )
        if done.returncode != 0:
            output = done.stdout + done.stderr
            pytest.fail(f"meltano run on day {ahead.days} exited {done.returncode}:\n{output}")
        moved = meltano.bookmark(state_id)
        # When the run began by Toggl's clock, to the second Toggl's Date header gives.
        assert began - timedelta(seconds=1) <= moved <= toggl.clock(), (
            f"after {day} `meltano state get` shows the bookmark {moved}, not when the run "
            f"began ({began}); the one before was {bookmarks[-1]}"
        )
        bookmarks.append(moved)
        assert count_rows() == TASKS


def test_quiet_runs_move_the_bookmark_and_stay_incremental_on_target_duckdb(
    tmp_path: Path,
) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb")
    with TogglServer(recent_tasks(), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)

        def count_rows() -> int:
            return int(
                duckdb_rows(meltano.warehouse, "select count(*) as n from toggl.tasks")[0]["n"]
            )

        quiet_runs_stay_incremental(meltano, toggl, "target-duckdb", count_rows)


def test_quiet_runs_move_the_bookmark_and_stay_incremental_on_target_postgres(
    postgres: str, tmp_path: Path
) -> None:
    install_plugins("tap-toggl-tasks", "target-postgres")
    url = create_database(postgres, "warehouse_quiet_runs")
    with TogglServer(recent_tasks(), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(
            tmp_path, toggl, TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(url)
        )

        def count_rows() -> int:
            return int(postgres_rows(url, "select count(*) as n from toggl.tasks")[0]["n"])

        quiet_runs_stay_incremental(meltano, toggl, "target-postgres", count_rows)
