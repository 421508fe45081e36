"""tap-toggl-tasks: its settings, their checks, and its one stream."""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import logging
import signal
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import requests
import simplejson
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import Message, RecordMessage, SchemaMessage, StateMessage
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_toggl_tasks.errors import DEFAULT_API_URL, TogglError, TogglInputError
from tap_toggl_tasks.state import is_timestamp
from tap_toggl_tasks.state import problem as tasks_state_problem
from tap_toggl_tasks.streams import ListingsStream, TasksStream

if TYPE_CHECKING:
    from types import FrameType

VERSION = metadata.version("tap-toggl-tasks")
# One request fetches up to 1000 tasks (about 1 MB): most accounts sync in one request,
# and the largest in a few, well inside Toggl's 30 requests per hour.
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000
# A write Toggl commits (or shows) a little after stamping its `at`, or during the time it
# answers the sync's first request, would fall just below the bookmark: a minute re-reads it.
LOOKBACK_SECONDS = 60

SETTINGS = th.PropertiesList(
    th.Property(
        "api_token",
        th.StringType,
        secret=True,
        description="Toggl Track API token (Profile settings > API Token). Use this, or "
        "email and password.",
    ),
    th.Property("email", th.StringType, description="Toggl login email, with password."),
    th.Property(
        "password",
        th.StringType,
        secret=True,
        description="Toggl login password, with email.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="Toggl Track API v9 base URL. Plain http:// is refused except on loopback.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Earliest `at` (task created or modified) to sync on the first run; "
        "absent means all history.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=2, maximum=MAX_PAGE_SIZE),
        default=DEFAULT_PAGE_SIZE,
        description=f"Tasks per request (`per_page`), 2 to {MAX_PAGE_SIZE}. Large pages save "
        "requests, the scarcest thing under Toggl's hourly quota.",
    ),
    th.Property(
        "include_not_active",
        th.BooleanType,
        default=True,
        description="Include tasks marked done. Keep it true: otherwise a task done after "
        "one sync never reaches the warehouse as done.",
    ),
    th.Property(
        "include_hidden",
        th.BooleanType,
        default=True,
        description="Include tasks Toggl hides (`include_hidden`). Keep it true: Toggl does not "
        "say what it hides, and a warehouse should hold every task.",
    ),
    th.Property(
        "search",
        th.StringType,
        description="Only tasks whose name, project or client contains this text (`search`). "
        "Changing it makes the next run a full sync, since the bookmark covered the old filter.",
    ),
    th.Property(
        "meta",
        th.BooleanType,
        default=True,
        description="Ask for the meta fields: project_name, project_color, project_billable, "
        "client_name.",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        default=f"tap-toggl-tasks/{VERSION}",
        description="User-Agent header sent to Toggl.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1, maximum=3600),
        default=300,
        description="Seconds to wait for one response before retrying it.",
    ),
    th.Property(
        "request_interval_seconds",
        # Whole seconds: the SDK reads only integer (not number) settings from the environment.
        th.IntegerType(minimum=0, maximum=3600),
        default=1,
        description="Least time in seconds between the starts of two requests, retries "
        "included. Toggl asks for at most one request a second per API token; 0 turns pacing "
        "off (benchmarks, tests).",
    ),
    th.Property(
        "max_quota_wait_seconds",
        th.IntegerType(minimum=0, maximum=86400),
        default=3600,
        description="Longest wait for Toggl's hourly request quota to reset before stopping "
        "(the next run resumes where it stopped). 3600, the longest reset, always waits: an "
        "unattended run finishes rather than fails; 0 never waits.",
    ),
    th.Property(
        "lookback_seconds",
        th.IntegerType(minimum=0, maximum=86400),
        default=LOOKBACK_SECONDS,
        description="Seconds before the bookmark that each incremental run reads again, for "
        "writes Toggl shows later than their `at` and the time Toggl takes to answer.",
    ),
).to_dict()

_LOOPBACK_NAMES = {"localhost"}


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


