"""The SDK internals the tap still relies on, all here; tests/test_sdk_internals.py fences each.

Everything else the tap uses is the SDK's public API. These stay because no public hook does
their job in singer-sdk 0.54:

- `conform_record_data_types`: the SDK's own record conformance, which `conformance.py` calls
  for records it cannot prove unchanged (the public `TypeConformanceLevel` only switches it).
- `Tap._handle_termination`: the SDK's SIGTERM/SIGINT handler (writes the state, exits 0); the
  tap wraps it so that an interrupted sync exits non-zero. Named here so the fence can check
  it is still the method the SDK installs as the signal handler.
"""

from __future__ import annotations

from singer_sdk.helpers._typing import conform_record_data_types

TERMINATION_HANDLER = "_handle_termination"

__all__ = ["TERMINATION_HANDLER", "conform_record_data_types"]
