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


EPOCH = "1970-01-01T00:00:00.000000+00:00"


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


def test_a_shift_too_large_to_bridge_keeps_the_bookmark_for_the_next_run(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        # after pages 1 and 2 (tasks 1-9), six tasks before the offset leave the list at once
        toggl.script(None, None, finish(2, 3, 4, 6, 7, 8))
        config = active_only(toggl, 5)
        first = run_tap(config, tmp_path)
        first_requests = len(toggl.requests)
        second = run_tap(config, tmp_path, state=first.final_state)
        second_params = [r.params for r in toggl.requests[first_requests:]]

    assert first.returncode == 0, first.stderr
    assert "bookmark stays where it was" in first.stderr
    assert 10 not in ids_of(first)  # shifted out of reach: it would be lost...
    # ...but the bookmark stays where it was: there was none, so the start of time
    assert first.bookmark == EPOCH
    assert {p.get("since") for p in second_params} == {"0"}
    assert second.returncode == 0, second.stderr
    assert 10 in ids_of(second)
    assert set(ids_of(first)) | set(ids_of(second)) == set(range(1, 26))
    assert second.bookmark is not None
    assert second.bookmark > EPOCH


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
    assert run.bookmark == EPOCH
    assert "bookmark stays where it was" in run.stderr
