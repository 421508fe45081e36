"""The `tasks` stream: GET {api_url}/me/tasks, its answers, and records made uniform.

The endpoint only: URL, credentials, parameters, parsing, `post_process`. Which pages a run
asks for and what it trusts is `protocol.py`'s; `sync.py` carries it out through `send` and
`snapshot` here. `tasks_listings` (listings.py), synced after it, writes a complete pass's listing.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable, Iterator
from typing import Any, cast

import requests
from singer_sdk import RESTStream, Tap
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_toggl_tasks import bodies
from tap_toggl_tasks.conformance import FlatConformer
from tap_toggl_tasks.errors import (
    TogglError,
    error_for,
)
from tap_toggl_tasks.retrying import TogglRetries
from tap_toggl_tasks.schema import TASK_SCHEMA, TIMESTAMP_FIELDS
from tap_toggl_tasks.sync import TasksSync
from tap_toggl_tasks.values import BadTask, Task, bookmark_form, task_time


class TasksStream(TogglRetries, RESTStream[None]):
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

    def __init__(self, tap: Tap) -> None:
        super().__init__(tap)
        self.table_version: int | None = None  # what this run's records carry (sync.py sets it)
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

    @override
    def get_new_paginator(self) -> None:
        return None  # sync.py asks for each page itself

    @override
    def get_url_params(self, context: Context | None, next_page_token: Any) -> dict[str, Any]:
        """The filters every request carries; sync.py adds `since`, `per_page` and `offset`."""
        params: dict[str, Any] = {
            "include_not_active": str(self.config["include_not_active"]).lower(),
            "include_hidden": str(self.config["include_hidden"]).lower(),
            "meta": str(self.config["meta"]).lower(),
        }
        # `inbox` is not sent: it applies Toggl's "inbox priority logic", undocumented, to what
        # comes back, and a warehouse wants every task as it is.
        if search := self.config.get("search"):
            params["search"] = search
        return params

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        yield from TasksSync(self).records()

    def page(self, params: dict[str, Any]) -> tuple[requests.Response, list[Task] | None]:
        """One page, with retries and pacing (a garbled body is retried too); no tasks for a
        400, which the caller judges (it may be Toggl refusing `since`)."""

        def attempt() -> tuple[requests.Response, list[Task] | None]:
            response = self.send(params)
            return response, None if response.status_code == 400 else self.parse_response(response)

        # request_decorator is typed for a function returning a response; it returns any.
        result: tuple[requests.Response, list[Task] | None] = self.request_decorator(
            cast("Any", attempt)
        )()
        return result

    def send(self, params: dict[str, Any], *, stream: bool = False) -> requests.Response:
        """One GET, checked: an error for any answer but 200 (and 400, returned as it is)."""
        request = self.build_prepared_request(method="GET", url=self.get_url(None), params=params)
        response = self.requests_session.send(request, timeout=self.timeout, stream=stream)
        if response.status_code != 400:
            self.validate_response(response)
        return response

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code != 200:
            raise error_for(response, max_quota_wait=self.config["max_quota_wait_seconds"])

    @override
    def parse_response(self, response: requests.Response) -> list[Task]:
        return bodies.page_tasks(response)

    def snapshot(self, params: dict[str, Any]) -> Iterator[Task]:
        """Every task of one answer without `per_page`, parsed as it arrives (memory flat)."""
        response: requests.Response = self.request_decorator(self.send)(params, stream=True)
        if response.status_code == 400:
            raise error_for(response, max_quota_wait=0)
        try:
            yield from bodies.streamed_tasks(response)
        finally:
            response.close()

    def host_clock(self) -> datetime.datetime:
        """This machine's clock: it only decides whether a bookmark is too old for `since`."""
        return datetime.datetime.now(datetime.UTC)

    @override
    def post_process(self, row: Task, context: Context | None = None) -> Task:
        row["_sdc_table_version"] = self.table_version
        for field in TIMESTAMP_FIELDS:
            if row.get(field) is not None:
                row[field] = utc_timestamp(row, field)
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


def utc_timestamp(row: Task, field: str) -> str:
    """One UTC form for every timestamp, so that bookmarks compare correctly as strings.

    Toggl sends `2024-12-16T01:38:02.034497Z` and `...+00:00`, with or without fractions.
    """
    try:
        return bookmark_form(task_time(row, field))
    except BadTask as exc:
        raise TogglError(str(exc)) from None
