"""A task deleted in Toggl while the pipeline was paused past Toggl's `since` window, or before
a full refresh, ends up deleted in both warehouses (issue 15, section 3), and keeps what the
warehouse knew of it (issue 21, point 2).

Toggl refuses (or answers empty) a `since` older than about three months, so the tap never sends
one older than 60 days by the host's clock: after a longer pause it reads the whole task list
without `since`, and that list holds no deleted tasks. The tap writes no tombstone: every task
record carries the pass's `_sdc_table_version`, and a complete pass without `since` writes a
`tasks_listings` record with that version. A task the listing lacks keeps its row as it was last
loaded (name, project, hours), with an older `_sdc_table_version`: stg_tasks says `deleted`,
`deleted_at` when the first listing that missed it began, and project_hours leaves it out.

Days pass for the whole pipeline: the stand-in's clock by its `clock_offset`, the host's clock
(the tap's, the loader's and dbt's) by libfaketime around the second `meltano run`:

    day 0     first run: 20 tasks, changed in the 20 days before, 4 of them done
    day 20    a task deleted in Toggl (80 days before the next run)
    day 99    a done task renamed
    day 100   the next run, by Toggl's clock and the host's
    day 101   another task deleted
    day 102   `meltano run --full-refresh`: the tap gets no state, and target-duckdb ignores
              ACTIVATE_VERSION; the `tasks_listings` row the complete pass writes is what lets
              stg_tasks say `deleted` (older `_sdc_table_version`), in both warehouses alike
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.changes import requests_since
from tests.support.faketime import meltano_later
from tests.support.meltano import API_TOKEN, Meltano, meltano_project
from tests.support.plugins import install_plugins
from tests.support.postgres import (
    create_database,
    postgres_fixture,  # noqa: F401 - the `postgres` fixture
    sqlalchemy_url,
)
from tests.support.warehouse import assert_mart_matches, duckdb_rows, postgres_rows
from toggl_standin.demo_data import format_at, make_task, parse_at
from toggl_standin.server import SINCE_WINDOW, TogglServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

TASKS = 20
DELETED = 7  # open until deleted
RENAMED = 10  # done (every fifth task is)
NEW_NAME = 'Renamed on day 99: "v2" ✓'
DELETED_BEFORE_REFRESH = 13  # open until deleted
DELETED_ON = timedelta(days=20)
RENAMED_ON = timedelta(days=99)
PAUSE = timedelta(days=100)
# What a deleted task must keep, in stg_tasks and in the loader's own table.
KEPT = ("task_name", "project_name", "hours_tracked")
SELECT_STAGING = (
    "select task_id, task_name, project_name, hours_tracked, status, deleted_at"
    " from toggl_analytics.stg_tasks"
)
SELECT_RAW = "select id, name, project_name, tracked_seconds from toggl.tasks"
SELECT_MART = "select * from toggl_analytics.project_hours"


def recent_tasks() -> list[dict[str, Any]]:
    """Tasks changed on the days before the first run, so that the first run's bookmark (when it
    began, or the newest `at`) is recent: only a clock moved 100 days on makes it too old for a
    `since`."""
    now = datetime.now(UTC)
    return [
        make_task(i, active=i % 5 != 0, at=format_at(now - timedelta(days=TASKS - i + 1)))
        for i in range(1, TASKS + 1)
    ]


def expected_staging(toggl: TogglServer) -> dict[int, dict[str, Any]]:
    """What stg_tasks must say of each task Toggl has, deleted ones included: its status, and
    the name, project and hours Toggl had for it (a deletion keeps them: Toggl does too)."""
    rows: dict[int, dict[str, Any]] = {}
    for task_id, task in toggl.tasks.items():
        if task["server_deleted_at"] is not None:
            status = "deleted"
        else:
            status = "done" if task["active"] is False else "open"
        rows[task_id] = {
            "status": status,
            "task_name": task["name"],
            "project_name": task["project_name"],
            # tracked_seconds is milliseconds, as stg_tasks divides it
            "hours_tracked": task["tracked_seconds"] / 3_600_000,
        }
    return rows


def utc(moment: datetime) -> datetime:
    """Both warehouses hand back stg_tasks' timestamps without a zone, in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Warehouse:
    """One of the warehouses we ship: the Meltano job that loads it and builds the models, and
    a query on it (rows as dicts)."""

    job: str
    query: Callable[[str], list[dict[str, Any]]]


def staging_by_id(toggl: TogglServer, warehouse: Warehouse) -> dict[int, dict[str, Any]]:
    """stg_tasks by task id, checked against Toggl's tasks: one row per task Toggl has (deleted
    ones included), each with its status, name, project and hours; the loader's own table
    keeps the deleted ones' fields too, and project_hours leaves them out."""
    rows = warehouse.query(SELECT_STAGING)
    by_id = {row["task_id"]: row for row in rows}
    assert len(by_id) == len(rows), "stg_tasks holds a task twice"
    assert len(rows) == len(toggl.tasks), "stg_tasks and Toggl hold different numbers of tasks"
    expected = expected_staging(toggl)
    landed = {
        task_id: {name: by_id[task_id][name] for name in want} if task_id in by_id else None
        for task_id, want in expected.items()
    }
    assert landed == expected
    raw = {row["id"]: row for row in warehouse.query(SELECT_RAW)}
    assert len(raw) == len(toggl.tasks), "toggl.tasks and Toggl hold different numbers of tasks"
    assert {
        task_id: (row["name"], row["project_name"], row["tracked_seconds"])
        for task_id, row in raw.items()
    } == {
        task_id: (task["name"], task["project_name"], task["tracked_seconds"])
        for task_id, task in toggl.tasks.items()
    }, "the loader's table lost or changed a task's fields"
    assert_mart_matches(warehouse.query(SELECT_MART), toggl.tasks)
    return by_id


