"""Fences: each SDK behaviour the tap leans on beyond plain public calls, checked directly, so an
SDK upgrade that changes one fails here, by name, instead of somewhere deep in a sync."""

from __future__ import annotations

import inspect
import logging

from singer_sdk import Tap
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.plugin_base import PluginBase

from tap_toggl_tasks import sdk_internals
from tap_toggl_tasks.schema import TASK_SCHEMA
from tap_toggl_tasks.tap import TapTogglTasks


def test_the_sdks_conformance_function_is_still_there_and_conforms() -> None:
    parameters = inspect.signature(sdk_internals.conform_record_data_types).parameters
    assert list(parameters) == ["stream_name", "record", "schema", "level", "logger"]
    conformed = sdk_internals.conform_record_data_types(
        stream_name="tasks",
        record={"id": 1, "active": 1},
        schema=TASK_SCHEMA,
        level=TypeConformanceLevel.RECURSIVE,
        logger=logging.getLogger("fence"),
    )
    assert conformed == {"id": 1, "active": True}


def test_the_sdk_still_installs_its_termination_handler_for_sigterm() -> None:
    handler = getattr(Tap, sdk_internals.TERMINATION_HANDLER)
    assert list(inspect.signature(handler).parameters) == ["self", "signum", "frame"]
    source = inspect.getsource(PluginBase)
    assert f"signal.signal(signal.SIGTERM, self.{sdk_internals.TERMINATION_HANDLER})" in source


def test_finalizing_keeps_the_protocols_bookmark_and_own_keys() -> None:
    # Public calls, but the bookmark rests on their exact effect: the protocol sets the
    # bookmark itself and drops the SDK's progress markers; finalizing must then change nothing.
    tap = TapTogglTasks(config={"api_token": "t"}, state={}, parse_env_config=False)
    manager = tap.streams["tasks"].state_manager
    manager.increment_state({"at": "2026-01-01T00:00:09.000000+00:00"}, replication_key="at")
    stream_state = manager.stream_state
    stream_state.pop("progress_markers")
    stream_state |= {"replication_key": "at", "replication_key_value": "2026-01-01T00:00:05+00:00"}
    stream_state["known_ids"] = "x"
    manager.finalize_state(stream_state)

    assert tap.state == {
        "bookmarks": {
            "tasks": {
                "replication_key": "at",
                "replication_key_value": "2026-01-01T00:00:05+00:00",
                "known_ids": "x",
            }
        }
    }


def test_records_carry_the_table_version_the_stream_is_given() -> None:
    tap = TapTogglTasks(config={"api_token": "t"}, parse_env_config=False)
    stream = tap.streams["tasks"]
    sdk_internals.set_table_version(stream, 1234)
    messages = list(stream._generate_record_messages({"id": 1, "at": "2026-01-01T00:00:00Z"}))

    assert [message.version for message in messages] == [1234]
