"""Days passing for a process the tests start: libfaketime moves the host's clock it reads.

`faketime -f +100d COMMAND` (Debian's faketime package) starts COMMAND with libfaketime
preloaded (LD_PRELOAD and FAKETIME in its environment, which every child inherits: the tap, the
loader and dbt that `meltano run` starts), so time(), gettimeofday() and clock_gettime() answer
100 days later. The monotonic clocks are left alone (`--exclude-monotonic`): time measured
between two moments (timeouts, retries' back-off, the SDK's metrics) stays true, only the date
moves.

The stand-in for Toggl moves its own clock with `TogglServer.clock_offset`; a test that makes
both agree makes days pass for the whole pipeline.

Installed on first use when missing, as scripts/private-postgres installs PostgreSQL: as root
with apt-get (after one `apt-get update` if the first try fails); elsewhere the test fails,
saying what to install.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import timedelta

import pytest

PACKAGE = "faketime"


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
    """`command`, run with the host's clock (not its monotonic clocks) `ahead` of the real one."""
    seconds = round(ahead.total_seconds())
    # libfaketime's relative offsets: seconds, or days with a `d` (which reads better in a log).
    offset = f"{seconds // 86_400:+d}d" if seconds % 86_400 == 0 else f"{seconds:+d}"
    return [faketime_program(), "--exclude-monotonic", "-f", offset, *command]
