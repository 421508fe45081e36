"""Incremental sync: the bookmark is when the sync began; the next run asks only for changes."""

from __future__ import annotations

import datetime
from pathlib import Path

from tap_toggl_tasks.settings import LOOKBACK_SECONDS
from tests.support.tap_runs import config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

AN_HOUR = datetime.timedelta(hours=1)
# A day inside the window in which Toggl accepts `since`.
RECENT = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)).date().isoformat()


def unix(timestamp: str) -> int:
    return int(datetime.datetime.fromisoformat(timestamp).timestamp())


def since_for(bookmark: str | None) -> str:
    """`since` after a bookmark: its whole second, less the lookback."""
    return str(unix(bookmark or "") - LOOKBACK_SECONDS)


def test_first_run_bookmarks_when_it_began_by_toggls_clock(
    server: TogglServer, tmp_path: Path
) -> None:
    server.clock_offset = datetime.timedelta(minutes=-7)  # Toggl's clock behind this machine's
    run = run_tap(config_for(server), tmp_path)

    state = run.final_state["bookmarks"]["tasks"]
    began = datetime.datetime.fromisoformat(state["replication_key_value"])
    toggl_now = datetime.datetime.now(datetime.UTC) + server.clock_offset
    assert toggl_now - datetime.timedelta(minutes=1) < began <= toggl_now
    assert set(state) == {
        "replication_key",
        "replication_key_value",
        # what the bookmark covers: a change of these makes the next run sync everything
        "filters",
        "table_version",
        "listed",  # how many tasks the listing held (tasks_listings)
    }
    assert state["filters"] == {"include_not_active": True, "include_hidden": True, "search": None}
    assert state["listed"] == 25
    assert "since" not in server.requests[0].params  # a first sync lists every task


def test_next_run_sends_since_and_gets_only_changes(server: TogglServer, tmp_path: Path) -> None:
    first = run_tap(config_for(server), tmp_path)
    server.modify(4, name="renamed")
    server.mark_done(6)
    server.add(name="brand new")
    # the next scheduled run, an hour later: two runs in one second share a bookmark
    server.clock_offset += AN_HOUR

    second = run_tap(config_for(server), tmp_path, state=first.final_state)

    assert second.returncode == 0, second.stderr
    # the first sync's three requests (page, empty page, whole list), then the changes': a
    # page of them, the empty page after it, and the whole list of changes
    assert [r.params.get("since") for r in server.requests[3:]] == [since_for(first.bookmark)] * 3
    changed = {r["id"]: r for r in second.records}
    # since rounds down and looks back a minute: tasks of that minute come again
    again = {r["id"] for r in first.records if unix(r["at"]) >= int(since_for(first.bookmark))}
    assert set(changed) == {4, 6, 26} | again
    assert changed[4]["name"] == "renamed"
    assert changed[6]["active"] is False
    assert changed[26]["name"] == "brand new"
    assert second.bookmark is not None
    assert first.bookmark is not None
    assert second.bookmark > first.bookmark


def test_a_run_with_nothing_new_costs_one_request(server: TogglServer, tmp_path: Path) -> None:
    first = run_tap(config_for(server), tmp_path)

    second = run_tap(config_for(server), tmp_path, state=first.final_state)

    assert second.returncode == 0, second.stderr
    assert len(server.requests) == 3 + 1  # the first sync's three, then one
    assert second.records == []  # the fixture's tasks changed long before the lookback
    assert second.bookmark is not None
    assert first.bookmark is not None
    assert second.bookmark >= first.bookmark  # a quiet account keeps a fresh `since`


def test_since_rounds_the_bookmark_down_to_whole_seconds(
    server: TogglServer, tmp_path: Path
) -> None:
    state = {
        "bookmarks": {
            "tasks": {
                "replication_key": "at",
                "replication_key_value": f"{RECENT}T10:00:07.9+00:00",
            }
        }
    }

    run = run_tap(config_for(server), tmp_path, state=state)

    assert run.returncode == 0, run.stderr
    assert server.requests[0].params["since"] == since_for(f"{RECENT}T10:00:07+00:00")


def test_start_date_limits_the_first_run(tmp_path: Path) -> None:
    tasks = [make_task(i, at=f"{RECENT}T{i:02d}:00:00Z") for i in range(1, 11)]
    with TogglServer(tasks) as toggl:
        run = run_tap(
            config_for(toggl, api_token=toggl.api_token, start_date=f"{RECENT}T06:00:00Z"),
            tmp_path,
        )

    assert run.returncode == 0, run.stderr
    assert toggl.requests[0].params["since"] == str(unix(f"{RECENT}T06:00:00+00:00"))
    assert sorted(r["id"] for r in run.records) == list(range(6, 11))


def test_a_start_date_older_than_toggl_accepts_filters_a_full_pass(
    server: TogglServer, tmp_path: Path
) -> None:
    # The fixture's tasks are a week apart in 2024: too old for `since`, so the tap reads all
    # and keeps what start_date asks for.
    run = run_tap(config_for(server, start_date="2024-04-01T00:00:00Z"), tmp_path)

    assert run.returncode == 0, run.stderr
    assert "since" not in server.requests[0].params
    assert sorted(r["id"] for r in run.records) == list(range(13, 26))


def test_a_bookmark_newer_than_start_date_wins(server: TogglServer, tmp_path: Path) -> None:
    state = {
        "bookmarks": {
            "tasks": {"replication_key": "at", "replication_key_value": f"{RECENT}T04:05:06+00:00"}
        }
    }

    run_tap(config_for(server, start_date="2024-01-01"), tmp_path, state=state)

    assert server.requests[0].params["since"] == since_for(f"{RECENT}T04:05:06+00:00")


def test_a_task_changed_during_the_sync_is_not_skipped_next_time(tmp_path: Path) -> None:
    tasks = [make_task(i) for i in range(1, 21)]
    with TogglServer(tasks) as toggl:
        later = datetime.datetime.now(datetime.UTC) + AN_HOUR

        def edit_while_syncing(server: TogglServer) -> None:
            # Task 1 (already read on page 1) changes first, task 15 (on page 2) a second later.
            server.clock = lambda: later
            server.modify(1, name="edited mid-sync")
            server.clock = lambda: later + datetime.timedelta(seconds=1)
            server.modify(15, name="also edited")

        toggl.script(None, Fault(before=edit_while_syncing))
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        toggl.clock = lambda: later + AN_HOUR
        second = run_tap(config, tmp_path, state=first.final_state)

    assert first.returncode == 0, first.stderr
    # The bookmark stops at the sync's start, before either edit...
    assert first.bookmark is not None
    assert first.bookmark < later.isoformat()
    # ...so the next run brings task 1's edit, which the first run had already passed.
    edited = {r["id"]: r["name"] for r in second.records}
    assert edited[1] == "edited mid-sync"
    assert edited[15] == "also edited"


def test_state_round_trips_through_the_state_flag(server: TogglServer, tmp_path: Path) -> None:
    first = run_tap(config_for(server), tmp_path)
    second = run_tap(config_for(server), tmp_path, state=first.final_state)

    # the run starts from the state it was given: its `since` is the first run's bookmark
    assert second.returncode == 0, second.stderr
    assert server.requests[-1].params["since"] == since_for(first.bookmark)
