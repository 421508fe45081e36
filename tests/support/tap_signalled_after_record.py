"""`python -m tests.support.tap_signalled_after_record N SIGNAL TAP_ARGS...`: the tap, signalled
by itself.

It raises SIGNAL right after writing its Nth RECORD, so that a test chooses exactly where in
a page the signal lands, instead of wherever a test process happens to send it.
"""

from __future__ import annotations

import signal
import sys

from singer_sdk.singerlib import Message, RecordMessage
from typing_extensions import override

from tap_toggl_tasks.cli import TasksMessageWriter
from tap_toggl_tasks.tap import TapTogglTasks


class SignallingWriter(TasksMessageWriter):
    """The tap's writer, raising a signal right after a chosen RECORD."""

    after: int = 0
    signal: signal.Signals = signal.SIGTERM
    _written = 0

    @override
    def write_message(self, message: Message) -> None:
        super().write_message(message)
        if isinstance(message, RecordMessage):
            self._written += 1
            if self._written == self.after:
                # Delivered at once: the handler runs before the tap takes another step.
                signal.raise_signal(self.signal)


def main() -> None:
    after, signal_name, *tap_args = sys.argv[1:]
    SignallingWriter.after = int(after)
    SignallingWriter.signal = signal.Signals[signal_name]
    TapTogglTasks.message_writer_class = SignallingWriter
    TapTogglTasks.cli(tap_args)


if __name__ == "__main__":
    main()
