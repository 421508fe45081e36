"""The `tasks` stream: GET {api_url}/me/tasks, its pages handed to the sync protocol.

The stream is the HTTP glue: URL, credentials, query parameters, Toggl's answers parsed and
checked, records made uniform. Which pages to ask for, what `since` to send and what the state
holds are decided in `protocol.py`. The `tasks_listings` stream, synced after it, writes the
listing the tasks sync completed, if any: no request of its own.
"""

from __future__ import annotations

import datetime
import decimal
import email.utils
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import requests
from singer_sdk import RESTStream, Stream, Tap
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.singerlib import ActivateVersionMessage
from typing_extensions import override

from tap_toggl_tasks.conformance import FlatConformer
from tap_toggl_tasks.errors import (
    QUOTA_REMAINING_HEADER,
    TogglError,
    TogglFatalError,
    TogglRetryableError,
    body_text,
    describe,
    error_for,
    unexpected_body,
)
from tap_toggl_tasks.protocol import (
    FILTER_SETTINGS,
    UNFINISHED,
    Settings,
    Sync,
    Task,
    as_utc,
    bookmark_form,
)
from tap_toggl_tasks.retrying import TogglRetries
from tap_toggl_tasks.schema import LISTING_SCHEMA, TASK_SCHEMA, TIMESTAMP_FIELDS
from tap_toggl_tasks.sdk_internals import set_table_version

# Floats become Decimal so that `rate` keeps its exact value on the way to the warehouse.
_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)


class SinceRefused(TogglFatalError):
    """Toggl refused the pass's `since`: the pass starts over without it."""


@dataclass(frozen=True)
class PageAt:
    """The page token: a row offset, wrapped so that offset 0 is a token like any other (the
    SDK ends paging on a falsy token)."""

    offset: int


class ProtocolPaginator(BaseAPIPaginator[PageAt]):
    """The SDK's paging loop, steered by the protocol: the next offset is the one it chose."""

    def __init__(self, sync: Sync) -> None:
        super().__init__(start_value=PageAt(sync.next_offset or 0))
        self._sync = sync

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._sync.next_offset is not None

    @override
    def get_next(self, response: requests.Response) -> PageAt | None:
        offset = self._sync.next_offset
        return None if offset is None else PageAt(offset)

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # A page can bring no new task and still not be the last (a step back, an insert).
        return True


