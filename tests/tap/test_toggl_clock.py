"""The bookmark follows Toggl's clock, and looks back for writes Toggl shows late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.tap_runs import config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer


def test_an_edit_during_the_sync_is_not_lost_when_toggls_clock_runs_behind(
    tmp_path: Path,
) -> None:
    # Issue 8.1: 20 tasks, 10 a page. Before request 2, with Toggl's clock 2 s behind this
    # host's, task 1 (read on page 1) is edited, then task 15 (on page 2) 1.5 s later.
    with TogglServer(
        [make_task(i) for i in range(1, 21)], clock_offset=timedelta(seconds=-2)
    ) as toggl:

        def edit_while_syncing(server: TogglServer) -> None:
            server.modify(1, name="edited mid-sync")
            server.clock_offset += timedelta(seconds=1.5)
            server.modify(15, name="also edited")

        toggl.script(None, Fault(before=edit_while_syncing))
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        first_requests = len(toggl.requests)
        second = run_tap(config, tmp_path, state=first.final_state)

    assert first.returncode == 0, first.stderr
    offsets = [r.params.get("offset") for r in toggl.requests[:first_requests]]
    assert offsets == ["0", "10", "20", None]
    # The bookmark stops at Toggl's time when it first answered, before both edits...
    task_1_edit = toggl.tasks[1]["at"]
    assert first.bookmark is not None
    assert first.bookmark < task_1_edit.replace("Z", "+00:00")
    # ...so the next run brings task 1's edit, which the first had passed: a page of the
    # changes, the empty page after it, and the whole list of changes.
    assert len(toggl.requests) == first_requests + 3
    edited = {r["id"]: r["name"] for r in second.records}
    assert edited[1] == "edited mid-sync"
    assert edited[15] == "also edited"


def test_a_write_toggl_shows_late_is_read_by_the_lookback(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=250_000)
    with TogglServer([make_task(i) for i in range(1, 11)]) as toggl:
        toggl.clock = lambda: now
        # Task 5's edit is stamped now but shows only from the next run on: Toggl shows it
        # 30 s late, after the first sync began. Task 6's, a second later, shows at once.
        toggl.modify_late(5, after_requests=2, name="shown late")
        toggl.clock = lambda: now + timedelta(seconds=1)
        toggl.modify(6, name="shown at once")
        toggl.clock = lambda: now + timedelta(seconds=30)
        first = run_tap(config_for(toggl, api_token=toggl.api_token), tmp_path)
        without_lookback = run_tap(
            config_for(toggl, api_token=toggl.api_token, lookback_seconds=0),
            tmp_path,
            state=first.final_state,
        )
        second = run_tap(
            config_for(toggl, api_token=toggl.api_token), tmp_path, state=first.final_state
        )

    assert first.returncode == 0, first.stderr
    assert {r["id"]: r["name"] for r in first.records}[5] == "Task 5"
    assert first.bookmark == (now + timedelta(seconds=30)).replace(microsecond=0).isoformat(
        timespec="microseconds"
    )
    # `since` from the bookmark's own second would pass over task 5's edit for good...
    assert 5 not in {r["id"] for r in without_lookback.records}
    # ...a minute's lookback reads it.
    assert {r["id"]: r["name"] for r in second.records}[5] == "shown late"