def deleted_during_a_long_pause_shows_deleted(
    meltano: Meltano, toggl: TogglServer, warehouse: Warehouse
) -> None:
    """The module's timeline on one warehouse, then stg_tasks checked against Toggl's tasks."""
    meltano("run", warehouse.job)
    first = staging_by_id(toggl, warehouse)
    assert {row["status"] for row in first.values()} == {"open", "done"}
    assert toggl.requests, "the first run asked Toggl nothing"
    kept = {name: first[DELETED][name] for name in KEPT}

    toggl.clock_offset = DELETED_ON
    toggl.delete(DELETED)
    toggl.clock_offset = RENAMED_ON
    toggl.modify(RENAMED, name=NEW_NAME)
    toggl.clock_offset = PAUSE
    before = len(toggl.requests)

    done = meltano_later(meltano, PAUSE, "run", warehouse.job)

    # Checked before the run's outcome: it shows whether the tap saw the clock 100 days on.
    sent = requests_since(toggl, before)
    assert sent, f"the run after the pause asked Toggl nothing:\n{done.stderr[-6000:]}"
    with_since = [params for params in sent if "since" in params]
    assert not with_since, (
        "the run 100 days after the last one (whose bookmark was at most 20 days old then) "
        f"sent `since`: the tap must send none older than 60 days by the host's clock (Toggl "
        f"refuses one older than {SINCE_WINDOW.days}): {with_since}"
    )
    if done.returncode != 0:
        output = done.stdout + done.stderr
        pytest.fail(f"meltano run {warehouse.job} exited {done.returncode}:\n{output[-6000:]}")

    by_id = staging_by_id(toggl, warehouse)
    assert by_id[DELETED]["status"] == "deleted"
    # what the first run loaded, kept though Toggl's listing no longer has the task
    assert {name: by_id[DELETED][name] for name in KEPT} == kept
    assert by_id[RENAMED]["task_name"] == NEW_NAME
    # The tap cannot know when the task was deleted, only that it was gone when the listing
    # that missed it began: never earlier than Toggl's deletion.
    deleted_at = by_id[DELETED]["deleted_at"]
    assert deleted_at is not None
    assert utc(deleted_at) >= parse_at(toggl.tasks[DELETED]["server_deleted_at"])

    deleted_before_a_full_refresh_shows_deleted(meltano, toggl, warehouse)


def deleted_before_a_full_refresh_shows_deleted(
    meltano: Meltano, toggl: TogglServer, warehouse: Warehouse
) -> None:
    """Day 101 and 102: a deletion no state remembers, found by the listing alone."""
    earlier = staging_by_id(toggl, warehouse)
    toggl.clock_offset = PAUSE + timedelta(days=1)
    toggl.delete(DELETED_BEFORE_REFRESH)
    toggl.clock_offset = PAUSE + timedelta(days=2)
    before = len(toggl.requests)

    # The host's clock as it is: a full refresh sends no `since`, whatever the day.
    meltano("run", "--full-refresh", warehouse.job)

    assert all("since" not in params for params in requests_since(toggl, before))
    by_id = staging_by_id(toggl, warehouse)
    assert by_id[DELETED_BEFORE_REFRESH]["status"] == "deleted"
    assert {name: by_id[DELETED_BEFORE_REFRESH][name] for name in KEPT} == {
        name: earlier[DELETED_BEFORE_REFRESH][name] for name in KEPT
    }
    # The task deleted in the pause stays as the listing after the pause left it.
    assert by_id[DELETED] == earlier[DELETED]
    # when the listing that missed it began: after the deletion, by Toggl's clock
    deleted_at = by_id[DELETED_BEFORE_REFRESH]["deleted_at"]
    assert deleted_at is not None
    deleted = parse_at(toggl.tasks[DELETED_BEFORE_REFRESH]["server_deleted_at"])
    assert deleted <= utc(deleted_at) <= deleted + timedelta(days=2)


def test_tasks_deleted_in_a_100_day_pause_or_before_a_full_refresh_show_deleted_in_duckdb(
    tmp_path: Path,
) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb", "dbt-duckdb")
    with TogglServer(recent_tasks(), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)
        warehouse = Warehouse("toggl-to-duckdb", lambda sql: duckdb_rows(meltano.warehouse, sql))
        deleted_during_a_long_pause_shows_deleted(meltano, toggl, warehouse)


def test_tasks_deleted_in_a_100_day_pause_or_before_a_full_refresh_show_deleted_in_postgres(
    postgres: str, tmp_path: Path
) -> None:
    install_plugins("tap-toggl-tasks", "target-postgres", "dbt-postgres")
    url = create_database(postgres, "warehouse_deletions")
    with TogglServer(recent_tasks(), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(
            tmp_path, toggl, TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(url)
        )
        warehouse = Warehouse("toggl-to-postgres", lambda sql: postgres_rows(url, sql))
        deleted_during_a_long_pause_shows_deleted(meltano, toggl, warehouse)
