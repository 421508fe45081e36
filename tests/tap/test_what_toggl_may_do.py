"""Whatever Toggl's pages do, no task is lost and no live task is marked deleted.

Each test is one thing Toggl may do (it documents neither its order nor its page lengths), tried on
the real HTTP stand-in with the tap in this process (tests/support/in_process.py), and the messages
loaded into both warehouse models (tests/support/warehouse_model.py: as target-postgres, honouring
ACTIVATE_VERSION; as target-duckdb, with stg_tasks' listing rule).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.in_process import last_state, sync
from tests.support.tap_runs import config_for, run_tap
from tests.support.warehouse_model import Warehouse, as_emitted
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

DAYS_100 = timedelta(days=100)


def tasks(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [make_task(i, **fields) for i in range(1, count + 1)]


def settings(toggl: TogglServer, **overrides: Any) -> dict[str, Any]:
    return {
        "api_token": toggl.api_token,
        "api_url": toggl.url,
        "request_interval_seconds": 0,
        "max_quota_wait_seconds": 0,
        "page_size": 10,
        **overrides,
    }


def assert_warehouses_equal_toggl(toggl: TogglServer, messages: list[dict[str, Any]]) -> None:
    """Both warehouses hold every live task as Toggl has it, and mark none of them deleted."""
    for warehouse in (Warehouse(activate_version=True), Warehouse(activate_version=False)):
        warehouse.load(messages)
        for task_id, task in toggl.tasks.items():
            if task["server_deleted_at"]:
                continue
            assert not warehouse.marked_deleted(task_id), f"live task {task_id} marked deleted"
            assert task_id in warehouse.rows, f"task {task_id} missing"
            assert as_emitted(warehouse.rows[task_id]) == as_emitted(task), f"task {task_id} stale"


def later(toggl: TogglServer, by: timedelta) -> datetime:
    """Days pass on Toggl's clock and on this machine's: the host time to run at."""
    toggl.clock_offset += by
    return datetime.now(UTC) + toggl.clock_offset


def test_one_empty_answer_to_a_full_pass_marks_nothing_deleted() -> None:
    with TogglServer(tasks(25)) as toggl:
        first, _ = sync(settings(toggl), None)
        host = later(toggl, DAYS_100)  # past the `since` window: a full pass
        toggl.script(Fault(body="null"))
        second, finished = sync(settings(toggl), last_state(first, None), host)

        assert finished
        assert_warehouses_equal_toggl(toggl, first + second)
        # The snapshot held every task; the empty page did not: no listing this time.
        assert [
            m for m in second if m["type"] == "RECORD" and m["stream"] == "tasks_listings"
        ] == []
        assert not any(m["type"] == "ACTIVATE_VERSION" for m in second)


def test_a_cap_that_drops_mid_pass_loses_nothing() -> None:
    with TogglServer(tasks(30)) as toggl:
        toggl.after_limit = lambda number, rows: rows[:7] if number == 2 else rows
        messages, finished = sync(settings(toggl), None)

        assert finished
        assert_warehouses_equal_toggl(toggl, messages)
        offsets = [r.params.get("offset") for r in toggl.requests]
        assert offsets == ["0", "10", "17", "27", "30", None]  # the last: the snapshot


def test_a_row_filtered_out_after_limit_does_not_lose_an_incremental_run_s_edits() -> None:
    with TogglServer(tasks(30)) as toggl:
        first, _ = sync(settings(toggl), None)
        later(toggl, timedelta(hours=1))
        for task_id in range(1, 16):
            toggl.modify(task_id, name=f"edited {task_id}")
        # Page 1 of the changes loses one row after LIMIT (a filter applied too late).
        toggl.after_limit = lambda number, rows: rows[:4] + rows[5:] if number == 7 else rows
        second, finished = sync(settings(toggl), last_state(first, None))

        assert finished
        assert_warehouses_equal_toggl(toggl, first + second)


def test_ties_in_an_unstable_order_miss_nothing_and_mark_nothing_deleted() -> None:
    # 40 tasks of one minute, in another order on every request (ORDER BY without a unique key).
    with TogglServer(tasks(40, at="2026-11-01T10:00:00.000000Z"), order="ties") as toggl:
        first, finished = sync(settings(toggl), None)
        assert finished
        assert_warehouses_equal_toggl(toggl, first)
        refresh, finished = sync(settings(toggl), None)  # a --full-refresh
        assert finished
        assert_warehouses_equal_toggl(toggl, first + refresh)


def test_an_edit_that_moves_a_task_to_a_page_already_read_is_neither_lost_nor_deleted() -> None:
    # Newest first: an edit during a full pass moves the task to page 1, read already.
    with TogglServer(tasks(25), order="at_desc") as toggl:
        first, _ = sync(settings(toggl), None)
        host = later(toggl, DAYS_100)
        toggl.script(None, Fault(before=lambda server: server.modify(3, name="renamed")))
        second, finished = sync(settings(toggl), last_state(first, None), host)

        assert finished
        assert_warehouses_equal_toggl(toggl, first + second)
        assert [m["record"]["name"] for m in second if m.get("record", {}).get("id") == 3] == [
            "renamed"
        ]


def test_a_busy_account_ends_with_a_bookmark_and_stops_repeating_full_passes() -> None:
    # Oldest first: an edit between any two requests moves a read task behind the unread ones.
    with TogglServer(tasks(100), order="at") as toggl:
        edits = iter(range(1, 101))
        toggl.script(
            *[Fault(before=lambda s: s.modify(next(edits), name="busy")) for _ in range(40)]
        )
        first, finished = sync(settings(toggl), None)
        state = last_state(first, None)

        assert finished
        assert state["bookmarks"]["tasks"]["replication_key_value"] is not None
        before = len(toggl.requests)
        second, _ = sync(settings(toggl), state)
        assert all("since" in r.params for r in toggl.requests[before:])
        assert_warehouses_equal_toggl(toggl, first + second)


def test_a_task_listed_twice_in_a_page_loses_no_other_task() -> None:
    with TogglServer(tasks(35)) as toggl:
        # A join that fans out after LIMIT: the first row of every page comes twice.
        toggl.after_limit = lambda number, rows: rows[:1] + rows if rows else rows
        first, finished = sync(settings(toggl), None)

        assert finished
        assert_warehouses_equal_toggl(toggl, first)
        assert [r.params.get("offset") for r in toggl.requests] == [
            "0",
            "10",
            "20",
            "30",
            "35",
            None,
        ]


def test_a_cut_short_snapshot_marks_nothing_and_the_next_run_reads_again() -> None:
    with TogglServer(tasks(25)) as toggl:
        first, _ = sync(settings(toggl), None)
        host = later(toggl, DAYS_100)
        cut = "[" + ",".join(f'{{"id": {i}, "at": "2024-01-01T00:00:00Z"}}' for i in (1, 2)) + "]"
        toggl.script(None, None, None, None, Fault(body=cut))  # 4 pages, then the snapshot
        second, finished = sync(settings(toggl), last_state(first, None), host)
        state = last_state(second, None)

        assert finished
        assert not any(m["type"] == "ACTIVATE_VERSION" for m in second)
        assert_warehouses_equal_toggl(toggl, first + second)
        assert (
            state["bookmarks"]["tasks"]["replication_key_value"]
            == (last_state(first, None)["bookmarks"]["tasks"]["replication_key_value"])
        )
        before = len(toggl.requests)
        third, _ = sync(settings(toggl), state, host)
        assert "since" not in toggl.requests[before].params  # read again, whole
        assert any(m["type"] == "ACTIVATE_VERSION" for m in third)


def test_half_the_tasks_gone_at_once_marks_none_deleted(tmp_path: Path) -> None:
    with TogglServer(tasks(25)) as toggl:
        first = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)
        for task_id in range(1, 16):
            del toggl.tasks[task_id]  # gone from the list, as if Toggl lost them
        refresh = run_tap(
            config_for(toggl, api_token=toggl.api_token, page_size=10),
            tmp_path,
            state={"bookmarks": {"tasks": {**first.final_state["bookmarks"]["tasks"]}}}
            | {"bookmarks": {"tasks": {"listed": 25}}},
        )

    assert refresh.returncode == 0, refresh.stderr
    assert refresh.listings == []
    assert any("So many gone at once" in line for line in refresh.stderr.splitlines())


def test_a_400_that_is_not_about_since_fails_without_reading_everything(tmp_path: Path) -> None:
    with TogglServer(tasks(25)) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        before = len(toggl.requests)
        refusal = Fault(status=400, body='"Invalid include_hidden"')
        toggl.script(refusal, refusal)
        second = run_tap(config, tmp_path, state=first.final_state)

    assert second.returncode == 1
    assert "Toggl rejected the request (HTTP 400" in second.error
    assert "Invalid include_hidden" in second.error
    assert len(toggl.requests) - before == 2  # with `since`, then without: no full read


def test_a_400_about_since_is_one_pass_without_it(tmp_path: Path) -> None:
    with TogglServer(tasks(25)) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        toggl.script(Fault(status=400, body='"Invalid since"'))
        second = run_tap(config, tmp_path, state=first.final_state)
        third = run_tap(config, tmp_path, state=second.final_state)

    assert second.returncode == 0, second.stderr
    assert len(second.records) == 25
    assert any("Toggl refused `since`" in line for line in second.stderr.splitlines())
    assert third.returncode == 0, third.stderr
    assert all("since" in r.params for r in toggl.requests[-1:])


@pytest.mark.parametrize("batch_size", [10, 5])
def test_batch_mode_stopped_after_two_pages_resumes_after_them(
    tmp_path: Path, batch_size: int
) -> None:
    with TogglServer(tasks(45), quota=2) as toggl:
        batches = tmp_path / "batches"
        config = settings(
            toggl,
            batch_config={
                "encoding": {"format": "jsonl", "compression": "none"},
                "storage": {"root": f"file://{batches}"},
                "batch_size": batch_size,
            },
        )
        first, finished = sync(config, None)
        assert not finished  # the quota stopped it after two pages
        toggl.quota_remaining = None
        before = len(toggl.requests)
        _, finished = sync(config, last_state(first, None))

    assert finished
    assert toggl.requests[before].params["offset"] == "20"


def test_a_batch_size_that_cannot_keep_progress_is_refused(tmp_path: Path) -> None:
    with TogglServer(tasks(5)) as toggl:
        config = config_for(
            toggl,
            api_token=toggl.api_token,
            page_size=10,
            batch_config={
                "encoding": {"format": "jsonl", "compression": "none"},
                "storage": {"root": f"file://{tmp_path}"},
            },
        )
        run = run_tap(config, tmp_path)

    assert run.returncode == 1
    assert "batch_config.batch_size 10000 does not divide page_size 10" in run.error
    assert toggl.requests == []


def test_a_quiet_run_s_first_state_is_its_own(tmp_path: Path) -> None:
    # target-duckdb 0.8.0 keeps the first STATE of a run that loads no row.
    with TogglServer(tasks(5)) as toggl:
        config = config_for(toggl, api_token=toggl.api_token)
        first = run_tap(config, tmp_path)
        toggl.clock_offset += timedelta(hours=1)
        quiet = run_tap(config, tmp_path, state=first.final_state)

    assert quiet.returncode == 0, quiet.stderr
    assert quiet.records == []
    assert len(toggl.requests) == 3 + 1  # first sync: page, empty page, snapshot; quiet: 1
    assert quiet.states[0]["bookmarks"]["tasks"] == quiet.final_state["bookmarks"]["tasks"]
    assert quiet.bookmark != first.bookmark
