"""Running the tap the way users do: as a process, against a local Toggl-compatible server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.support.environment import clean_environ
from tests.support.warm_taps import fork_server, forkable
from toggl_standin.server import TogglServer

API_TOKEN = "tok-3f9c-never-print-me"
EMAIL = "ada@example.com"
PASSWORD = "pw-never-print-me"
# The secrets, and the Authorization header values that would carry them.
SECRETS = (
    API_TOKEN,
    PASSWORD,
    base64.b64encode(f"{API_TOKEN}:api_token".encode()).decode(),
    base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode(),
)


# The tap's console script, started with -c. Under `--config ENV` the SDK loads the `.env` that
# python-dotenv finds, and lets it override the environment. Run from a file (`-m`, the console
# script), python-dotenv searches upward from the SDK's own folder: with a virtualenv inside the
# checkout, the developer's `.env`. Run with -c, it searches from the working directory instead,
# the test's own folder, so the test's variables are what the tap sees.
TAP_PROGRAM = "from tap_toggl_tasks.__main__ import main; main()"


@dataclass
class TapRun:
    """What one run of `tap-toggl-tasks` printed, parsed into Singer messages."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The tasks (records of the `tasks` stream)."""
        return self.records_of("tasks")

    @property
    def listings(self) -> list[dict[str, Any]]:
        return self.records_of("tasks_listings")

    def records_of(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        return self.states[-1]

    @property
    def bookmark(self) -> str | None:
        stream_state = self.final_state.get("bookmarks", {}).get("tasks", {})
        value = stream_state.get("replication_key_value")
        return None if value is None else str(value)

    @property
    def schema(self) -> dict[str, Any]:
        return next(m["schema"] for m in self.messages if m["type"] == "SCHEMA")

    @property
    def errors(self) -> list[str]:
        """The ERROR lines of the log, without their timestamp and logger columns."""
        return [line.split("|")[-1].strip() for line in self.stderr.splitlines() if "ERROR" in line]

    @property
    def error(self) -> str:
        """The last ERROR line: the one that says what went wrong and what to do."""
        return self.errors[-1]


def bookmarks_in(run: TapRun) -> set[str | None]:
    """Every bookmark the run's STATE messages carried (None: a state without one)."""
    return {
        state.get("bookmarks", {}).get("tasks", {}).get("replication_key_value")
        for state in run.states
    }


def run_tap(
    config: dict[str, Any],
    tmp_path: Path,
    *,
    state: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run the tap as a user would, with a config file (and a state file), in tmp_path."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    # An empty .env that python-dotenv finds first: see TAP_PROGRAM.
    (tmp_path / ".env").touch()
    argv = ["--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        argv += ["--state", str(state_file)]
    environ = clean_environ(**(env or {}))  # none of the developer's settings
    started = forked_run if forkable(environ) else cold_run
    returncode, stdout, stderr = started(argv, tmp_path, environ, timeout)
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"type"')]
    run = TapRun(returncode, stdout, stderr, messages)
    for secret in SECRETS:
        assert secret not in stdout + stderr, "a secret reached the tap's output"
    return run


def cold_run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """`python -c TAP_PROGRAM ARGS` in a fresh interpreter: its exit status, stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-c", TAP_PROGRAM, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def forked_run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """`subprocess.run(TAP_PROGRAM ARGS, capture_output=True, text=True)`, forked (warm_taps)."""
    with (
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
        Path(os.devnull).open("rb") as stdin,
    ):
        tap = fork_server().start(args, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr)
        try:
            returncode = tap.wait(timeout)
        except subprocess.TimeoutExpired:
            tap.kill()
            tap.wait()
            raise
        return returncode, text_of(stdout), text_of(stderr)


def text_of(output: IO[bytes]) -> str:
    """What a process wrote to this file, as `text=True` reads it (universal newlines)."""
    output.seek(0)
    return output.read().decode().replace("\r\n", "\n").replace("\r", "\n")


def config_for(toggl: TogglServer, **overrides: Any) -> dict[str, Any]:
    """A working config for the local server; overrides replace or (with None) remove keys."""
    # Pacing (one request a second) is pinned by its own test; elsewhere it would only wait.
    config: dict[str, Any] = {
        "api_token": API_TOKEN,
        "api_url": toggl.url,
        "request_interval_seconds": 0,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def about_json() -> dict[str, Any]:
    """What `tap-toggl-tasks --about --format=json` prints: capabilities, settings, Pythons."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_toggl_tasks", "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    value: dict[str, Any] = json.loads(done.stdout)
    return value
