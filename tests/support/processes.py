"""Commands the pipeline tests start: each in a process group of its own, bounded in time, and
ended with every process it started (a Meltano run's tap and loader, Airflow's workers and
servers), whether the test passes, fails or is stopped by its timeout.

`subprocess.run(..., timeout=...)` kills only the command itself, and only on a timeout: what it
started lives on. A group of its own (`start_new_session`) lets the end reach all of it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# How long a group has to end on SIGTERM before the rest gets SIGKILL.
GRACE_SECONDS = 10.0


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stderr_into_stdout: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the command to its end, whatever its exit code; fail the test if it is still running
    after `timeout` seconds. Either way nothing it started outlives it.

    Its output goes to files, not pipes: a process it left behind holding a pipe open would keep
    a reader waiting for the end of the output long after the command itself ended."""
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
    ):
        stderr = subprocess.STDOUT if stderr_into_stdout else err
        with started(args, cwd=cwd, env=env, stdout=out, stderr=stderr) as process:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            else:
                timed_out = False
        # The whole group has ended: what the files hold is all there will be.
        out.seek(0)
        err.seek(0)
        stdout, errors = out.read(), err.read()
    if timed_out:
        pytest.fail(
            f"`{shlex.join(args)}` was still running after {timeout:.0f} s; it and every "
            f"process it started were stopped. Its output ended:\n{stdout[-4000:]}{errors[-4000:]}"
        )
    return subprocess.CompletedProcess(list(args), process.returncode, stdout, errors)


@contextmanager
def started(args: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A command running in a group of its own, for a test that talks to it while it runs
    (a server); at the end of the block the whole group is stopped."""
    process = subprocess.Popen(
        list(args), start_new_session=True, stdin=subprocess.DEVNULL, **popen
    )
    try:
        yield process
    finally:
        end_group(process)


def end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to every process of the command's group, SIGKILL to what is left after the grace.

    The group id is the command's pid, which the system does not hand out again while any
    process of the group lives."""
    group = process.pid
    if _signal_group(group, signal.SIGTERM):
        deadline = time.monotonic() + GRACE_SECONDS
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
            process.poll()  # reaps the command itself, if it was the one left
        _signal_group(group, signal.SIGKILL)
    try:
        process.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        pytest.fail(f"process {process.pid} survived SIGKILL")


def group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a group, read from /proc (Linux)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we read
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def _group_alive(group: int) -> bool:
    if Path("/proc/self/stat").exists():
        return bool(group_members(group))
    return _signal_group(group, 0)


def _signal_group(group: int, signal_number: int) -> bool:
    """Whether the group still existed to receive the signal."""
    try:
        os.killpg(group, signal_number)
    except ProcessLookupError:
        return False
    return True
