"""What every test shares: the property tests' profile, and the `server` fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.tap_runs import API_TOKEN, EMAIL, PASSWORD
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer

# CI (.ci/run) draws the same examples every time, so a red build is one anyone can rerun;
# on a developer's machine hypothesis explores anew each run (and replays what failed).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def server() -> Iterator[TogglServer]:
    """A Toggl-compatible server with 25 tasks (ids 1..25), 5 of them done."""
    tasks = [make_task(i, active=i % 5 != 0) for i in range(1, 26)]
    with TogglServer(tasks, api_token=API_TOKEN, email=EMAIL, password=PASSWORD) as toggl:
        yield toggl
