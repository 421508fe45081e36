"""Fences: each SDK behaviour the tap leans on beyond plain public calls, checked directly, so an
SDK upgrade that changes one fails here, by name, instead of somewhere deep in a sync."""

from __future__ import annotations

import inspect
import json
import logging

import pytest
from singer_sdk import Tap
from singer_sdk.helpers import _state  # private: the module the progress-marker key comes from
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import SchemaMessage

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
    stream_state.pop(sdk_internals.PROGRESS_MARKERS)
    stream_state |= {"replication_key": "at", "replication_key_value": "2026-01-01T00:00:05+00:00"}
    stream_state["listed"] = 3
    manager.finalize_state(stream_state)

    assert tap.state == {
        "bookmarks": {
            "tasks": {
                "replication_key": "at",
                "replication_key_value": "2026-01-01T00:00:05+00:00",
                "listed": 3,
            }
        }
    }


def test_records_carry_the_table_version_the_stream_is_given() -> None:
    tap = TapTogglTasks(config={"api_token": "t"}, parse_env_config=False)
    stream = tap.streams["tasks"]
    sdk_internals.set_table_version(stream, 1234)
    messages = list(stream._generate_record_messages({"id": 1, "at": "2026-01-01T00:00:00Z"}))

    assert [message.version for message in messages] == [1234]


def test_the_sdks_progress_marker_key_is_the_one_the_tap_drops() -> None:
    assert _state.PROGRESS_MARKERS == sdk_internals.PROGRESS_MARKERS


def test_a_state_and_an_activate_version_go_out_through_the_taps_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tap = TapTogglTasks(config={"api_token": "t"}, parse_env_config=False)
    stream = tap.streams["tasks"]
    stream.stream_state["replication_key_value"] = "2026-01-01T00:00:05+00:00"
    stream.stream_state[sdk_internals.PROGRESS_MARKERS] = {"replication_key_value": "later"}
    tap.write_message(SchemaMessage("tasks", {}, ["id"]))  # the writer skips STATEs before one
    sdk_internals.write_state(stream)
    sdk_internals.write_activate_version(stream, 42)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[1] == {
        "type": "STATE",
        "value": {"bookmarks": {"tasks": {"replication_key_value": "2026-01-01T00:00:05+00:00"}}},
    }
    assert lines[2] == {"type": "ACTIVATE_VERSION", "stream": "tasks", "version": 42}


def test_the_sdk_syncs_streams_in_name_order_so_listings_follow_tasks() -> None:
    # Tap.load_streams sorts by name; discover_streams' order is not what the SDK follows.
    source = inspect.getsource(Tap.load_streams)
    assert "sorted(" in source
    tap = TapTogglTasks(config={"api_token": "t"}, parse_env_config=False)
    assert [stream.name for stream in tap.load_streams()] == ["tasks", "tasks_listings"]
    assert sdk_internals.syncs_in_name_order(["tasks_listings", "tasks"]) == [
        "tasks",
        "tasks_listings",
    ]


def test_the_sdk_still_writes_the_input_state_first_which_the_writer_drops() -> None:
    # target-duckdb keeps a run's first STATE when it loads nothing: the tap's writer drops
    # the SDK's copy of the input state (written before any SCHEMA) so the first is the run's.
    source = inspect.getsource(Tap.sync_all)
    assert "write_state(self.state)" in source
