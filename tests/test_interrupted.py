"""A run killed at any point loses nothing: resuming from its last STATE brings every change."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.streams import DELETIONS_UNSEEN_SINCE
from tests.conftest import API_TOKEN, config_for, run_tap
from tests.toggl_server import Fault, TogglServer, make_task

TASKS = 60
EDITED = range(1, TASKS + 1, 2)


def run_until_killed(
    config: dict[str, Any], state: dict[str, Any], tmp_path: Path, *, after_lines: int, sig: int
) -> tuple[int, list[dict[str, Any]], str]:
    """Start the tap, read `after_lines` lines of its output, send `sig`, collect the rest."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "state.json").write_text(json.dumps(state))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_toggl_tasks",
            "--config",
            str(tmp_path / "config.json"),
            "--state",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(after_lines)]
    process.send_signal(sig)
    rest, stderr = process.communicate(timeout=60)
    lines += rest.splitlines()
    messages = []
    for line in lines:
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            assert sig == signal.SIGKILL, "only a killed process may leave half a line"
    return process.returncode, messages, stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resumed_run_brings_every_change_an_interrupted_one_missed(
    tmp_path: Path, sig: int, seed: int
) -> None:
    with TogglServer([make_task(i) for i in range(1, TASKS + 1)], api_token=API_TOKEN) as toggl:
        config = config_for(toggl, page_size=10)
        finished = run_tap(config, tmp_path)
        for task_id in EDITED:
            toggl.modify(task_id, name=f"edited {task_id}")
        toggl.script(*[Fault(delay=0.2)] * 10)  # slow pages, so the signal lands mid-sync

        kill_after = random.Random(seed).randint(1, len(EDITED))
        code, partial, stderr = run_until_killed(
            config, finished.final_state, tmp_path, after_lines=kill_after, sig=sig
        )
        states = [m["value"] for m in partial if m["type"] == "STATE"]
        resumed = run_tap(config, tmp_path, state=states[-1])

    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        assert "Stopped by SIGTERM before the sync finished" in stderr
        assert partial[-1]["type"] == "STATE"  # the SDK writes the state on its way out
    else:
        assert code == -signal.SIGKILL
    assert resumed.returncode == 0, resumed.stderr
    # the interrupted run never moved the bookmark past what it had not finished...
    bookmarks = {state["bookmarks"]["tasks"].get("replication_key_value") for state in states}
    assert bookmarks == {finished.bookmark}
    # ...so every edit arrives, in the partial run or the resumed one
    names = {m["record"]["id"]: m["record"]["name"] for m in partial if m["type"] == "RECORD"} | {
        r["id"]: r["name"] for r in resumed.records
    }
    assert all(names.get(task_id) == f"edited {task_id}" for task_id in EDITED)


def test_a_first_sync_killed_midway_still_learns_of_deletions(tmp_path: Path) -> None:
    # A sync without a bookmark cannot see deletions: a task it loaded and that is deleted
    # before the next sync completes would stay in the warehouse, unmarked, forever.
    with TogglServer([make_task(i) for i in range(1, TASKS + 1)], api_token=API_TOKEN) as toggl:
        config = config_for(toggl, page_size=10)
        toggl.script(*[Fault(delay=0.2)] * 10)
        code, partial, _ = run_until_killed(config, {}, tmp_path, after_lines=5, sig=signal.SIGKILL)
        loaded = {m["record"]["id"] for m in partial if m["type"] == "RECORD"}
        toggl.delete(1)
        resumed = run_tap(config, tmp_path, state=partial_state(partial))
        since = [r.params.get("since") for r in toggl.requests if "since" in r.params]

    assert code == -signal.SIGKILL
    assert 1 in loaded
    # The first STATE, written before any record, says when the unfinished full sync began...
    began = partial_state(partial)["bookmarks"]["tasks"][DELETIONS_UNSEEN_SINCE]
    # ...so the next run reads all tasks, then asks what changed since then: one request more.
    assert since == [str(math.floor(datetime.fromisoformat(began).timestamp()))]
    assert resumed.returncode == 0, resumed.stderr
    deleted = [r for r in resumed.records if r["server_deleted_at"] is not None]
    assert [r["id"] for r in deleted] == [1]
    assert sorted({r["id"] for r in resumed.records}) == list(range(1, TASKS + 1))
    assert resumed.bookmark is not None
    assert DELETIONS_UNSEEN_SINCE not in resumed.final_state["bookmarks"]["tasks"]


def partial_state(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m["value"] for m in reversed(messages) if m["type"] == "STATE")
