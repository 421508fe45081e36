"""The `tasks` stream: GET {api_url}/me/tasks, paged by offset, incremental on `at` via `since`."""

from __future__ import annotations

import datetime
import email.utils
import functools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import requests
from singer_sdk import RESTStream, Tap
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_toggl_tasks.conformance import FlatConformer
from tap_toggl_tasks.errors import (
    QUOTA_REMAINING_HEADER,
    TogglError,
    TogglFatalError,
    body_text,
    describe,
    error_for,
)
from tap_toggl_tasks.paging import PageAt, Task, TasksPaginator, tasks_in
from tap_toggl_tasks.progress import LARGEST_PAGE, OLD_DELETIONS_MARK, UNFINISHED
from tap_toggl_tasks.retrying import TogglRetries
from tap_toggl_tasks.schema import TASK_SCHEMA, TIMESTAMP_FIELDS

# `since` for a sync without a bookmark: the start of time, so that Toggl also reports the
# tasks deleted before it (tombstones with server_deleted_at), in the same single pass.
START_OF_TIME = 0
EPOCH = datetime.datetime.fromtimestamp(START_OF_TIME, datetime.UTC)
# State key: the settings that decide which tasks Toggl returns, as the bookmark was made with.
# A bookmark says nothing about tasks outside its filter, so a change of filter syncs everything.
FILTERS = "filters"
FILTER_SETTINGS = ("include_not_active", "include_hidden", "search")


class SinceRefused(TogglFatalError):
    """Toggl refused `since` from the start of time: the pass goes on without `since`."""