class TasksStream(TogglRetries, RESTStream[PageAt]):
    """Tasks of every project the user takes part in, done and deleted ones included."""

    name = "tasks"
    path = "/me/tasks"
    primary_keys = ("id",)
    replication_key = "at"
    schema = TASK_SCHEMA
    # Toggl documents no sort order: the protocol settles the bookmark when a sync completes.
    is_sorted = False
    # post_process conforms records itself, to the same result at a fraction of the cost.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, **kwargs: Any) -> None:
        super().__init__(tap, **kwargs)
        self.tap = tap  # its state writer emits a STATE after every page
        self._current_sync: Sync | None = None
        self.requests_made = 0
        self.listing: Task | None = None  # what tasks_listings writes after this stream

    @override
    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @override
    @functools.cached_property
    def authenticator(self) -> BasicAuthenticator:
        if token := self.config.get("api_token"):
            # Toggl's token form: the token as user name, the literal word as password.
            return BasicAuthenticator(username=token, password="api_token")  # noqa: S106
        return BasicAuthenticator(username=self.config["email"], password=self.config["password"])

    @override
    @property
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @property
    def current_sync(self) -> Sync:
        if self._current_sync is None:
            raise RuntimeError("no sync in progress")
        return self._current_sync

    def protocol_settings(self) -> Settings:
        start_date = self.config.get("start_date")
        return Settings(
            filters={name: self.config.get(name) for name in FILTER_SETTINGS},
            lookback_seconds=int(self.config["lookback_seconds"]),
            start_date=None if start_date is None else as_utc(start_date),
        )

    @override
    def get_new_paginator(self) -> ProtocolPaginator:
        return ProtocolPaginator(self.current_sync)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # The protocol sets the bookmark itself (when the sync began, by Toggl's clock).
        return None

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        sync = self._current_sync = Sync.plan(
            self.stream_state, self.protocol_settings(), self.host_clock()
        )
        for note in sync.notes:
            self.logger.warning("%s", note)
        for note in sync.info:
            self.logger.info("%s", note)
        if sync.resumed:
            self.logger.info(
                "Resuming the sync that began at %s (Toggl's clock), at offset %d.",
                bookmark_form(sync.began or self.host_clock()),
                sync.pager.offset,
            )
        try:
            yield from super().get_records(context)
        except SinceRefused as refused:
            self.logger.warning(
                "%s This run reads every task without `since` instead; the next run's `since` "
                "is recent again.",
                refused,
            )
            sync.without_since()
            yield from super().get_records(context)
        if sync.pager.gap:
            self.logger.warning(
                "Toggl's task list changed under this sync more than it could bridge, so some "
                "unchanged tasks may have been skipped. The bookmark stays where it was: the "
                "next run reads these tasks again."
            )
        activate = sync.activates and not sync.pager.gap
        tombstones = sync.finish(self.stream_state)
        self.listing = sync.listing
        # The SDK's own bookmark (the newest `at` seen) must not replace the protocol's.
        self.stream_state.pop("progress_markers", None)
        if tombstones:
            self.logger.info(
                "%d task(s) loaded earlier are no longer listed by Toggl: marked deleted "
                "(server_deleted_at).",
                len(tombstones),
            )
        yield from tombstones
        # Here the SDK has written every record, tombstones included. In BATCH mode the last
        # batch goes out only after this: no ACTIVATE_VERSION, which would run ahead of it.
        if activate and sync.version is not None and not self.get_batch_config(self.config):
            self.tap.write_message(ActivateVersionMessage(stream=self.name, version=sync.version))

    def host_clock(self) -> datetime.datetime:
        """This machine's clock: it only decides whether a bookmark is too old for `since`."""
        return datetime.datetime.now(datetime.UTC)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: PageAt | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "include_not_active": str(self.config["include_not_active"]).lower(),
            "include_hidden": str(self.config["include_hidden"]).lower(),
            "meta": str(self.config["meta"]).lower(),
            "per_page": self.config["page_size"],
            "offset": next_page_token.offset if next_page_token else 0,
        }
        # `inbox` is not sent: it applies Toggl's "inbox priority logic", undocumented, to what
        # comes back, and a warehouse wants every task as it is.
        if search := self.config.get("search"):
            params["search"] = search
        if self.current_sync.since is not None:
            params["since"] = self.current_sync.since
        return params

    @override
    def validate_response(self, response: requests.Response) -> None:
        if (sync := self._current_sync) is not None:  # (--test checks a response alone)
            self.requests_made += 1
            # `at` comes from Toggl's clock, so the bookmark must too: its `Date` header.
            sync.answered(toggl_time(response) or self.host_clock())
            if response.status_code == 400 and sync.since is not None:
                raise SinceRefused(
                    f"Toggl refused `since` {sync.since} ({describe(response)}: "
                    f"{body_text(response)})."
                )
        if response.status_code != 200:
            raise error_for(response, max_quota_wait=self.config["max_quota_wait_seconds"])
        tasks_in(response)  # parse here, so that a garbled body is retried like a 5xx

    @override
    def parse_response(self, response: requests.Response) -> Iterator[Task]:
        sync = self.current_sync
        set_table_version(self, sync.version)
        offset = sync.next_offset
        tasks = sync.read_page(tasks_in(response))
        # Before the page's tasks: a STATE that still resumes at this page but already knows
        # their ids, so that no row a loader may hold is unknown to the state.
        self.save_progress()
        yield from tasks
        # Only now, with every task of the page emitted, may the state resume after it.
        sync.committing()
        self.log_progress(offset, response)
        if not sync.finished:  # (else get_records settles the state)
            self.save_progress()

    def save_progress(self) -> None:
        self.stream_state[UNFINISHED] = self.current_sync.checkpoint()
        if not self.get_batch_config(self.config):
            # In BATCH mode the SDK writes the state after each BATCH message instead, so a
            # STATE never runs ahead of the records it covers.
            self.tap.state_writer.write_state(self.tap_state)

    def log_progress(self, offset: int | None, response: requests.Response) -> None:
        sync = self.current_sync
        quota = response.headers.get(QUOTA_REMAINING_HEADER)
        self.logger.info(
            "Page at offset %s read: %d %s so far, %d %s made%s.",
            offset,
            sync.tasks_read,
            "task" if sync.tasks_read == 1 else "tasks",
            self.requests_made,
            "request" if self.requests_made == 1 else "requests",
            "" if quota is None else f"; Toggl's hourly quota has {quota} left",
        )

    @override
    def post_process(self, row: Task, context: Context | None = None) -> Task:
        row["_sdc_table_version"] = self.current_sync.version
        for field in TIMESTAMP_FIELDS:
            if (value := row.get(field)) is not None:
                row[field] = utc_timestamp(value, field=field, task_id=row.get("id"))
        if isinstance(permissions := row.get("permissions"), str):
            row["permissions"] = [permissions]  # 2024's API sent one string, 2026's a list
        return self.conform(row)

    def conform(self, row: Task) -> Task:
        """The record as the SDK's conformance would make it (see TYPE_CONFORMANCE_LEVEL)."""
        return self._conformer.conform(row)

    @functools.cached_property
    def _conformer(self) -> FlatConformer:
        # The schema in effect: the catalog's, when one was given.
        return FlatConformer(self.name, self.effective_schema, self.logger)

    @override
    def calculate_sync_cost(
        self,
        request: requests.PreparedRequest,
        response: requests.Response,
        context: Context | None,
    ) -> dict[str, int]:
        return {"toggl_requests": 1}


