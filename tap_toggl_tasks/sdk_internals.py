"""The SDK internals the tap relies on, all here; tests/core/test_sdk_internals.py fences each.

Everything else the tap uses is the SDK's public API. These stay because no public hook does
their job in singer-sdk 0.54; each test fails when an upgrade changes what it relies on:

- `conform_record_data_types`: the SDK's own record conformance, which `conformance.py` calls
  for records it cannot prove unchanged (the public `TypeConformanceLevel` only switches it).
- `Tap._handle_termination`: the SDK's SIGTERM/SIGINT handler (writes the state, exits 0); the
  tap wraps it so that an interrupted sync exits non-zero.
- `Stream._stream_version`: the table version the SDK puts in every RECORD message. The SDK
  sets it only for full-table streams; the tap's passes need it too (ACTIVATE_VERSION).
- `Tap.state_writer`: a STATE after each page, where the SDK writes one only every 10,000
  records; `Tap.write_message` for ACTIVATE_VERSION, which the SDK sends only for full-table
  streams, before their records.
- `progress_markers`: the key under which the SDK tracks the newest `at` it saw; the tap's
  bookmark is when the sync began, so the marker is dropped before the SDK would promote it.
- The order of streams: the SDK syncs them in name order, so `tasks_listings` follows `tasks`.
"""

from __future__ import annotations

from typing import Any

from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.singerlib import ActivateVersionMessage

TERMINATION_HANDLER = "_handle_termination"
STREAM_VERSION = "_stream_version"
PROGRESS_MARKERS = "progress_markers"


def set_table_version(stream: Any, version: int | None) -> None:
    """The table version the SDK writes into the stream's RECORD messages (None: none)."""
    setattr(stream, STREAM_VERSION, version)


def write_state(stream: Any) -> None:
    """A STATE message with the tap's state now, without the SDK's progress marker."""
    stream.stream_state.pop(PROGRESS_MARKERS, None)
    stream._tap.state_writer.write_state(stream.tap_state)


def write_activate_version(stream: Any, version: int) -> None:
    """ACTIVATE_VERSION for the stream: loaders mark the rows of older versions deleted."""
    stream._tap.write_message(ActivateVersionMessage(stream=stream.name, version=version))


def syncs_in_name_order(stream_names: list[str]) -> list[str]:
    """The order in which the SDK syncs streams of these names (tests pin it)."""
    return sorted(stream_names)


__all__ = [
    "PROGRESS_MARKERS",
    "STREAM_VERSION",
    "TERMINATION_HANDLER",
    "conform_record_data_types",
    "set_table_version",
    "syncs_in_name_order",
    "write_activate_version",
    "write_state",
]
