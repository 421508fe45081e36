"""The protocol's rules one by one, on the pure core (no HTTP, no SDK): plan, pages, finish.

tests/core/test_protocol_properties.py tries them all together against a model of Toggl;
tests/tap/test_what_toggl_may_do.py against the HTTP stand-in.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tap_toggl_tasks import ending, protocol, state
from tap_toggl_tasks.ending import Snapshot
from tap_toggl_tasks.protocol import Pass, Settings
from tap_toggl_tasks.state import Filters, TasksState
from tap_toggl_tasks.values import bookmark_form, decode_chunks, encode_ids

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EVERY_TASK = Filters(include_not_active=True, include_hidden=True, search=None)
SETTINGS = Settings(filters=EVERY_TASK, page_size=3)


def task(task_id: int, at: datetime = NOW - timedelta(days=3)) -> dict[str, Any]:
    return {"id": task_id, "at": bookmark_form(at)}


def bookmarked(at: datetime, **fields: Any) -> TasksState:
    return TasksState(replication_key_value=bookmark_form(at), filters=EVERY_TASK, **fields)


def full_pass(*pages: list[dict[str, Any]]) -> Pass:
    pass_ = protocol.answered(protocol.plan(TasksState(), SETTINGS, NOW).pass_, NOW)
    for rows in pages:
        _, pass_ = protocol.turn_page(pass_, rows, SETTINGS)
    return pass_


def test_a_first_sync_reads_everything_and_a_bookmark_reads_changes_since_it() -> None:
    assert protocol.plan(TasksState(), SETTINGS, NOW).pass_.since is None
    since = protocol.plan(bookmarked(NOW - timedelta(hours=1)), SETTINGS, NOW).pass_.since
    assert since == int((NOW - timedelta(hours=1, seconds=60)).timestamp())  # less the lookback


def test_a_bookmark_older_than_the_window_reads_everything() -> None:
    old = bookmarked(NOW - protocol.SINCE_WINDOW - timedelta(minutes=2))
    plan = protocol.plan(old, SETTINGS, NOW)
    assert plan.pass_.since is None
    assert "older than Toggl accepts" in plan.info[0]
    assert timedelta(days=59) > protocol.SINCE_WINDOW  # inside two months, February's too


def test_the_next_since_reaches_back_to_the_bookmark_before_the_last() -> None:
    recheck = int((NOW - timedelta(days=1)).timestamp())
    state_ = bookmarked(NOW - timedelta(hours=1), recheck_since=recheck)
    assert protocol.plan(state_, SETTINGS, NOW).pass_.since == recheck


def test_other_filters_than_the_bookmark_s_read_everything_with_a_warning() -> None:
    plan = protocol.plan(
        bookmarked(NOW - timedelta(hours=1)),
        dataclasses.replace(SETTINGS, filters=Filters(True, True, "invoice")),
        NOW,
    )
    assert plan.pass_.since is None
    assert "The filters changed" in plan.warnings[0]


def test_a_short_page_with_new_tasks_is_not_the_end_and_a_page_with_none_is() -> None:
    pass_ = full_pass([task(1), task(2)])
    assert not pass_.pager.done
    assert pass_.pager.offset == 2
    emitted, pass_ = protocol.turn_page(pass_, [], SETTINGS)
    assert emitted == ()
    assert pass_.pager.done


def test_a_task_listed_twice_is_one_position_and_one_record() -> None:
    emitted, pass_ = protocol.turn_page(full_pass(), [task(1), task(1), task(2)], SETTINGS)
    assert [t["id"] for t in emitted] == [1, 2]
    assert pass_.pager.offset == 2


def test_full_pages_of_seen_tasks_end_the_pages_after_three() -> None:
    pass_ = full_pass([task(1), task(2), task(3)])
    for _ in range(protocol.REPEATS_LIMIT):
        assert not pass_.pager.done
        _, pass_ = protocol.turn_page(pass_, [task(1), task(2), task(3)], SETTINGS)
    assert pass_.pager.done


def test_every_pass_that_found_a_task_reads_the_snapshot_and_a_quiet_one_does_not() -> None:
    assert protocol.needs_snapshot(full_pass([]))
    incremental = protocol.answered(
        protocol.plan(bookmarked(NOW - timedelta(hours=1)), SETTINGS, NOW).pass_, NOW
    )
    _, quiet = protocol.turn_page(incremental, [], SETTINGS)
    assert quiet.pager.done
    assert not protocol.needs_snapshot(quiet)
    _, busy = protocol.turn_page(incremental, [task(1)], SETTINGS)
    assert protocol.needs_snapshot(busy)


def test_reads_that_agree_write_a_listing() -> None:
    pass_ = full_pass([task(1), task(2)], [])
    outcome = ending.finish(TasksState(), pass_, Snapshot(frozenset({1, 2})), SETTINGS)
    assert outcome.listing is not None
    assert outcome.listing["tasks_listed"] == 2
    assert outcome.state.listed == 2
    assert outcome.state.replication_key_value == bookmark_form(NOW)


def test_a_snapshot_lacking_a_task_the_pages_listed_keeps_the_bookmark_once() -> None:
    pass_ = full_pass([task(1), task(2)], [])
    start = bookmarked(NOW - timedelta(days=90))
    cut = Snapshot(frozenset({1}))
    first = ending.finish(start, pass_, cut, SETTINGS)
    assert first.listing is None
    assert first.state.replication_key_value == start.replication_key_value
    assert "cut short" in first.warnings[0]
    # The same cut again: Toggl caps those answers; the pages are trusted, nothing marked.
    second = ending.finish(first.state, pass_, cut, SETTINGS)
    assert second.listing is None
    assert second.state.replication_key_value == bookmark_form(NOW)


def test_a_task_deleted_during_the_pass_explains_what_the_snapshot_lacks() -> None:
    pass_ = full_pass([task(1), task(2)], [])
    explained = Snapshot(frozenset({1}), explained=frozenset({2}))
    assert ending.finish(TasksState(), pass_, explained, SETTINGS).listing is not None


def test_pages_that_missed_unchanged_tasks_need_a_second_answer_for_a_listing() -> None:
    pass_ = full_pass([task(1), task(2), task(3)], [task(3), task(4), task(5)], [])
    snapshot = Snapshot(frozenset({1, 2, 3, 4, 5, 6}), missed_unchanged=frozenset({6}))
    assert ending.needs_second_look(pass_, snapshot)
    assert ending.finish(TasksState(), pass_, snapshot, SETTINGS).listing is None
    confirmed = dataclasses.replace(snapshot, second=frozenset({1, 2, 3, 4, 5, 6}))
    assert ending.finish(TasksState(), pass_, confirmed, SETTINGS).listing is not None


@pytest.mark.parametrize("listed", [0, 10])
def test_no_listing_is_empty_or_halves_the_last_one(listed: int) -> None:
    ids = frozenset(range(1, listed + 1))
    pass_ = dataclasses.replace(full_pass([]), seen=ids)
    outcome = ending.finish(TasksState(listed=25), pass_, Snapshot(ids), SETTINGS)
    assert outcome.listing is None


def test_a_filtered_pass_never_writes_a_listing() -> None:
    done_left_out = dataclasses.replace(SETTINGS, filters=Filters(False, True, None))
    pass_ = full_pass([task(1)], [])
    assert (
        ending.finish(TasksState(), pass_, Snapshot(frozenset({1})), done_left_out).listing is None
    )


def test_a_refused_since_restarts_the_pass_without_it_and_with_a_version_of_its_own() -> None:
    incremental = protocol.answered(
        protocol.plan(bookmarked(NOW - timedelta(hours=1), table_version=5), SETTINGS, NOW).pass_,
        NOW,
    )
    assert incremental.version == 5
    anew = protocol.without_since(incremental)
    assert anew.since is None
    assert anew.version == int(NOW.timestamp() * 1000)


def test_a_resumed_pass_goes_on_where_its_checkpoint_left_it() -> None:
    pass_ = full_pass([task(1), task(2), task(3)])
    saved = state.decode(state.encode(protocol.checkpoint(TasksState(), pass_)))
    plan = protocol.plan(saved, SETTINGS, NOW + timedelta(hours=1))
    assert plan.resumed
    assert plan.pass_.pager == pass_.pager
    assert plan.pass_.seen == {1, 2, 3}


def test_ids_round_trip_compactly() -> None:
    ids = set(range(10_000_000, 10_100_000, 7))
    encoded = encode_ids(ids)
    assert set(decode_chunks([encoded])) == ids
    assert len(encoded) < 3 * len(ids)


def test_the_state_is_checked_by_its_one_declaration() -> None:
    with pytest.raises(state.StateError, match=r"bookmarks\.tasks\.listed"):
        state.decode({"listed": -1})
    assert state.decode({"known_ids": "x", "largest_page": 3}) == TasksState()


def test_an_incremental_pass_leaves_the_bookmark_it_started_from_to_be_asked_again() -> None:
    start = bookmarked(NOW - timedelta(hours=1))
    pass_ = protocol.answered(protocol.plan(start, SETTINGS, NOW).pass_, NOW)
    _, pass_ = protocol.turn_page(pass_, [], SETTINGS)
    outcome = ending.finish(start, pass_, None, SETTINGS)
    assert outcome.state.replication_key_value == bookmark_form(NOW)
    assert outcome.state.recheck_since == int((NOW - timedelta(hours=1, seconds=60)).timestamp())
