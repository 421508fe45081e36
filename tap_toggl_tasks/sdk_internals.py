"""The SDK internals the tap still relies on, all here; tests/test_sdk_internals.py fences each.

Everything else the tap uses is the SDK's public API. These stay because no public hook does
their job in singer-sdk 0.54:

- `conform_record_data_types`: the SDK's own record conformance, which `conformance.py` calls
  for records it cannot prove unchanged (the public `TypeConformanceLevel` only switches it).
- `Tap._handle_termination`: the SDK's SIGTERM/SIGINT handler (writes the state, exits 0); the
  tap wraps it so that an interrupted sync exits non-zero. Named here so the fence can check
  it is still the method the SDK installs as the signal handler.
- `Stream._stream_version`: the table version the SDK puts in every RECORD message. The SDK
  sets it only for full-table streams; the protocol's passes that list every task need it too,
  so that ACTIVATE_VERSION lets a loader mark the rows of deleted tasks.
"""

from __future__ import annotations

from typing import Any

from singer_sdk.helpers._typing import conform_record_data_types

TERMINATION_HANDLER = "_handle_termination"

STREAM_VERSION = "_stream_version"


def set_table_version(stream: Any, version: int | None) -> None:
    """The table version the SDK writes into the stream's RECORD messages (None: none)."""
    setattr(stream, STREAM_VERSION, version)


__all__ = [
    "STREAM_VERSION",
    "TERMINATION_HANDLER",
    "conform_record_data_types",
    "set_table_version",
]
