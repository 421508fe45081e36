"""Tasks that change while a sync pages through them: no unchanged task may slip past."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.conftest import TapRun, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer


def ids_of(run: TapRun) -> list[int]:
    return sorted(r["id"] for r in run.records)


def offsets(server: TogglServer) -> list[str]:
    return [r.params["offset"] for r in server.requests]


def finish(*task_ids: int) -> Fault:
    """Mark tasks done: without include_not_active they leave the list, and the rest shift.

    (A deletion does not shift a `since` list: the deleted task stays in it, marked.)
    """

    def finishing(server: TogglServer) -> None:
        for task_id in task_ids:
            server.mark_done(task_id)

    return Fault(before=finishing)


def active_only(toggl: TogglServer, page_size: int) -> dict[str, object]:
    return config_for(
        toggl, api_token=toggl.api_token, page_size=page_size, include_not_active=False
    )


def test_tasks_leaving_the_list_before_the_offset_do_not_hide_the_next_ones(
    tmp_path: Path,
) -> None:
    # Page 1 reads tasks 1-10. Tasks 3 and 4 done (and so gone) then shift task 11 back to where
    # page 1 ended, so a plain `offset=10` would never return it.
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        toggl.script(None, finish(3, 4))
        run = run_tap(active_only(toggl, 10), tmp_path)

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


def test_a_large_shift_is_bridged_by_stepping_back_page_by_page(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        # after pages 1 and 2 (tasks 1-9), six tasks before the offset leave the list at once
        toggl.script(None, None, finish(2, 3, 4, 6, 7, 8))
        run = run_tap(active_only(toggl, 5), tmp_path)

    assert run.returncode == 0, run.stderr
    assert set(ids_of(run)) == set(range(1, 26))
    # page 3 (offset 8) misses the overlap; back to page 2's start (4), then by a page (0)
    assert offsets(toggl)[:5] == ["0", "4", "8", "4", "0"]
    assert run.bookmark is not None
    assert "WARNING" not in run.stderr


def test_step_backs_are_bounded_per_sync(tmp_path: Path) -> None:
    tasks = [make_task(i) for i in range(1, 121)]
    with TogglServer(tasks) as toggl:
        # before every page after the first, two tasks at the start of the list leave it
        doomed = iter(range(1, 121))
        shifts = [finish(next(doomed), next(doomed)) for _ in range(40)]
        toggl.script(None, *shifts)
        run = run_tap(active_only(toggl, 10), tmp_path)

    assert run.returncode == 0, run.stderr
    sent = [int(offset) for offset in offsets(toggl)]
    step_backs = sum(1 for before, after in itertools.pairwise(sent) if after < before)
    assert step_backs == 5
    # pages of 9 new tasks each, plus one request for every step back
    assert len(toggl.requests) <= -(-120 // 9) + 1 + step_backs
    assert run.bookmark is None  # a gap: the bookmark stays, here none...
    assert "The bookmark stays where it was" in run.stderr
    with TogglServer(tasks) as toggl:
        again = run_tap(active_only(toggl, 10), tmp_path, state=run.final_state)
    # ...so the next run reads every task again
    assert "since" not in toggl.requests[0].params
    assert set(ids_of(again)) == set(range(1, 121))
    assert "bookmark stays where it was" in run.stderr
