"""Inputs the tap cannot use stop it at once: a clear message, exit 1, no output, no request.

Most checks run in-process, where the tap refuses the input as it is constructed; one run of
the command per kind of input pins what users get: exit 1, one ERROR, nothing on stdout.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.errors import TogglInputError
from tap_toggl_tasks.tap import TapTogglTasks
from tests.support.tap_runs import config_for, run_tap
from toggl_standin.server import TogglServer

# A day inside the window in which Toggl accepts `since`.
RECENT = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)).date().isoformat()


def test_a_state_of_the_previous_release_loads_and_resumes_from_its_bookmark(
    server: TogglServer, tmp_path: Path
) -> None:
    bookmark = f"{RECENT}T10:00:00.000000+00:00"
    old: dict[str, Any] = {
        "replication_key": "at",
        "replication_key_value": bookmark,
        "filters": {"include_not_active": True, "include_hidden": True, "search": None},
        "known_ids": "eNoz1DFEhwAirwN3",
        "table_version": 1796205925000,
        "unfinished_sync": {
            "began": f"{RECENT}T11:00:00+00:00",
            "since": None,
            "pager": {
                "offset": 9,
                "joined_at": 0,
                "anchors": [],
                "stranded": None,
                "stranded_at": 0,
                "resume_at": None,
                "step_backs": 0,
                "gap": False,
            },
            "seen": [],
            "gone": [],
        },
    }
    run = run_tap(config_for(server), tmp_path, state={"bookmarks": {"tasks": old}})

    assert run.returncode == 0, run.stderr
    # the older layout's unfinished sync starts over, from the bookmark, which it never moved
    assert server.requests[0].params["since"] == str(
        int(datetime.datetime.fromisoformat(bookmark).timestamp()) - 60
    )
    assert "known_ids" not in run.final_state["bookmarks"]["tasks"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"bookmarks": "yesterday"}, "has no `bookmarks` object"),
        ({"bookmarks": {"issues": {"replication_key_value": "2024-01-01"}}}, "(issues)"),
        ({"bookmarks": {"tasks": ["at"]}}, "`tasks` bookmark is not an object"),
        (
            {"bookmarks": {"tasks": {"replication_key": "id", "replication_key_value": 7}}},
            "bookmarks.tasks.replication_key is not this tap's: Invalid enum value 'id'",
        ),
        (
            {"bookmarks": {"tasks": {"replication_key": "at", "replication_key_value": "soon"}}},
            "`replication_key_value` 'soon' is not a timestamp",
        ),
        (
            {
                "bookmarks": {
                    "tasks": {
                        "unfinished_sync": {
                            "began": "2026-01-01T00:00:00+00:00",
                            "since": None,
                            "filters": {},
                            "version": None,
                            "pager": {},
                            "seen": ["###"],
                        }
                    }
                }
            },
            "`seen` chunk '###' is not encoded task ids",
        ),
        (
            {"bookmarks": {"tasks": {"filters": {"colour": "red"}}}},
            "bookmarks.tasks.filters is not this tap's: Object contains unknown field `colour`",
        ),
        (
            {"bookmarks": {"tasks": {"unfinished_sync": {"began": "2026-01-01", "pager": 3}}}},
            "bookmarks.tasks.unfinished_sync.pager is not this tap's: Expected `object`, got `int`",
        ),
    ],
    ids=[
        "no-bookmarks",
        "another-taps-state",
        "not-an-object",
        "other-key",
        "not-a-timestamp",
        "seen-not-encoded",
        "filters-unknown",
        "unfinished-incomplete",
    ],
)
def test_a_state_this_tap_cannot_use_is_refused(
    server: TogglServer, state: dict[str, Any], expected: str
) -> None:
    with pytest.raises(TogglInputError) as refused:
        TapTogglTasks(config=config_for(server), state=state, parse_env_config=False)

    assert expected in str(refused.value)
    assert "Pass the value of the last STATE message" in str(refused.value)
    assert server.requests == []


def test_a_refused_state_ends_the_command_with_one_error(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server), tmp_path, state={"bookmarks": "yesterday"})

    assert run.returncode == 1
    assert run.errors == [
        "The state has no `bookmarks` object, so it is not a Singer state. Pass the value of the "
        "last STATE message a run of this tap emitted (Meltano does this for you), or no state "
        "at all to sync everything again."
    ]
    assert run.stdout == ""
    assert server.requests == []


PASS_INSTEAD = {
    "--state": "the value of the last STATE message an earlier run of this tap emitted (Meltano "
    "does this for you), or no --state to sync everything again",
    "--catalog": "the catalog `tap-toggl-tasks --discover` prints, with the streams to sync "
    "selected, or no --catalog to sync every stream",
}


@pytest.mark.parametrize("flag", ["--state", "--catalog"])
def test_a_file_that_is_not_json_is_refused(server: TogglServer, tmp_path: Path, flag: str) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"bookmarks": {"tasks": ')

    run = run_tap(config_for(server), tmp_path, args=(flag, str(broken)))

    assert run.returncode == 1
    assert run.errors == [
        f"The {flag} file {broken} is not JSON (Expecting value: line 1 column 25 (char 24)). "
        f"Pass {PASS_INSTEAD[flag]}."
    ]
    assert run.stdout == ""
    assert server.requests == []


def test_an_empty_state_means_a_full_sync(server: TogglServer, tmp_path: Path) -> None:
    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path, state={})

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 25


def test_a_catalog_that_selects_nothing_is_refused(server: TogglServer, tmp_path: Path) -> None:
    discovered = run_tap(config_for(server), tmp_path, args=("--discover",))
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = False

    with pytest.raises(TogglInputError) as refused:
        TapTogglTasks(config=config_for(server), catalog=catalog, parse_env_config=False)

    assert str(refused.value).startswith("The catalog selects no stream")
    assert server.requests == []


def test_a_catalog_selecting_tasks_syncs_them(server: TogglServer, tmp_path: Path) -> None:
    discovered = run_tap(config_for(server), tmp_path, args=("--discover",))
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(discovered.stdout)

    config = config_for(server, request_interval_seconds=0)

    run = run_tap(config, tmp_path, args=("--catalog", str(catalog_file)))

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 25


def test_a_state_from_0_1_is_still_read(server: TogglServer) -> None:
    # Keys 0.1 wrote and this version rebuilds: dropped, not refused.
    state = {"bookmarks": {"tasks": {"largest_page": 25, "deletions_unseen_since": "2026-01-01"}}}
    tap = TapTogglTasks(config=config_for(server), state=state, parse_env_config=False)

    assert tap.state["bookmarks"]["tasks"]["largest_page"] == 25  # until the sync settles it
