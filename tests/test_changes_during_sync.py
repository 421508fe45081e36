"""Tasks that change while a sync pages through them: no unchanged task may slip past."""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from pathlib import Path

from tap_toggl_tasks.streams import DELETIONS_UNSEEN_SINCE
from tests.conftest import TapRun, config_for, run_tap
from tests.toggl_server import Fault, TogglServer, make_task


def ids_of(run: TapRun) -> list[int]:
    return sorted(r["id"] for r in run.records)


def offsets(server: TogglServer) -> list[str]:
    return [r.params["offset"] for r in server.requests]


def delete(*task_ids: int) -> Fault:
    def deleting(server: TogglServer) -> None:
        for task_id in task_ids:
            server.delete(task_id)

    return Fault(before=deleting)


def test_tasks_deleted_before_the_offset_do_not_hide_the_next_ones(tmp_path: Path) -> None:
    # Page 1 reads tasks 1-10. Deleting 3 and 4 then shifts task 11 back to where page 1
    # ended, so a plain `offset=10` would never return it.
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        toggl.script(None, delete(3, 4))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert ids_of(run) == list(range(1, 26))  # each exactly once, 11 included
    # the missing overlap task at offset 9 sends the pager back one page, then on
    assert offsets(toggl) == ["0", "9", "0", "18"]
    assert run.bookmark is not None
    assert "bookmark stays where it was" not in run.stderr


def test_an_edit_that_reorders_the_list_skips_nothing(tmp_path: Path) -> None:
    # Ordered by `at`, an edited task jumps to the end of the list, like a deletion.
    with TogglServer([make_task(i) for i in range(1, 26)], order="at") as toggl:

        def edit(server: TogglServer) -> None:
            server.modify(2, name="edited")
            server.modify(5, name="edited")

        toggl.script(None, Fault(before=edit))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(set(ids_of(run))) == list(range(1, 26))
    newest = {r["id"]: r["name"] for r in run.records}  # later records win, as in a warehouse
    assert newest[2] == newest[5] == "edited"
    assert len(toggl.requests) == 4  # one step back


def test_tasks_inserted_before_the_offset_cost_nothing_extra(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(10, 35)]) as toggl:

        def insert(server: TogglServer) -> None:
            for task_id in (1, 2, 3):
                server.add(id=task_id, name=f"inserted {task_id}")

        toggl.script(None, Fault(before=insert))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    # the overlap task is found three rows in; the rows before it were read already
    assert ids_of(run) == list(range(10, 35))
    assert offsets(toggl) == ["0", "9", "18", "27"]


def test_a_shift_too_large_to_bridge_keeps_the_bookmark_for_the_next_run(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        # after pages 1 and 2 (tasks 1-9), six tasks before the offset vanish at once
        toggl.script(None, None, delete(2, 3, 4, 6, 7, 8))
        config = config_for(toggl, api_token=toggl.api_token, page_size=5)
        first = run_tap(config, tmp_path)
        first_requests = len(toggl.requests)
        second = run_tap(config, tmp_path, state=first.final_state)
        second_params = [r.params for r in toggl.requests[first_requests:]]

    assert first.returncode == 0, first.stderr
    assert "bookmark stays where it was" in first.stderr
    assert 10 not in ids_of(first)  # shifted out of reach: it would be lost...
    assert first.bookmark is None  # ...but the bookmark did not move past it
    # The next run reads everything again, and, since a full sync cannot see deletions, also
    # what changed since the first run began: tasks 2-4 were emitted before they were deleted.
    unseen = first.final_state["bookmarks"]["tasks"][DELETIONS_UNSEEN_SINCE]
    since = str(math.floor(datetime.fromisoformat(unseen).timestamp()))
    assert [p.get("since") for p in second_params] == [None] * 5 + [since, since]
    assert second.returncode == 0, second.stderr
    assert 10 in ids_of(second)
    assert set(ids_of(first)) | set(ids_of(second)) == set(range(1, 26))
    deleted = {r["id"] for r in second.records if r["server_deleted_at"] is not None}
    assert deleted == {2, 3, 4, 6, 7, 8}
    assert second.bookmark is not None
    assert DELETIONS_UNSEEN_SINCE not in second.final_state["bookmarks"]["tasks"]


def test_step_backs_are_bounded_per_sync(tmp_path: Path) -> None:
    tasks = [make_task(i) for i in range(1, 121)]
    with TogglServer(tasks) as toggl:
        # before every page after the first, two tasks at the start of the list vanish
        doomed = iter(range(1, 121))
        shifts = [delete(next(doomed), next(doomed)) for _ in range(40)]
        toggl.script(None, *shifts)
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    sent = [int(offset) for offset in offsets(toggl)]
    step_backs = sum(1 for before, after in itertools.pairwise(sent) if after < before)
    assert step_backs == 5
    # pages of 9 new tasks each, plus one request for every step back
    assert len(toggl.requests) <= -(-120 // 9) + 1 + step_backs
    assert run.bookmark is None
    assert "bookmark stays where it was" in run.stderr