class TapTogglTasks(Tap):
    """Singer tap for the tasks of Toggl Track's /me/tasks."""

    name = "tap-toggl-tasks"
    config_jsonschema = SETTINGS
    message_writer_class = TasksMessageWriter

    def __init__(self, *args: Any, validate_config: bool = True, **kwargs: Any) -> None:
        # Once each: addFilter ignores a filter the logger already has.
        logging.getLogger("singer_sdk").addFilter(_NORMAL_CASE_NOISE)
        stream_logger = logging.getLogger(f"{self.name}.{TasksStream.name}")
        stream_logger.addFilter(_NORMAL_CASE_NOISE)
        stream_logger.addFilter(_HANDLED_ERRORS)
        try:
            super().__init__(*args, validate_config=validate_config, **kwargs)
            errors: list[str] = []
        except ConfigValidationError as exc:
            # The schema's problems, reported below with the tap's own in one message. The SDK
            # sets the config before it validates it, so self.config is there.
            errors = list(exc.errors)
        self.warn_unknown_settings()
        if validate_config and (errors := errors + settings_errors(self.config)):
            raise ConfigValidationError(config_failure(errors), errors=errors)
        if self.input_catalog is not None and not any(s.selected for s in self.streams.values()):
            raise TogglInputError(
                "The catalog selects no stream, so there is nothing to sync. Mark the `tasks` "
                "stream selected (in Meltano: `select: [tasks.*]`), or run without --catalog."
            )

    def warn_unknown_settings(self) -> None:
        """A WARNING for each setting the tap does not know: a misspelt one is otherwise unset."""
        # The tap's settings and those the SDK adds for its capabilities (stream maps,
        # flattening, batch...), as `--about` lists them.
        schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(schema)
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(self.config) - set(known)):
            if close := difflib.get_close_matches(key, known, n=1):
                hint = f"did you mean {close[0]}?"
            else:
                hint = "the tap ignores it (`tap-toggl-tasks --about` lists the settings)."
            self.logger.warning("Unknown setting %s: %s", key, hint)

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
    def discover_streams(self) -> list[Stream]:
        # The SDK syncs streams in name order: tasks_listings comes after the tasks it reports on.
        tasks = TasksStream(self)
        return [tasks, ListingsStream(self, tasks)]

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        if problem := state_problem(state):
            raise TogglInputError(
                f"{problem} Pass the value of the last STATE message a run of this tap emitted "
                "(Meltano does this for you), or no state at all to sync everything again."
            )
        super().load_state(state)

    @override
    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        try:
            super().invoke(*args, **kwargs)
        except ConfigValidationError as exc:
            # Here rather than in the SDK's handler, which logs each problem as an ERROR of its
            # own: the message already lists them all, with what to do.
            cls.logger.error("%s", exc)  # noqa: TRY400
            sys.exit(1)
        except TogglError as exc:
            # The message already says what to do; a traceback would only bury it.
            cls.logger.error("%s", exc)  # noqa: TRY400
            sys.exit(1)
        # The SDK reads --state and --catalog files with simplejson.
        except (json.JSONDecodeError, simplejson.JSONDecodeError) as exc:
            cls.logger.error(  # noqa: TRY400
                "The --state or --catalog file is not JSON (%s). Pass a file holding one JSON "
                "object: for --state, the value of the last STATE message of an earlier run.",
                exc,
            )
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

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        try:
            super()._handle_termination(signum, frame)  # writes the state, then exits 0
        except SystemExit:
            # An interrupted sync must not look like a finished one to a scheduler.
            self.logger.error(  # noqa: TRY400
                "Stopped by %s before the sync finished. The state holds its progress: the "
                "next run resumes where this one stopped.",
                signal.Signals(signum).name,
            )
            raise SystemExit(128 + signum) from None


class _DropNormalCaseNoise(logging.Filter):
    """Drops SDK log lines that describe this tap's normal case as if it were a problem."""

    NOISE = (
        # Toggl documents no order, so the bookmark advances only when a sync completes: the
        # README says so, and a warning on every run would teach users to ignore warnings.
        "Stream is assumed to be unsorted",
        # The tap's end check (a page with no new task) is how a sync normally ends; the SDK
        # counts only pages that brought records ("after 1 pages" for two requests).
        "Pagination stopped after",
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


def config_failure(errors: list[str]) -> str:
    """One paragraph: every problem with the settings, and where to fix them."""
    problems = [error if error.endswith(".") else f"{error}." for error in errors]
    if len(problems) > 1:
        problems = [f"({number}) {problem}" for number, problem in enumerate(problems, 1)]
    return (
        f"Config validation failed, so nothing was requested from Toggl: {' '.join(problems)} "
        "Fix them where they are set (the --config file, TAP_TOGGL_TASKS_<SETTING> variables "
        "with --config ENV, or `meltano config set tap-toggl-tasks <setting> <value>`); "
        "`tap-toggl-tasks --about` lists every setting."
    )


def settings_errors(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with settings the JSON schema cannot judge alone; empty when all is well."""
    errors = []
    has_login = bool(config.get("email")) or bool(config.get("password"))
    if config.get("api_token") and has_login:
        errors.append("Set either api_token, or email and password, not both.")
    elif not config.get("api_token") and not has_login:
        errors.append(
            "No credentials: set api_token (Toggl Track > Profile settings > API Token), or "
            "email and password: in the file given with --config, or as "
            "TAP_TOGGL_TASKS_API_TOKEN in the environment with --config ENV."
        )
    elif has_login and not (config.get("email") and config.get("password")):
        errors.append("email and password go together: set both, or use api_token instead.")
    if problem := _api_url_problem(str(config.get("api_url", ""))):
        errors.append(problem)
    if (start := config.get("start_date")) and not is_timestamp(start):
        errors.append(
            f"start_date {start!r} is not a date: use ISO 8601, e.g. 2024-01-31 or "
            "2024-01-31T00:00:00Z."
        )
    return errors


def state_problem(state: Mapping[str, Any]) -> str | None:
    """Why a --state input cannot be this tap's state; None when it can."""
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


def _api_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return None
    return (
        f"api_url {url!r} must be an https:// URL such as {DEFAULT_API_URL} (plain http:// "
        "only for a server on this machine: localhost, 127.0.0.1, ::1), so that credentials "
        "never cross a network unencrypted."
    )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
