"""Tasks that change while a sync pages through them: no unchanged task may slip past."""

from __future__ import annotations

from pathlib import Path

from tests.support.tap_runs import TapRun, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer


def ids_of(run: TapRun) -> list[int]:
    return sorted(r["id"] for r in run.records)


def offsets(server: TogglServer) -> list[str | None]:
    return [r.params.get("offset") for r in server.requests]


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
    # Page 1 reads tasks 1-10. Tasks 3 and 4 done (and so gone) then shift tasks 11 and 12 back
    # before offset 10, where no page looks: the answer without per_page has them.
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        toggl.script(None, finish(3, 4))
        run = run_tap(active_only(toggl, 10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(set(ids_of(run))) == list(range(1, 26))  # 11 and 12 included
    done = {r["id"]: r["active"] for r in run.records}  # the newest record of each
    assert done[3] is done[4] is False
    # Without per_page: the whole list; the tasks done since the pass began (3 and 4 left the
    # list: explained); and again, to confirm 11 and 12, which the pages missed.
    assert offsets(toggl) == ["0", "10", "20", "23", None, None, None]
    assert run.bookmark is not None
    assert "WARNING" not in run.stderr


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
    assert offsets(toggl) == ["0", "10", "20", "25", None, None]


def test_tasks_inserted_before_the_offset_are_loaded_too(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(10, 35)]) as toggl:

        def insert(server: TogglServer) -> None:
            for task_id in (1, 2, 3):
                server.add(id=task_id, name=f"inserted {task_id}")

        toggl.script(None, Fault(before=insert))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert ids_of(run) == [1, 2, 3, *range(10, 35)]
    assert offsets(toggl) == ["0", "10", "20", "28", None]


def test_a_large_shift_loses_nothing(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        # after pages 1 and 2 (tasks 1-10), six tasks before the offset leave the list at once
        toggl.script(None, None, finish(2, 3, 4, 6, 7, 8))
        run = run_tap(active_only(toggl, 5), tmp_path)

    assert run.returncode == 0, run.stderr
    assert set(ids_of(run)) == set(range(1, 26))
    assert run.bookmark is not None
    assert "WARNING" not in run.stderr


def test_a_list_that_shifts_before_every_page_still_ends_with_a_bookmark(tmp_path: Path) -> None:
    tasks = [make_task(i) for i in range(1, 121)]
    with TogglServer(tasks) as toggl:
        # before every page after the first, two tasks at the start of the list leave it
        doomed = iter(range(1, 121))
        shifts = [finish(next(doomed), next(doomed)) for _ in range(40)]
        toggl.script(None, *shifts)
        run = run_tap(active_only(toggl, 10), tmp_path)
        first_run = list(toggl.requests)
        again = run_tap(active_only(toggl, 10), tmp_path, state=run.final_state)

    assert run.returncode == 0, run.stderr
    # Every task still in the (active only) list is loaded; one done before any read of it has
    # left the filter, as the user chose.
    active = {task_id for task_id, task in toggl.tasks.items() if task["active"]}
    assert active <= set(ids_of(run))
    # pages of 10, the page that ends them, and one answer without per_page
    assert len([r for r in first_run if "per_page" in r.params]) <= 12 + 1
    assert run.bookmark is not None
    assert again.returncode == 0, again.stderr
    assert all("since" in r.params for r in toggl.requests[len(first_run) :])
