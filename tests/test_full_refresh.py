"""A sync without state (first run, --full-refresh, state cleared) also brings deletions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import TapRun, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer


def upsert(warehouse: dict[int, dict[str, Any]], run: TapRun) -> None:
    """A loader that upserts by primary key: the later record of a task wins."""
    assert run.returncode == 0, run.stderr
    for record in run.records:
        warehouse[record["id"]] = record


def test_a_task_deleted_before_a_full_refresh_reaches_the_warehouse_deleted(
    tmp_path: Path,
) -> None:
    # Issue 8.2: sync; delete task 3; a minute later edit task 5; full refresh; two runs.
    warehouse: dict[int, dict[str, Any]] = {}
    with TogglServer([make_task(i) for i in range(1, 11)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token)
        upsert(warehouse, first := run_tap(config, tmp_path))
        toggl.delete(3)
        toggl.clock_offset += timedelta(minutes=1)
        toggl.modify(5, name="edited")
        before_refresh = len(toggl.requests)
        upsert(warehouse, refresh := run_tap(config, tmp_path))  # no state
        refresh_requests = len(toggl.requests) - before_refresh
        upsert(warehouse, second := run_tap(config, tmp_path, state=refresh.final_state))
        upsert(warehouse, run_tap(config, tmp_path, state=second.final_state))

    assert first.returncode == 0
    # One pass since the start of time: every task, the deleted one marked (plus the check of
    # the short page that a first sync makes).
    assert refresh_requests == 2
    assert {r["id"] for r in refresh.records} == set(range(1, 11))
    assert warehouse[3]["server_deleted_at"] is not None
    assert warehouse[5]["name"] == "edited"
    live = {task_id for task_id, row in warehouse.items() if row["server_deleted_at"] is None}
    assert live == set(range(1, 11)) - {3}


def test_when_toggl_refuses_since_from_the_start_of_time_the_sync_goes_on_without(
    tmp_path: Path,
) -> None:
    with TogglServer([make_task(i) for i in range(1, 11)], oldest_since=1) as toggl:
        toggl.delete(3)
        config = config_for(toggl, api_token=toggl.api_token)
        run = run_tap(config, tmp_path)
        again = run_tap(config, tmp_path, state=run.final_state)

    assert run.returncode == 0, run.stderr
    assert [(r.params.get("since"), r.status) for r in toggl.requests[:3]] == [
        ("0", 400),
        (None, 200),
        (None, 200),
    ]
    assert "Toggl refused `since` from the start of time" in run.stderr
    assert "leaves out the tasks deleted before it" in run.stderr
    assert sorted(r["id"] for r in run.records) == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    # later runs have a bookmark, and ask `since` it as usual
    assert again.returncode == 0, again.stderr
    assert toggl.requests[-1].params["since"] != "0"
