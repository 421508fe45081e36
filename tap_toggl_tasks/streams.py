"""The `tasks` stream: GET {api_url}/me/tasks, paged by offset, incremental on `at` via `since`."""

from __future__ import annotations

import datetime
import functools
import itertools
import math
from collections.abc import Callable, Generator, Iterable
from typing import Any

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_toggl_tasks.conformance import FlatConformer
from tap_toggl_tasks.errors import (
    QUOTA_REMAINING_HEADER,
    TogglError,
    TogglRetryableError,
    error_for,
    gave_up,
)
from tap_toggl_tasks.paging import Task, TasksPaginator, tasks_in
from tap_toggl_tasks.schema import TASK_SCHEMA, TIMESTAMP_FIELDS

MAX_ATTEMPTS = 5
BACKOFF_FIRST_WAIT = 2.0  # seconds; doubles on each retry: 2, 4, 8, 16
# State key: when a full sync (one without `since`, so blind to deletions) began that has not
# finished. While it is there, a full sync also asks for tasks changed since then.
DELETIONS_UNSEEN_SINCE = "deletions_unseen_since"
# State key: the settings that decide which tasks Toggl returns, as the bookmark was made with.
# A bookmark says nothing about tasks outside its filter, so a change of filter syncs everything.
FILTERS = "filters"
FILTER_SETTINGS = ("include_not_active", "include_hidden", "search")


class TasksStream(RESTStream[int]):
    """Tasks of every project the user takes part in, done and deleted ones included."""

    name = "tasks"
    path = "/me/tasks"
    primary_keys = ("id",)
    replication_key = "at"
    schema = TASK_SCHEMA
    # Toggl documents no sort order, so the bookmark only advances once the sync completes.
    is_sorted = False
    # post_process conforms records itself, to the same result at a fraction of the cost.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # `since` for a second pass that looks for deletions a full sync cannot see
    _since_override: int | None = None

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

    @override
    def get_new_paginator(self) -> TasksPaginator:
        # Kept: parse_response asks it which tasks of a page are new.
        self._paginator = TasksPaginator(page_size=self.config["page_size"])
        return self._paginator

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        if self.filters_changed():
            self.logger.warning(
                "The settings %s changed since the bookmark was made (%s, now %s): the bookmark "
                "says nothing about tasks outside its old filter, so this run syncs everything.",
                ", ".join(FILTER_SETTINGS),
                self.stream_state[FILTERS],
                self.filters(),
            )
        full_sync = self.since(context) is None
        unseen = self.stream_state.get(DELETIONS_UNSEEN_SINCE)
        if full_sync and not unseen:
            self.mark_deletions_unseen(context)
        yield from super().get_records(context)
        gap = self._paginator.gap_possible
        if full_sync and unseen:
            # An earlier full sync did not finish: ask what changed (or was deleted) since.
            self._since_override = math.floor(as_utc(unseen).timestamp())
            try:
                yield from super().get_records(context)
            finally:
                self._since_override = None
            gap = gap or self._paginator.gap_possible
        if not gap:
            # Done: the bookmark, at most this sync's start, covers deletions from now on.
            self.stream_state.pop(DELETIONS_UNSEEN_SINCE, None)
            self.stream_state[FILTERS] = self.filters()
            return
        self.logger.warning(
            "Toggl's task list changed under this sync more than it could bridge, so some "
            "unchanged tasks may have been skipped. The bookmark stays where it was: the "
            "next run reads these tasks again."
        )
        keep_bookmark(self.stream_state)

    def mark_deletions_unseen(self, context: Context | None) -> None:
        """Put in the state, before the first record, when this full sync began.

        A sync without `since` cannot see deletions. Should it fail, be killed or skip a shift
        after loading some tasks, the next run (a full sync again) finds the mark in the state
        and also asks what changed since then, so a task deleted meanwhile does not stay stale.
        """
        began = self.get_replication_key_signpost(context)
        self.stream_state[DELETIONS_UNSEEN_SINCE] = as_utc(began).isoformat()
        self.state_manager.is_flushed = False  # the SDK writes only states it has not written
        self._write_state_message()

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: int | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "include_not_active": str(self.config["include_not_active"]).lower(),
            "include_hidden": str(self.config["include_hidden"]).lower(),
            "meta": str(self.config["meta"]).lower(),
            "per_page": self.config["page_size"],
            "offset": next_page_token or 0,
        }
        # `inbox` is not sent: it applies Toggl's "inbox priority logic", undocumented, to what
        # comes back, and a warehouse wants every task as it is.
        if search := self.config.get("search"):
            params["search"] = search
        if (since := self.since(context)) is not None:
            params["since"] = since
        return params

    def filters(self) -> dict[str, Any]:
        """The settings that decide which tasks Toggl returns, as they are now."""
        return {name: self.config.get(name) for name in FILTER_SETTINGS}

    def filters_changed(self) -> bool:
        """Whether the bookmark was made with other filters (states older than 0.2 hold none)."""
        made_with = self.stream_state.get(FILTERS)
        return made_with is not None and made_with != self.filters()

    def since(self, context: Context | None) -> int | None:
        """The bookmark (or start_date) in whole UNIX seconds, rounded down.

        Rounding down re-fetches tasks modified in the bookmark's own second: at-least-once.
        """
        if self._since_override is not None:
            return self._since_override
        if self.filters_changed():
            start_date = self.config.get("start_date")
            return None if start_date is None else math.floor(as_utc(start_date).timestamp())
        start = self.get_starting_timestamp(context)
        return None if start is None else math.floor(start.timestamp())

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code != 200:
            raise error_for(response, max_quota_wait=self.config["max_quota_wait_seconds"])
        tasks_in(response)  # parse here, so that a garbled body is retried like a 5xx
        if (remaining := response.headers.get(QUOTA_REMAINING_HEADER)) is not None:
            self.logger.info("Toggl request quota: %s requests left this hour.", remaining)

    @override
    def parse_response(self, response: requests.Response) -> Iterable[Task]:
        return self._paginator.fresh_tasks(response)

    @override
    def post_process(self, row: Task, context: Context | None = None) -> Task:
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

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        return _retry_waits()

    @override
    def backoff_max_tries(self) -> int:
        return MAX_ATTEMPTS

    @override
    def request_decorator(self, func: Callable[..., requests.Response]) -> Callable[..., Any]:
        retrying = super().request_decorator(func)

        @functools.wraps(func)
        def request_or_explain(*args: Any, **kwargs: Any) -> requests.Response:
            try:
                return retrying(*args, **kwargs)
            except (TogglRetryableError, requests.RequestException, ConnectionError) as exc:
                raise gave_up(exc, MAX_ATTEMPTS) from exc

        return request_or_explain


def _retry_waits() -> Generator[float, BaseException | None, None]:
    """Seconds before each retry: what Toggl asked for (quota reset, Retry-After), else 2, 4, 8."""
    error = yield 0.0  # backoff primes the generator before the first failure
    for attempt in itertools.count():
        asked = getattr(error, "wait_seconds", None)
        error = yield asked if asked is not None else BACKOFF_FIRST_WAIT * 2**attempt


def keep_bookmark(stream_state: dict[str, Any]) -> None:
    """Drop this sync's progress, so that the SDK leaves the bookmark as it came in."""
    markers = stream_state.get("progress_markers", {})
    markers.pop("replication_key", None)
    markers.pop("replication_key_value", None)


def as_utc(value: Any) -> datetime.datetime:
    """A timestamp (ISO 8601 string or datetime) as an aware UTC datetime; naive means UTC."""
    moment = (
        value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


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
    return moment.isoformat(timespec="microseconds")
