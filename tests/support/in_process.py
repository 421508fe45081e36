"""The tap run in this process: fast enough for hypothesis, and its host clock can be moved.

`host_now` is what the stream's `host_clock` reads, the one place the tap looks at this
machine's clock (to judge whether a bookmark is too old for `since`): what libfaketime does to a
whole process, for one run here. Runs as a process, as users run the tap, are in tap_runs.py.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any

from tap_toggl_tasks.errors import TogglError
from tap_toggl_tasks.streams import TasksStream
from tap_toggl_tasks.tap import TapTogglTasks


def sync(
    config: dict[str, Any], state: dict[str, Any] | None, host_now: datetime | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """One run of the tap: the messages it wrote, and whether it finished."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    finished = True
    shift = (host_now or datetime.now(UTC)) - datetime.now(UTC)
    with contextlib.redirect_stdout(out):
        try:
            tap = TapTogglTasks(config=config, state=state, parse_env_config=False)
            stream = tap.streams["tasks"]
            assert isinstance(stream, TasksStream)
            stream.host_clock = lambda: datetime.now(UTC) + shift  # type: ignore[method-assign]
            tap.sync_all()
        except TogglError:
            finished = False
        out.flush()
    lines = out.buffer.getvalue().decode().splitlines()
    return [json.loads(line) for line in lines], finished


def last_state(messages: list[dict[str, Any]], fallback: dict[str, Any] | None) -> Any:
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1] if states else fallback
