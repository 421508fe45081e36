"""The silent-loss paths found in the sync protocol, each pinned: the tap as users run it,
against the local Toggl stand-in, every task accounted for."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tap_toggl_tasks.protocol import (
    KNOWN_IDS,
    MAX_STEP_BACKS,
    UNFINISHED,
    Pager,
    decode_ids,
    encode_ids,
    turn_page,
)
from tests.conftest import TapRun, config_for, run_tap
from tests.in_process import last_state, sync
from tests.warehouse import Warehouse
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

QUOTA_GONE = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "3000"}


def ids_of(*runs: TapRun) -> set[int]:
    return {record["id"] for run in runs for record in run.records}


def tasks_state(run: TapRun) -> dict[str, Any]:
    value: dict[str, Any] = run.final_state["bookmarks"]["tasks"]
    return value


def test_1a_an_overlap_task_that_moves_does_not_fake_a_join(tmp_path: Path) -> None:
    # Ordered by `at`: an edit moves a task to the end. Tasks 5 and 10 (page 1's last, the
    # overlap) edited before page 2: page 2 at offset 9 holds 10 again, but edited, so it
    # proves nothing; task 11 slid to offset 8. The old pager took the page as joined.
    with TogglServer([make_task(i) for i in range(1, 16)], order="at") as toggl:

        def edit(server: TogglServer) -> None:
            server.modify(5, name="edited 5")
            server.modify(10, name="edited 10")

        toggl.script(None, Fault(before=edit))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)
        truth = dict(toggl.tasks)

    assert run.returncode == 0, run.stderr
    assert ids_of(run) == set(range(1, 16))
    assert Warehouse().load(run.messages).rows.keys() == truth.keys()
    # page 2 did not join: one step back to page 1's range, which reached page 2's tasks
    assert [r.params["offset"] for r in toggl.requests][:3] == ["0", "9", "0"]


def test_1a_the_same_edits_during_an_incremental_run(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 16)], order="at") as toggl:
        first = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)
        for task_id in range(1, 13):  # twelve changes: the next run reads two pages
            toggl.modify(task_id, name=f"changed {task_id}")

        def edit(server: TogglServer) -> None:
            server.modify(2, name="edited 2")
            server.modify(10, name="edited 10")

        toggl.script(None, Fault(before=edit))
        second = run_tap(
            config_for(toggl, api_token=toggl.api_token, page_size=10),
            tmp_path,
            state=first.final_state,
        )
        truth = {task_id: task["name"] for task_id, task in toggl.tasks.items()}

    assert second.returncode == 0, second.stderr
    rows = Warehouse().load(first.messages + second.messages).rows
    # every change but the two made during the run is in; those two come with the next since
    assert {task_id: rows[task_id]["name"] for task_id in range(3, 10)} == {
        task_id: truth[task_id] for task_id in range(3, 10)
    }
    assert {11, 12} <= ids_of(second)


def test_1b_a_resume_with_other_filters_starts_over(tmp_path: Path) -> None:
    tasks = [make_task(i, active=i % 5 != 0) for i in range(1, 26)]  # 5, 10, ... done
    with TogglServer(tasks) as toggl:
        toggl.script(None, Fault(status=402, body='"Quota exceeded"', headers=QUOTA_GONE))
        done_left_out = config_for(
            toggl,
            api_token=toggl.api_token,
            page_size=10,
            include_not_active=False,
            max_quota_wait_seconds=0,
        )
        stopped = run_tap(done_left_out, tmp_path)
        resumed = run_tap(
            {**done_left_out, "include_not_active": True}, tmp_path, state=stopped.final_state
        )

    assert stopped.returncode == 1
    assert UNFINISHED in tasks_state(stopped)
    assert resumed.returncode == 0, resumed.stderr
    assert ids_of(stopped, resumed) == set(range(1, 26))
    assert "was made with other filters" in resumed.stderr
    # a new pass from offset 0, which lists the done tasks too
    assert toggl.requests[2].params["offset"] == "0"
    assert tasks_state(resumed)["filters"]["include_not_active"] is True


def test_1c_a_cap_that_appears_later_loses_nothing(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 31)]) as toggl:
        first = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=12), tmp_path)
        toggl.max_per_page = 4  # smaller than every page Toggl sent before
        again = run_tap(
            config_for(toggl, api_token=toggl.api_token, page_size=12), tmp_path
        )  # a full resync

    assert first.returncode == again.returncode == 0
    assert sorted(r["id"] for r in again.records) == list(range(1, 31))
    assert "WARNING" not in again.stderr


def test_1d_a_task_inserted_during_the_end_check_is_not_taken_for_a_cap(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 9)]) as toggl:
        toggl.script(None, Fault(before=lambda server: server.add(name="new")))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in run.records) == list(range(1, 10))
    assert "WARNING" not in run.stderr
    # 8 tasks, fewer than asked: one more request checks for a cap. It brings 8 again and the
    # new 9: two rows, fewer than the 8 Toggl sent before, so that is the end.
    assert len(toggl.requests) == 2


def test_1e_every_state_key_is_checked_before_any_request(tmp_path: Path) -> None:
    bad: dict[str, Any] = {
        "began": "yesterday",
        "since": None,
        "filters": {},
        "pager": {},
        "seen": [],
        "gone": [],
    }
    with TogglServer([make_task(1)]) as toggl:
        run = run_tap(
            config_for(toggl, api_token=toggl.api_token),
            tmp_path,
            state={"bookmarks": {"tasks": {UNFINISHED: bad}}},
        )

    assert run.returncode == 1
    assert toggl.requests == []
    assert run.errors == [run.error]
    assert run.error.startswith(
        "The state's tasks unfinished_sync `began` 'yesterday' is not a timestamp."
    )


def test_1f_the_step_back_budget_belongs_to_the_sync_not_the_run() -> None:
    spent = Pager(offset=9, joined_at=0, anchors=[(10, "t10")], step_backs=MAX_STEP_BACKS)
    page = [make_task(i) for i in range(11, 16)]
    _, after, _ = turn_page(spent, [(t["id"], t["at"]) for t in page], page, widest_before=10)
    # no step back is left: the pass goes on, and the gap keeps the bookmark where it was
    assert after.gap
    assert after.step_backs == MAX_STEP_BACKS


def test_1f_a_resumed_sync_keeps_the_step_backs_it_spent(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)], order="at") as toggl:
        # task 1 edited before page 2: a step back; then the quota stops the run
        toggl.script(
            None,
            Fault(before=lambda server: server.modify(1, name="moved")),
            None,
            Fault(status=402, body='"Quota exceeded"', headers=QUOTA_GONE),
        )
        stopped = run_tap(
            config_for(toggl, api_token=toggl.api_token, page_size=10, max_quota_wait_seconds=0),
            tmp_path,
        )

    pager = tasks_state(stopped)[UNFINISHED]["pager"]
    assert stopped.returncode == 1
    assert pager["step_backs"] == 1


def test_1g_in_batch_mode_no_state_runs_ahead_of_its_records(tmp_path: Path) -> None:
    batches = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{tmp_path}", "prefix": "tasks-"},
        "batch_size": 700,  # batches end in the middle of pages
    }
    tasks = [make_task(i) for i in range(1, 2501)]
    with TogglServer(tasks, quota=2) as toggl:  # the third request finds the quota used up
        config = config_for(
            toggl, api_token=toggl.api_token, batch_config=batches, max_quota_wait_seconds=0
        )
        first = run_tap(config, tmp_path)
    with TogglServer(tasks) as toggl:
        second = run_tap(
            config_for(toggl, api_token=toggl.api_token, batch_config=batches),
            tmp_path,
            state=first.final_state,
        )
        resumed_at = toggl.requests[0].params["offset"]

    assert first.returncode == 1
    assert second.returncode == 0, second.stderr
    kinds = [message["type"] for message in first.messages]
    # no STATE that could resume past records which never went out
    assert "STATE" not in kinds or "BATCH" in kinds[: kinds.index("STATE")]
    assert batched_ids(first) | batched_ids(second) == set(range(1, 2501))
    assert resumed_at != "0"  # the second run did resume, past what the batches delivered


def batched_ids(run: TapRun) -> set[int]:
    ids = set()
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == "tasks":
            for url in message["manifest"]:
                with gzip.open(url.removeprefix("file://"), "rt") as batch:
                    ids |= {json.loads(row)["id"] for row in batch}
    return ids


def test_a_bookmark_older_than_the_window_reads_everything_and_marks_deletions() -> None:
    # Toggl answers an old `since` with an empty list here, the worst it has been seen to do.
    with TogglServer([make_task(i) for i in range(1, 11)], old_since="empty") as toggl:
        config = config_for(toggl, api_token=toggl.api_token)
        first, _ = sync(config, None)
        toggl.clock_offset = timedelta(days=20)
        toggl.delete(4)
        toggl.clock_offset = timedelta(days=99)
        toggl.modify(6, name="edited after the pause")
        toggl.clock_offset = timedelta(days=100)
        later, finished = sync(config, last_state(first, None), datetime.now(UTC) + timedelta(100))

    assert finished
    assert "since" not in toggl.requests[-1].params
    warehouse = Warehouse(activate_version=False).load(first + later)
    assert warehouse.marked_deleted(4)
    assert warehouse.rows[6]["name"] == "edited after the pause"
    state = last_state(later, None)["bookmarks"]["tasks"]
    assert decode_ids(state[KNOWN_IDS]) == set(range(1, 11)) - {4}
    # ...and target-postgres, which honours ACTIVATE_VERSION, marks it as well
    assert Warehouse(activate_version=True).load(first + later).marked_deleted(4)


def test_a_quiet_account_keeps_a_fresh_since(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 4)]) as toggl:
        first = run_tap(config_for(toggl, api_token=toggl.api_token), tmp_path)
        toggl.clock_offset += timedelta(hours=1)  # the next scheduled run, an hour later
        second = run_tap(
            config_for(toggl, api_token=toggl.api_token), tmp_path, state=first.final_state
        )

    # nothing changed, yet the bookmark moved to when the second sync began (Toggl's clock)
    assert len(second.records) == 0
    assert second.bookmark is not None
    assert first.bookmark is not None
    assert second.bookmark > first.bookmark
    assert len(toggl.requests) == 3  # the first sync and its end check; then one


def test_a_refused_since_costs_one_pass_without_it_not_a_failing_night(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 6)]) as toggl:
        first = run_tap(config_for(toggl, api_token=toggl.api_token), tmp_path)
        toggl.script(Fault(status=400, body='"Invalid since"'))
        second = run_tap(
            config_for(toggl, api_token=toggl.api_token), tmp_path, state=first.final_state
        )
        third = run_tap(
            config_for(toggl, api_token=toggl.api_token), tmp_path, state=second.final_state
        )

    assert second.returncode == third.returncode == 0
    assert "Toggl refused `since`" in second.stderr
    assert sorted(r["id"] for r in second.records) == [1, 2, 3, 4, 5]
    assert "since" in toggl.requests[-1].params  # the next run is incremental again


def test_ids_round_trip_compactly() -> None:
    ids = {4_100_001 + 37 * n for n in range(1000)}
    encoded = encode_ids(ids)
    assert decode_ids(encoded) == ids
    assert len(encoded) < 1000  # well under a byte an id for ids this close together
    assert decode_ids(encode_ids(set())) == set()


def test_1f_a_resumed_sync_with_its_step_backs_spent_has_none_left(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        toggl.script(None, Fault(status=402, body='"Quota exceeded"', headers=QUOTA_GONE))
        stopped = run_tap({**config, "max_quota_wait_seconds": 0}, tmp_path)
        state = stopped.final_state
        # as if the interrupted sync had spent every step back before it stopped
        state["bookmarks"]["tasks"][UNFINISHED]["pager"]["step_backs"] = MAX_STEP_BACKS
        toggl.delete(2)  # the list shifts left under the next page: it will not join
        resumed = run_tap(config, tmp_path, state=state)

    assert resumed.returncode == 0, resumed.stderr
    assert "The bookmark stays where it was" in resumed.stderr
    assert resumed.bookmark is None  # so the next run reads everything again


def test_a_full_refresh_marks_in_stg_tasks_what_no_state_remembers(tmp_path: Path) -> None:
    """3, target-duckdb: after a state loss no known id can become a tombstone, and the loader
    ignores ACTIVATE_VERSION; the listing, written after every task, tells stg_tasks."""
    with TogglServer([make_task(i) for i in range(1, 8)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=3)
        first = run_tap(config, tmp_path)
        toggl.clock_offset += timedelta(days=1)
        toggl.delete(5)
        toggl.modify(2, name="renamed")
        toggl.clock_offset += timedelta(days=1)
        refresh = run_tap(config, tmp_path)  # no state: Meltano's --full-refresh
        toggl.modify(3, name="changed later")
        toggl.clock_offset += timedelta(hours=1)
        later = run_tap(config, tmp_path, state=refresh.final_state)

    (listing,) = refresh.listings
    records = [m for m in refresh.messages if m["type"] == "RECORD"]
    assert records[-1] == {
        "type": "RECORD",
        "stream": "tasks_listings",
        "record": listing,
        "time_extracted": records[-1]["time_extracted"],
    }
    assert listing["tasks_listed"] == 6
    assert listing["tasks_gone"] == 0  # no state, so no known id to miss
    assert listing["began_at"] == refresh.bookmark
    assert {r["_sdc_table_version"] for r in refresh.records} == {listing["table_version"]}
    assert listing["table_version"] > first.listings[0]["table_version"]
    # an incremental run lists nothing, and its records keep the listing's version
    assert later.listings == []
    assert [(r["id"], r["_sdc_table_version"]) for r in later.records] == [
        (3, listing["table_version"])
    ]
    warehouse = Warehouse(activate_version=False).load(first.messages + refresh.messages)
    assert [i for i in range(1, 8) if warehouse.marked_deleted(i)] == [5]
    assert warehouse.rows[2]["name"] == "renamed"


def test_only_a_pass_that_lists_every_task_writes_a_listing(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 5)]) as toggl:
        toggl.mark_done(2)
        config = config_for(toggl, api_token=toggl.api_token)
        without_done = run_tap({**config, "include_not_active": False}, tmp_path)
        with_start_date = run_tap({**config, "start_date": "2020-01-01"}, tmp_path)
        searched = run_tap({**config, "search": "Task"}, tmp_path)

    for run in (without_done, with_start_date, searched):
        assert run.returncode == 0, run.stderr
        assert run.listings == []
        assert run.records
