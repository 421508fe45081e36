"""`meltano`, run for real in a copy of this project, reading a local Toggl server."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.environment import clean_environ
from tests.support.processes import run
from tests.support.project import MELTANO_BIN, make_project
from toggl_standin.demo_data import parse_at
from toggl_standin.server import TogglServer

API_TOKEN = "tok-pipeline-never-print-me"


@dataclass
class Meltano:
    """`meltano` in a project of its own, with an environment of its own (Toggl, databases)."""

    env: dict[str, str]
    cwd: Path
    secrets: tuple[str, ...] = (API_TOKEN,)

    @property
    def warehouse(self) -> Path:
        """The DuckDB file target-duckdb writes by default."""
        return self.cwd / "output" / "warehouse.duckdb"

    def __call__(self, *args: str, timeout: float = 600) -> str:
        """Run one Meltano command; fail the test with the end of its log when it fails."""
        done = self.run(*args, timeout=timeout)
        if done.returncode != 0:
            output = done.stdout + done.stderr
            pytest.fail(f"meltano {' '.join(args)} exited {done.returncode}:\n{output[-6000:]}")
        return done.stdout

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one Meltano command whatever its exit code (a CompletedProcess); no secret may
        reach its output."""
        done = run(
            [str(MELTANO_BIN / "meltano"), *args], cwd=self.cwd, env=self.env, timeout=timeout
        )
        for secret in self.secrets:
            assert secret not in done.stdout + done.stderr, "a secret reached Meltano's output"
        return done

    def state(self, state_id: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self("state", "get", state_id))
        return value

    def bookmark(self, state_id: str) -> datetime:
        stream = self.state(state_id)["singer_state"]["bookmarks"]["tasks"]
        return parse_at(stream["replication_key_value"])


def meltano_env(toggl: TogglServer, **extra: str) -> dict[str, str]:
    """A user's shell environment, with Meltano on PATH and this Toggl server's URL and token."""
    return clean_environ(
        PATH=f"{MELTANO_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        TAP_TOGGL_TASKS_API_URL=toggl.url,
        TAP_TOGGL_TASKS_API_TOKEN=API_TOKEN,
        **extra,
    )


def meltano_project(tmp_path: Path, toggl: TogglServer, **extra: str) -> Meltano:
    """Meltano in a fresh copy of this project under tmp_path, reading this Toggl server."""
    return Meltano(meltano_env(toggl, **extra), cwd=make_project(tmp_path / "project"))
