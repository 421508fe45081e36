"""A run killed at any point loses nothing: resuming from its last STATE brings every change."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.values import decode_chunks
from tests.support.tap_runs import API_TOKEN, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer


def is_task(message: dict[str, Any]) -> bool:
    return bool(message["type"] == "RECORD" and message["stream"] == "tasks")


UNFINISHED = "unfinished_sync"
TASKS = 60
EDITED = range(1, TASKS + 1, 2)


def run_until_killed(
    config: dict[str, Any], state: dict[str, Any], tmp_path: Path, *, after_lines: int, sig: int
) -> tuple[int, list[dict[str, Any]], str]:
    """Start the tap, read `after_lines` lines of its output, send `sig`, collect the rest."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "state.json").write_text(json.dumps(state))
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr_file:
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
            stderr=stderr_file,  # a file, not a pipe: stdout alone is read, so nothing can block
            text=True,
        )
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(after_lines)]
        process.send_signal(sig)
        # The rest through the same file object: readline() has read ahead, and communicate()
        # would read the pipe itself, dropping the lines already buffered (RECORDs of a page
        # whose STATE then arrives), as if the tap had never written them.
        lines += process.stdout.read().splitlines()
        process.stdout.close()
        process.wait(timeout=60)
    stderr = stderr_path.read_text()
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
        # Killed before its first page's STATE, a run leaves none: the last state stands.
        states = [m["value"] for m in partial if m["type"] == "STATE"] or [finished.final_state]
        resumed = run_tap(config, tmp_path, state=states[-1])

    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        assert "Stopped by SIGTERM before the sync finished" in stderr
        # No "last message is a STATE" here: a STATE follows every page, and on its way out the
        # SDK writes one only if the state changed since, so records of the page being read may
        # come last. The resumed run below, from the last STATE, reads that page again.
    else:
        assert code == -signal.SIGKILL
    assert resumed.returncode == 0, resumed.stderr
    # the interrupted run never moved the bookmark past what it had not finished...
    bookmarks = {state["bookmarks"]["tasks"].get("replication_key_value") for state in states}
    assert bookmarks == {finished.bookmark}
    # ...so every edit arrives, in the partial run or the resumed one
    names = {m["record"]["id"]: m["record"]["name"] for m in partial if is_task(m)} | {
        r["id"]: r["name"] for r in resumed.records
    }
    assert all(names.get(task_id) == f"edited {task_id}" for task_id in EDITED)


# Page 1 brings edited tasks 1..19 (RECORDs 1-10), page 2, at offset 10, 21..39 (RECORDs 11-20).
@pytest.mark.parametrize(
    ("after_record", "resumed_from"),
    [(5, "0"), (10, "0"), (11, "10"), (19, "10")],
    ids=["mid-page-1", "page-1-before-its-state", "page-2-first", "page-2-before-its-state"],
)
def test_sigterm_right_after_any_record_leaves_a_state_that_loses_nothing(
    tmp_path: Path, after_record: int, resumed_from: str
) -> None:
    with TogglServer([make_task(i) for i in range(1, TASKS + 1)], api_token=API_TOKEN) as toggl:
        config = config_for(toggl, page_size=10)
        finished = run_tap(config, tmp_path)
        for task_id in EDITED:
            toggl.modify(task_id, name=f"edited {task_id}")
        (tmp_path / "state.json").write_text(json.dumps(finished.final_state))
        interrupted = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.support.tap_signalled_after_record",
                str(after_record),
                "SIGTERM",
                "--config",
                str(tmp_path / "config.json"),
                "--state",
                str(tmp_path / "state.json"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[2],
            check=False,
        )
        messages = [json.loads(line) for line in interrupted.stdout.splitlines()]
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        first_resumed_request = len(toggl.requests)
        resumed = run_tap(config, tmp_path, state=states[-1])
        resumed_offsets = [r.params.get("offset") for r in toggl.requests[first_resumed_request:]]

    assert interrupted.returncode == 128 + signal.SIGTERM, interrupted.stderr
    written = [m["record"]["id"] for m in messages if is_task(m)]
    assert written == list(EDITED)[:after_record]
    # Every STATE claims only pages whose RECORDs all came before it.
    for position, message in enumerate(messages):
        if message["type"] == "STATE" and UNFINISHED in message["value"]["bookmarks"]["tasks"]:
            unfinished = message["value"]["bookmarks"]["tasks"][UNFINISHED]
            before = {m["record"]["id"] for m in messages[:position] if is_task(m)}
            assert set(decode_chunks(unfinished["seen"])) <= before
            assert unfinished["pager"]["offset"] <= len(before)
    # ...so the resumed run reads again the page the signal cut, and every edit arrives.
    assert resumed.returncode == 0, resumed.stderr
    assert resumed_offsets[0] == resumed_from
    names = {m["record"]["id"]: m["record"]["name"] for m in messages if is_task(m)}
    names |= {r["id"]: r["name"] for r in resumed.records}
    assert all(names.get(task_id) == f"edited {task_id}" for task_id in EDITED)