class ListingsStream(Stream):
    """One record per sync that listed every live task, written after the tasks it emitted.

    It is ACTIVATE_VERSION made durable, for loaders that ignore that message (target-duckdb):
    a task row whose `_sdc_table_version` is older than the newest listing's was not listed by
    Toggl, so the task is deleted (transform/models/staging/stg_tasks.sql applies this).
    """

    name = "tasks_listings"
    primary_keys = ("table_version",)
    schema = LISTING_SCHEMA

    def __init__(self, tap: Tap, tasks: TasksStream) -> None:
        super().__init__(tap)
        self.tasks = tasks

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        if self.tasks.listing is not None:
            yield self.tasks.listing


def toggl_time(response: requests.Response) -> datetime.datetime | None:
    """Toggl's clock from a response's `Date` header (whole seconds); None without one."""
    try:
        return as_utc(email.utils.parsedate_to_datetime(response.headers.get("Date", "")))
    except (TypeError, ValueError):
        return None


def utc_timestamp(value: str, *, field: str, task_id: Any) -> str:
    """One UTC form for every timestamp, so that bookmarks compare correctly as strings.

    Toggl sends `2024-12-16T01:38:02.034497Z` and `...+00:00`, with or without fractions.
    """
    try:
        moment = as_utc(value)
    except (TypeError, ValueError) as exc:
        raise TogglError(
            f"Task {task_id}: its {field} {value!r} is not a timestamp, so the sync stopped "
            "before advancing the bookmark. Report this message: Toggl changed its format."
        ) from exc
    return bookmark_form(moment)


def tasks_in(response: requests.Response) -> list[Task]:
    """The tasks of a 200 response, parsed once and kept on it (validation parses first).

    Toggl sends a bare array, `null` for an empty result, and some clients have seen
    `{"items": [...]}` or `{"data": [...]}`; all are accepted, anything else is an error.
    """
    cached: list[Task] | None = response.__dict__.get(_PARSED)
    if cached is not None:
        return cached
    try:
        body = _decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        # A cut-off or garbled body is usually a network hiccup: worth another try.
        raise TogglRetryableError(
            f"Toggl answered {describe(response)} with a body that is not JSON ({exc}).",
            response,
        ) from exc
    if body is None:
        tasks: Any = []
    elif isinstance(body, dict):
        tasks = body.get("items", body.get("data"))
    else:
        tasks = body
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise unexpected_body(response, body)
    response.__dict__[_PARSED] = tasks
    return tasks


_PARSED = "_toggl_tasks"
