"""Days passing for a process the tests start: libfaketime moves the host's clock it reads.

`faketime -f +100d COMMAND` (Debian's faketime package) starts COMMAND with libfaketime
preloaded (LD_PRELOAD and FAKETIME in its environment, which every child inherits: the tap, the
loader and dbt that `meltano run` starts), so time(), gettimeofday() and clock_gettime() answer
100 days later. The stand-in for Toggl moves its own clock with `TogglServer.clock_offset`; a
test that sets both alike makes days pass for the whole pipeline.

What libfaketime 0.9.10 (Debian's) does to Python 3.11, checked here:
- The monotonic clocks move too, and must: with `--exclude-monotonic` every `time.sleep()` fails
  with `OSError: [Errno 22] Invalid argument` (its clock_nanosleep wrapper shifts the absolute
  monotonic deadline Python passes). target-postgres sleeps while it drains, so it crashed.
- A timed wait on a lock held by another thread (`Lock.acquire(timeout=...)`,
  `threading.Event().wait(...)`, `queue.Queue().get(timeout=...)`) never returns: glibc's
  sem_clockwait, which Python uses, gets a deadline on the moved monotonic clock that
  libfaketime does not move back. Sleeps, socket timeouts and asyncio are fine, and so is the
  whole pipeline (Meltano, tap, both loaders, dbt), but run such commands with a timeout.

Installed on first use when missing, as scripts/private-postgres installs PostgreSQL: as root
with apt-get (after one `apt-get update` if the first try fails); elsewhere the test fails,
saying what to install.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from datetime import timedelta

import pytest

from tests.support.meltano import API_TOKEN, Meltano
from tests.support.project import MELTANO_BIN

PACKAGE = "faketime"
# A run takes about 20 s; one that hangs under libfaketime fails well before Meltano's 600 s.
RUN_TIMEOUT = 300


@functools.cache
def faketime_program() -> str:
    """The path of `faketime`, installed from Debian's packages when missing (root only)."""
    if found := shutil.which("faketime"):
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "libfaketime is not installed and cannot be installed here (root and apt-get are "
            f"needed): apt-get install {PACKAGE} (or brew install libfaketime)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", PACKAGE]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # A fresh machine may have no package lists yet, or stale ones.
        subprocess.run(
            ["apt-get", "update", "-qq"], env=env, capture_output=True, text=True, check=False
        )
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    found = shutil.which("faketime")
    if done.returncode != 0 or found is None:
        pytest.fail(
            f"apt-get install {PACKAGE} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return found


def later(ahead: timedelta, command: Sequence[str]) -> list[str]:
    """`command`, run with the host's clocks `ahead` of the real ones."""
    seconds = round(ahead.total_seconds())
    # libfaketime's relative offsets: seconds, or days with a `d` (which reads better in a log).
    offset = f"{seconds // 86_400:+d}d" if seconds % 86_400 == 0 else f"{seconds:+d}"
    return [faketime_program(), "-f", offset, *command]


def meltano_later(
    meltano: Meltano, ahead: timedelta, *args: str
) -> subprocess.CompletedProcess[str]:
    """`meltano ARGS` with the host's clock `ahead` for Meltano and every plugin it starts,
    whatever its exit code; the test fails if it hangs, or if the API token reaches its output."""
    command = later(ahead, [str(MELTANO_BIN / "meltano"), *args])
    # In a session of its own, so that a timeout ends Meltano's plugins as well.
    with subprocess.Popen(
        command,
        cwd=meltano.cwd,
        env=meltano.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            assert API_TOKEN not in stdout + stderr, "an API token reached Meltano's output"
            pytest.fail(
                f"meltano {' '.join(args)} under faketime did not finish in {RUN_TIMEOUT} s (a "
                f"timed lock wait never returns under libfaketime: see this module):\n"
                f"{(stdout + stderr)[-6000:]}"
            )
    assert API_TOKEN not in stdout + stderr, "an API token reached Meltano's output"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
