"""A sync without state (first run, --full-refresh, state cleared) reads every task without
`since`: Toggl lists no deleted task then, so the warehouse learns of deletions other ways."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.support.tap_runs import config_for, run_tap
from tests.support.warehouse_model import Warehouse
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer


def test_a_task_deleted_before_a_full_refresh_reaches_the_warehouse_deleted(
    tmp_path: Path,
) -> None:
    # Sync; delete task 3; a minute later edit task 5; full refresh (no state); two runs.
    with TogglServer([make_task(i) for i in range(1, 11)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token)
        first = run_tap(config, tmp_path)
        toggl.delete(3)
        toggl.clock_offset += timedelta(minutes=1)
        toggl.modify(5, name="edited")
        before_refresh = len(toggl.requests)
        refresh = run_tap(config, tmp_path)  # no state
        refresh_requests = len(toggl.requests) - before_refresh
        second = run_tap(config, tmp_path, state=refresh.final_state)
        third = run_tap(config, tmp_path, state=second.final_state)

    runs = (first, refresh, second, third)
    assert [run.returncode for run in runs] == [0, 0, 0, 0]
    # One pass without `since` (a page, the empty page after it, the whole list): every task.
    assert refresh_requests == 3
    assert {r["id"] for r in refresh.records} == set(range(1, 11)) - {3}
    messages = [message for run in runs for message in run.messages]
    # A loader that honours ACTIVATE_VERSION (target-postgres) marks task 3's row deleted...
    postgres = Warehouse(activate_version=True).load(messages)
    assert postgres.marked_deleted(3)
    assert postgres.rows[5]["name"] == "edited"
    assert {i for i in postgres.rows if not postgres.marked_deleted(i)} == set(range(1, 11)) - {3}
    # ...and one that ignores it (target-duckdb) has the listing: stg_tasks' rule marks it.
    duckdb = Warehouse(activate_version=False).load(messages)
    assert duckdb.marked_deleted(3)
    assert duckdb.rows[3]["name"] == "Task 3"  # marked, never erased


def test_a_deletion_seen_by_a_pass_without_since_marks_the_row_and_keeps_its_fields(
    tmp_path: Path,
) -> None:
    with TogglServer([make_task(i) for i in range(1, 11)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, include_not_active=False)
        first = run_tap(config, tmp_path)
        toggl.delete(3)
        # a change of filter makes the next run read every task again, without `since`
        again = run_tap({**config, "include_not_active": True}, tmp_path, state=first.final_state)

    assert again.returncode == 0, again.stderr
    assert not any("since" in r.params for r in toggl.requests[-3:])
    assert 3 not in {r["id"] for r in again.records}  # no tombstone: nothing is erased
    assert again.listings[0]["tasks_listed"] == 9
    for activate_version in (True, False):
        warehouse = Warehouse(activate_version=activate_version)
        warehouse.load(first.messages + again.messages)
        assert warehouse.marked_deleted(3)
        assert warehouse.rows[3]["name"] == "Task 3"
        assert {i for i in warehouse.rows if warehouse.marked_deleted(i)} == {3}
