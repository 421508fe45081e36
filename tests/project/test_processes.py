"""tests/support/processes.py: a command the tests start ends with everything it started, when
it finishes, when it outlives its timeout, and when the test fails while it runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import group_members, run, started


def alive(pid: int) -> bool:
    """Running, not ended (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def test_what_a_finished_command_left_running_is_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"

    done = run(["bash", "-c", f"sleep 300 & echo $! > {pid_file}"], timeout=60)

    assert done.returncode == 0
    assert not alive(int(pid_file.read_text()))


def test_a_command_past_its_timeout_fails_the_test_and_ends_with_its_children(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"

    with pytest.raises(pytest.fail.Exception, match="still running after 1 s"):
        run(["bash", "-c", f"sleep 300 & echo $! > {pid_file}; wait"], timeout=1)

    assert not alive(int(pid_file.read_text()))


def test_a_server_started_for_a_test_ends_with_its_workers_when_the_test_fails(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "worker.pid"
    groups = []

    def a_test_that_fails_while_its_server_runs() -> None:
        with started(["bash", "-c", f"sleep 300 & echo $! > {pid_file}; wait"]) as server:
            while not pid_file.exists() or not pid_file.read_text().strip():
                assert server.poll() is None
            groups.append(os.getpgid(server.pid))
            assert groups == [server.pid], "the server leads a process group of its own"
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        a_test_that_fails_while_its_server_runs()

    assert not alive(int(pid_file.read_text()))
    assert group_members(groups[0]) == []