def test_a_first_sync_killed_midway_resumes_and_still_learns_of_deletions(
    tmp_path: Path,
) -> None:
    with TogglServer([make_task(i) for i in range(1, TASKS + 1)], api_token=API_TOKEN) as toggl:
        config = config_for(toggl, page_size=10)
        toggl.script(*[Fault(delay=0.2)] * 10)
        # SCHEMA, page 1's ten records, its STATE, and part of page 2
        code, partial, _ = run_until_killed(
            config, {}, tmp_path, after_lines=15, sig=signal.SIGKILL
        )
        loaded = {m["record"]["id"] for m in partial if is_task(m)}
        toggl.delete(1)
        first_resumed_request = len(toggl.requests)
        resumed = run_tap(config, tmp_path, state=partial_state(partial))
        resumed_offsets = [r.params.get("offset") for r in toggl.requests[first_resumed_request:]]
        after = run_tap(config, tmp_path, state=resumed.final_state)

    assert code == -signal.SIGKILL
    unfinished = partial_state(partial)["bookmarks"]["tasks"][UNFINISHED]
    # Killed after page 1 at the earliest (later on a slow machine): pages are 10 tasks apart.
    resume_at = unfinished["pager"]["offset"]
    assert resume_at >= 10
    assert resume_at % 10 == 0
    assert set(range(1, resume_at + 1)) <= loaded
    # The resumed run goes on from there, not from the start. Task 1's deletion shifted the
    # list left (a pass without `since` lists no deleted task), so the pages miss one task,
    # which the answer without per_page brings; that answer lacks task 1, which a last answer
    # (changes since the sync began) shows deleted: its record comes marked.
    assert resumed.returncode == 0, resumed.stderr
    paged = [int(offset) for offset in resumed_offsets if offset is not None]
    assert paged[0] == resume_at
    assert paged == sorted(set(paged))
    assert {r["id"] for r in resumed.records} >= set(range(resume_at + 2, TASKS + 1))
    assert [r["id"] for r in resumed.records if r["server_deleted_at"] is not None] == [1]
    assert UNFINISHED not in resumed.final_state["bookmarks"]["tasks"]
    assert resumed.bookmark == unfinished["began"]
    assert resumed.listings[0]["tasks_listed"] == TASKS - 1
    assert after.returncode == 0, after.stderr


def test_a_first_sync_bigger_than_the_quota_finishes_over_several_runs(tmp_path: Path) -> None:
    # 10 tasks, 2 a page: pages at offsets 0 to 10 (the last empty), then the answer without
    # per_page: seven requests; the quota allows 3 an hour.
    with TogglServer([make_task(i) for i in range(1, 11)], api_token=API_TOKEN, quota=3) as toggl:
        config = config_for(toggl, page_size=2, max_quota_wait_seconds=0)
        state: dict[str, Any] = {}
        runs = []
        for _ in range(6):
            toggl.quota_remaining = 3  # an hour later
            run = run_tap(config, tmp_path, state=state)
            runs.append(run)
            state = run.final_state
            if run.returncode == 0:
                break
        offsets = [r.params.get("offset") for r in toggl.requests if r.status == 200]

    assert [run.returncode for run in runs] == [1, 1, 0]
    assert all("quota for this user is used up" in run.error for run in runs[:2])
    # every page read once, in order, across the runs
    assert offsets == ["0", "2", "4", "6", "8", "10", None]
    loaded = [r["id"] for run in runs for r in run.records]
    assert sorted(loaded) == list(range(1, 11))
    assert UNFINISHED not in state["bookmarks"]["tasks"]
    # the bookmark is when the sync began, in the first run
    assert runs[-1].bookmark == runs[0].final_state["bookmarks"]["tasks"][UNFINISHED]["began"]


def partial_state(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m["value"] for m in reversed(messages) if m["type"] == "STATE")
