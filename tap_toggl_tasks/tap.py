"""tap-toggl-tasks: its name, its settings, its two streams, and the inputs it refuses."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from singer_sdk import Stream
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_toggl_tasks.cli import CommandLineTap
from tap_toggl_tasks.errors import TogglInputError
from tap_toggl_tasks.listings import ListingsStream
from tap_toggl_tasks.settings import SETTINGS, config_failure, settings_errors, unknown_settings
from tap_toggl_tasks.state import problem as tasks_state_problem
from tap_toggl_tasks.streams import TasksStream


class TapTogglTasks(CommandLineTap):
    """Singer tap for the tasks of Toggl Track's /me/tasks."""

    name = "tap-toggl-tasks"
    config_jsonschema = SETTINGS

    def __init__(self, *args: Any, validate_config: bool = True, **kwargs: Any) -> None:
        try:
            super().__init__(*args, validate_config=validate_config, **kwargs)
            errors: list[str] = []
        except ConfigValidationError as exc:
            # The schema's problems, reported below with the tap's own in one message. The SDK
            # sets the config before it validates it, so self.config is there.
            errors = list(exc.errors)
        # The tap's settings and those the SDK adds for its capabilities (stream maps,
        # flattening, batch...), as `--about` lists them.
        schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(schema)
        for warning in unknown_settings(self.config, schema.get("properties", {})):
            self.logger.warning("%s", warning)
        if validate_config and (errors := errors + settings_errors(self.config)):
            raise ConfigValidationError(config_failure(errors), errors=errors)
        if self.input_catalog is not None and not any(s.selected for s in self.streams.values()):
            raise TogglInputError(
                "The catalog selects no stream, so there is nothing to sync. Mark the `tasks` "
                "stream selected (in Meltano: `select: [tasks.*]`), or run without --catalog."
            )

    @override
    def discover_streams(self) -> list[Stream]:
        # The SDK syncs streams in name order: tasks_listings comes after the tasks it reports on.
        tasks = TasksStream(self)
        return [tasks, ListingsStream(self, tasks)]

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        if problem := singer_state_problem(state):
            raise TogglInputError(
                f"{problem} Pass the value of the last STATE message a run of this tap emitted "
                "(Meltano does this for you), or no state at all to sync everything again."
            )
        super().load_state(state)


def singer_state_problem(state: Mapping[str, Any]) -> str | None:
    """Why a --state input cannot be this tap's Singer state; None when it can."""
    if not state:
        return None
    bookmarks = state.get("bookmarks")
    if not isinstance(bookmarks, dict):
        return "The state has no `bookmarks` object, so it is not a Singer state."
    if foreign := sorted(set(bookmarks) - {TasksStream.name, ListingsStream.name}):
        return (
            f"The state holds bookmarks for streams this tap does not have ({', '.join(foreign)}): "
            "it seems to belong to another tap."
        )
    tasks = bookmarks.get("tasks", {})
    if not isinstance(tasks, dict):
        return "The state's `tasks` bookmark is not an object."
    return tasks_state_problem(tasks)