class TasksStream(TogglRetries, RESTStream[PageAt]):
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

    def __init__(self, tap: Tap, **kwargs: Any) -> None:
        super().__init__(tap, **kwargs)
        self.tap = tap  # its state writer emits a STATE after every page
        # the pass being read: its `since` (None: none sent), where it resumes, its pager
        self._pass_since: int | None = START_OF_TIME
        self._resume: dict[str, Any] | None = None
        self._paginator = TasksPaginator(2)
        # this sync: when it began by Toggl's clock, the newest `at` it emitted
        self._began: datetime.datetime | None = None
        self._newest_at: datetime.datetime | None = None
        self._cap_warned = False

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
        self._paginator = TasksPaginator(
            page_size=self.config["page_size"],
            largest_page=int(self.stream_state.get(LARGEST_PAGE, 0)),
            resume=(self._resume or {}).get("paging"),
        )
        return self._paginator

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str:
        """The highest bookmark this sync may set: when it began, by Toggl's clock.

        Until Toggl's first answer tells its time (the `Date` header), the host's clock; a
        resumed sync keeps the moment the interrupted one began, so that what changed since
        (moved rows, deletions) comes with the next `since`.
        """
        if self._began is None and (unfinished := self.stream_state.get(UNFINISHED)):
            self._began = as_utc(unfinished["began"])
        if self._began is not None:
            return bookmark_form(self._began)
        return bookmark_form(self.host_clock_at_start())

    def host_clock_at_start(self) -> datetime.datetime:
        """The SDK's signpost: when the tap started, by the host's clock."""
        return as_utc(super().get_replication_key_signpost(None))

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        self.stream_state.pop(OLD_DELETIONS_MARK, None)
        self._resume = self.stream_state.get(UNFINISHED)
        if self._resume is not None:
            self._pass_since = self._resume["since"]
            self._newest_at = (
                as_utc(self._resume["newest_at"]) if self._resume.get("newest_at") else None
            )
            self.logger.info(
                "Resuming the sync that began at %s (Toggl's clock) at offset %s.",
                self._resume["began"],
                self._resume["paging"]["offset"],
            )
        else:
            if self.filters_changed():
                self.logger.warning(
                    "The settings %s changed since the bookmark was made (%s, now %s): the "
                    "bookmark says nothing about tasks outside its old filter, so this run "
                    "syncs everything.",
                    ", ".join(FILTER_SETTINGS),
                    self.stream_state[FILTERS],
                    self.filters(),
                )
            self._pass_since = self.since(context)
        try:
            yield from super().get_records(context)
        except SinceRefused as refused:
            self.logger.warning(
                "%s So this sync reads all tasks without `since`, which leaves out the tasks "
                "deleted before it: rows of such tasks already in an upserting warehouse stay "
                "unmarked. Find them as the rows this sync did not load (an older "
                "_sdc_extracted_at), or rebuild the table from this sync.",
                refused,
            )
            self._pass_since, self._resume = None, None
            yield from super().get_records(context)
        self.complete(context)

    def complete(self, context: Context | None) -> None:
        """Settle the bookmark of a sync that read its last page, and drop its progress."""
        if self._paginator.gap_possible:
            self.logger.warning(
                "Toggl's task list changed under this sync more than it could bridge, so some "
                "unchanged tasks may have been skipped. The bookmark stays where it was: the "
                "next run reads these tasks again."
            )
            # The SDK caps the new bookmark at the signpost: here, the bookmark this run began
            # with (the start of time when there was none, which makes the next run read all).
            before = self.stream_state.get("replication_key_value")
            kept = EPOCH if before is None else as_utc(before)
            self.state_manager.write_replication_key_signpost(bookmark_form(kept), context=context)
        else:
            self.stream_state[FILTERS] = self.filters()
            if self._newest_at is not None:
                # Rows emitted by the runs this one resumed count towards the bookmark too.
                self.state_manager.increment_state(
                    {"at": bookmark_form(self._newest_at)}, context=context, replication_key="at"
                )
        self.stream_state.pop(UNFINISHED, None)

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
        if self._pass_since is not None:
            params["since"] = self._pass_since
        return params

    def filters(self) -> dict[str, Any]:
        """The settings that decide which tasks Toggl returns, as they are now."""
        return {name: self.config.get(name) for name in FILTER_SETTINGS}

    def filters_changed(self) -> bool:
        """Whether the bookmark was made with other filters (states older than 0.2 hold none)."""
        made_with = self.stream_state.get(FILTERS)
        return made_with is not None and made_with != self.filters()

    def since(self, context: Context | None) -> int:
        """`since` for a new sync, in whole UNIX seconds: the start of time without a bookmark.

        From a bookmark: rounded down (tasks modified in the bookmark's own second come again:
        at-least-once), less `lookback_seconds`, for writes Toggl shows later than their `at`.
        """
        if self.filters_changed():
            # Everything, as without a bookmark: from start_date, or the start of time.
            start_date = self.config.get("start_date")
            return (
                START_OF_TIME if start_date is None else math.floor(as_utc(start_date).timestamp())
            )
        start = self.get_starting_timestamp(context)
        if start is None:
            return START_OF_TIME
        lookback = (
            self.config["lookback_seconds"] if "replication_key_value" in self.stream_state else 0
        )
        return max(START_OF_TIME, math.floor(start.timestamp()) - int(lookback))

    @override
    def validate_response(self, response: requests.Response) -> None:
        self.note_toggl_clock(response)
        if response.status_code != 200:
            if self._refuses_start_of_time(response):
                raise SinceRefused(
                    f"Toggl refused `since` from the start of time ({describe(response)}: "
                    f"{body_text(response)})."
                )
            raise error_for(response, max_quota_wait=self.config["max_quota_wait_seconds"])
        tasks_in(response)  # parse here, so that a garbled body is retried like a 5xx
        if (remaining := response.headers.get(QUOTA_REMAINING_HEADER)) is not None:
            self.logger.info("Toggl request quota: %s requests left this hour.", remaining)

    def _refuses_start_of_time(self, response: requests.Response) -> bool:
        return (
            response.status_code == 400
            and self._pass_since == START_OF_TIME
            and "since" in body_text(response).lower()
        )

    def note_toggl_clock(self, response: requests.Response) -> None:
        """Cap this sync's bookmark at Toggl's clock when it first answered (its `Date`).

        `at` comes from Toggl's clock, so the cap must too: on the host's, a Toggl clock
        running behind would let an edit made during the sync fall below the bookmark.
        """
        if self._began is not None:
            return
        self._began = toggl_time(response) or self.host_clock_at_start()
        self.state_manager.write_replication_key_signpost(bookmark_form(self._began))

    @override
    def parse_response(self, response: requests.Response) -> Iterator[Task]:
        tasks = self._paginator.fresh_tasks(response)
        if (cap := self._paginator.cap_found) is not None and not self._cap_warned:
            self._cap_warned = True
            self.logger.warning(
                "Toggl returned at most %d tasks per request although page_size asks for %d: "
                "it caps its pages. The sync goes on with pages of %d, so nothing is lost; set "
                "page_size to %d to save the request that checks each short page.",
                cap,
                self.config["page_size"],
                cap,
                cap,
            )
        yield from tasks
        # Only now, with every task of the page emitted, may the state say the page is done.
        self.save_progress(tasks)

    def save_progress(self, tasks: list[Task]) -> None:
        """Emit a STATE from which a later run resumes after this page, should this one stop."""
        for task in tasks:
            if task.get("at") is not None:
                moment = as_utc(task["at"])
                self._newest_at = max(moment, self._newest_at or moment)
        self.stream_state[LARGEST_PAGE] = self._paginator.largest_page
        if self._paginator.finished_pass or self._began is None:
            return  # complete() settles the state
        self.stream_state[UNFINISHED] = {
            "began": bookmark_form(self._began),
            "since": self._pass_since,
            "newest_at": None if self._newest_at is None else bookmark_form(self._newest_at),
            "paging": self._paginator.checkpoint(),
        }
        self.tap.state_writer.write_state(self.tap_state)

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


def toggl_time(response: requests.Response) -> datetime.datetime | None:
    """Toggl's clock from a response's `Date` header (whole seconds); None without one."""
    try:
        return as_utc(email.utils.parsedate_to_datetime(response.headers.get("Date", "")))
    except (TypeError, ValueError):
        return None


def bookmark_form(moment: datetime.datetime) -> str:
    """The one form of every timestamp in records and state, so that they compare as strings."""
    return as_utc(moment).isoformat(timespec="microseconds")


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
    return bookmark_form(moment)
