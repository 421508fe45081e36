"""The tap as a command: what a user sees of it beyond the records.

Errors the tap explains end the command with their one ERROR paragraph and exit 1 (no
traceback); `--test` makes one request instead of a sync; a signal ends it non-zero after the
state is written; SDK log lines that call this tap's normal case a problem are dropped; and
messages go to stdout with one flush per message that is not a RECORD.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import sys
from typing import IO, TYPE_CHECKING, Any

import click
import requests
from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Message, RecordMessage, SchemaMessage, StateMessage
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_toggl_tasks.errors import TogglError, TogglInputError
from tap_toggl_tasks.sdk_internals import TERMINATION_HANDLER
from tap_toggl_tasks.streams import TasksStream

if TYPE_CHECKING:
    from types import FrameType

# What to pass instead of a file that is not JSON, by the option that named it.
_JSON_INPUTS = {
    "--state": "the value of the last STATE message an earlier run of this tap emitted "
    "(Meltano does this for you), or no --state to sync everything again",
    "--catalog": "the catalog `tap-toggl-tasks --discover` prints, with the streams to sync "
    "selected, or no --catalog to sync every stream",
}


class TasksMessageWriter(MsgSpecWriter):
    """The SDK's msgspec writer, flushing stdout after every message but a RECORD, and
    without the copy of the input state the SDK writes before anything else.

    A flush per record is a system call per record. Flushing with every other message (STATE
    above all) still hands a target each record before the state that covers it.
    target-duckdb 0.8.0 keeps the first STATE of a run that loads no row, so that copy would
    keep a quiet account's bookmark from ever moving; the run's own STATE follows anyway.
    """

    schema_written = False

    @override
    def write_message(self, message: Message) -> None:
        if isinstance(message, SchemaMessage):
            self.schema_written = True
        elif isinstance(message, StateMessage) and not self.schema_written:
            return
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()


class CommandLineTap(Tap):
    """The command-line behaviour of tap-toggl-tasks, under `TapTogglTasks` (tap.py)."""

    message_writer_class = TasksMessageWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Once each: addFilter ignores a filter the logger already has.
        logging.getLogger("singer_sdk").addFilter(_NORMAL_CASE_NOISE)
        stream_logger = logging.getLogger(f"{self.name}.{TasksStream.name}")
        stream_logger.addFilter(_NORMAL_CASE_NOISE)
        stream_logger.addFilter(_HANDLED_ERRORS)
        super().__init__(*args, **kwargs)

    def test_connection(self) -> None:
        """One request for one task, with the sync's retries: the URL and credentials proven.

        A request, not a sync: nothing is written to stdout, and it costs one request of
        Toggl's hourly quota.
        """
        stream = self.streams[TasksStream.name]
        if not isinstance(stream, TasksStream):  # pragma: no cover - discover_streams makes it
            raise TypeError(stream)
        request = stream.build_prepared_request(
            method="GET", url=stream.get_url(None), params={"per_page": 1}
        )

        def send() -> requests.Response:
            response = stream.requests_session.send(request, timeout=stream.timeout)
            stream.validate_response(response)
            return response

        stream.request_decorator(send)()

    @override
    @classmethod
    def invoke(
        cls,
        *args: Any,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            state = _json_file(state, "--state")
            catalog = _json_file(catalog, "--catalog")
            super().invoke(*args, state=state, catalog=catalog, **kwargs)
        except ConfigValidationError as exc:
            # Here rather than in the SDK's handler, which logs each problem as an ERROR of its
            # own: the message already lists them all, with what to do.
            cls.logger.error("%s", exc)  # noqa: TRY400
            sys.exit(1)
        except TogglError as exc:
            # The message already says what to do; a traceback would only bury it.
            cls.logger.error("%s", exc)  # noqa: TRY400
            sys.exit(1)

    @override
    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        # --test runs while click parses the command line, before invoke() could explain errors.
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)  # disabled, or --test=schema
            return
        config = ctx.params.get("config")
        try:
            tap = cls(
                config=dict(config.config) if config else {},
                parse_env_config=bool(config and config.parse_env),
                setup_mapper=False,
            )
            tap.test_connection()
        except ConfigValidationError as exc:
            cls.logger.error("%s The connection was not tested.", exc)  # noqa: TRY400
            ctx.exit(1)
        except TogglError as exc:
            cls.logger.error("Connection test failed. %s", exc)  # noqa: TRY400
            ctx.exit(1)
        cls.logger.info("Connection test passed: Toggl accepted the URL and the credentials.")
        ctx.exit(0)


def _exit_nonzero_when_stopped(self: CommandLineTap, signum: int, frame: FrameType | None) -> None:
    sdk_handler = getattr(super(CommandLineTap, self), TERMINATION_HANDLER)
    try:
        sdk_handler(signum, frame)  # writes the state, then exits 0
    except SystemExit:
        # An interrupted sync must not look like a finished one to a scheduler.
        self.logger.error(  # noqa: TRY400
            "Stopped by %s before the sync finished. The state holds its progress: the "
            "next run resumes where this one stopped.",
            signal.Signals(signum).name,
        )
        raise SystemExit(128 + signum) from None


# The SDK installs this method as its SIGTERM and SIGINT handler: overridden by the name the
# fence (sdk_internals.py) checks, since no public hook runs when the tap is stopped.
setattr(CommandLineTap, TERMINATION_HANDLER, _exit_nonzero_when_stopped)


def _json_file(file: IO[str] | None, option: str) -> IO[str] | None:
    """The file's text, for the SDK to read, once it is known to be JSON; None for no file."""
    if file is None:
        return None
    text = file.read()
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise TogglInputError(
            f"The {option} file {file.name} is not JSON ({exc}). Pass {_JSON_INPUTS[option]}."
        ) from None
    return io.StringIO(text)


class _DropNormalCaseNoise(logging.Filter):
    """Drops SDK log lines that describe this tap's normal case as if it were a problem."""

    NOISE = (
        # Toggl documents no order, so the bookmark advances only when a sync completes: the
        # README says so, and a warning on every run would teach users to ignore warnings.
        "Stream is assumed to be unsorted",
        # The SDK's guess at where the sync starts ("bookmark value: None" on a resume); the
        # tap logs where it really starts (sync.py).
        "Starting incremental sync of",
    )

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOISE)


class _DropHandledErrorNoise(logging.Filter):
    """Drops the SDK's "An unhandled error occurred" ERROR for errors the tap explains itself.

    The SDK logs it inside its `except` block, before re-raising: the error being handled is
    the one on its way up. A TogglError gets the tap's one ERROR paragraph instead; any other
    error (a bug) keeps the SDK's line and its traceback.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("An unhandled error occurred while syncing"):
            return True
        return not isinstance(sys.exc_info()[1], TogglError)


_NORMAL_CASE_NOISE = _DropNormalCaseNoise()
_HANDLED_ERRORS = _DropHandledErrorNoise()
