"""The `tap-toggl-tasks` command (tap_toggl_tasks/__main__.py) keeps the garbage collector off
the objects its imports made, and on for everything after them."""

from __future__ import annotations

import sys

from tests.support.environment import clean_environ
from tests.support.processes import run

# The console script's program, with a report of the collector's state as the process ends.
PROGRAM = """
import atexit, gc, sys
atexit.register(
    lambda: print("collector", gc.isenabled(), gc.get_freeze_count(), file=sys.stderr)
)
from tap_toggl_tasks.__main__ import main
main()
"""


def test_the_command_freezes_what_its_imports_made_and_collects_the_rest() -> None:
    done = run([sys.executable, "-c", PROGRAM, "--about"], env=clean_environ(), timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Name: tap-toggl-tasks" in done.stdout
    word, enabled, frozen = done.stderr.splitlines()[-1].split()
    assert (word, enabled) == ("collector", "True")
    # The SDK's modules, classes and functions: tens of thousands of objects.
    assert int(frozen) > 10_000
