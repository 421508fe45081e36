"""One run's sync of the tasks stream: the protocol's decisions carried out, top to bottom.

1. the plan: resume the unfinished pass, or start one (protocol.plan);
2. the pages: each asked for, its new tasks emitted, then a STATE that resumes after it;
   a 400 to a request with `since` is Toggl refusing `since` only if the same request without
   it is answered: then the pass starts over without `since`;
3. the snapshot, when the pages may have missed a task: one request without `per_page`,
   parsed as it arrives, the tasks the pages missed emitted from it;
4. the end: the bookmark, the listing, ACTIVATE_VERSION (protocol.finish).

The decisions are protocol.py's; requests go through the stream (streams.py), STATE and
ACTIVATE_VERSION through the SDK (sdk_internals.py).
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

import requests

from tap_toggl_tasks import ending, protocol, sdk_internals, state, values
from tap_toggl_tasks.ending import Snapshot
from tap_toggl_tasks.errors import (
    QUOTA_REMAINING_HEADER,
    TogglError,
    body_text,
    describe,
    error_for,
)
from tap_toggl_tasks.protocol import Pass, Settings
from tap_toggl_tasks.values import Task, as_utc, bookmark_form

Tasks = list[Task] | None  # a page's tasks; None for a 400


class Endpoint(Protocol):
    """What a sync needs of the tasks stream (streams.py)."""

    table_version: int | None
    listing: Task | None

    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def logger(self) -> logging.Logger: ...
    @property
    def stream_state(self) -> dict[str, Any]: ...
    def get_batch_config(self, config: Mapping[str, Any]) -> Any: ...
    def get_url_params(self, context: Any, next_page_token: Any) -> dict[str, Any]: ...
    def host_clock(self) -> datetime: ...
    def page(self, params: dict[str, Any]) -> tuple[requests.Response, list[Task] | None]: ...
    def snapshot(self, params: dict[str, Any]) -> Iterator[Task]: ...


class TasksSync:
    """A run of the tasks stream: `records()` yields what the SDK writes."""

    def __init__(self, stream: Endpoint) -> None:
        self.stream = stream
        self.settings = settings_of(stream.config)
        self.batch_mode = bool(stream.get_batch_config(stream.config))
        self.requests = 0
        self.tasks_read = 0

    def records(self) -> Iterator[Task]:
        start = state.decode(self.stream.stream_state or None)
        plan = protocol.plan(start, self.settings, self.stream.host_clock())
        self.announce(plan)
        pass_ = plan.pass_
        while not pass_.pager.done:
            pass_ = yield from self.page(start, pass_)
        snapshot = None
        if protocol.needs_snapshot(pass_):
            snapshot = yield from self.snapshot(pass_)
            if ending.unconfirmed(pass_, snapshot):
                snapshot = yield from self.explain(pass_, snapshot)
            if ending.needs_second_look(pass_, snapshot):
                snapshot = yield from self.second_look(pass_, snapshot)
        outcome = ending.finish(start, pass_, snapshot, self.settings)
        for warning in outcome.warnings:
            self.stream.logger.warning("%s", warning)
        for note in outcome.info:
            self.stream.logger.info("%s", note)
        self.keep(outcome.state)  # the SDK's STATE at the end of the stream carries it
        self.stream.listing = outcome.listing
        # Every record is written by now. In BATCH mode the last batch goes out after this:
        # no ACTIVATE_VERSION, which would run ahead of it.
        if outcome.listing is not None and not self.batch_mode:
            sdk_internals.write_activate_version(self.stream, outcome.listing["table_version"])

    def announce(self, plan: protocol.Plan) -> None:
        for warning in plan.warnings:
            self.stream.logger.warning("%s", warning)
        for note in plan.info:
            self.stream.logger.info("%s", note)
        pass_ = plan.pass_
        if plan.resumed:
            self.stream.logger.info(
                "Resuming the sync that began at %s (Toggl's clock), at offset %d.",
                bookmark_form(pass_.began or self.stream.host_clock()),
                pass_.pager.offset,
            )
        elif pass_.since is None:
            self.stream.logger.info("Reading every task (no `since`).")
        else:
            self.stream.logger.info(
                "Reading the tasks changed since %d (UNIX seconds).", pass_.since
            )

    # -- the pages --------------------------------------------------------------------------

    def page(self, start: state.TasksState, pass_: Pass) -> Generator[Task, None, Pass]:
        """Ask for the pass's next page, emit its new tasks, leave a STATE after them."""
        offset = pass_.pager.offset
        response, tasks, pass_ = self.fetch(pass_)
        pass_ = protocol.answered(pass_, toggl_time(response) or self.stream.host_clock())
        try:
            fresh, pass_ = protocol.turn_page(pass_, tasks, self.settings)
        except values.BadTask as bad:
            raise TogglError(str(bad)) from None
        self.emitting(pass_)
        resumable = protocol.checkpoint(start, pass_)
        for number, task in enumerate(fresh, 1):
            if self.batch_mode and number == len(fresh):
                # The SDK writes the state after each batch: it may resume after this page
                # once the page's last task is in a batch.
                self.keep(resumable)
            yield task
        self.tasks_read += len(fresh)
        self.log_progress(offset, response)
        if not pass_.pager.done or protocol.needs_snapshot(pass_):
            self.keep(resumable, write=True)
        return pass_

    def fetch(self, pass_: Pass) -> tuple[requests.Response, list[Task], Pass]:
        """The page at the pass's offset; when Toggl refuses its `since`, the pass anew."""
        response, tasks = self.request(pass_, per_page=True)
        if tasks is not None:
            return response, tasks, pass_
        if pass_.since is not None:
            # The same request without `since`: if Toggl answers it, the 400 was about `since`.
            anew = protocol.without_since(pass_)
            retried, tasks = self.request(anew, per_page=True)
            if tasks is not None:
                self.stream.logger.warning(
                    "Toggl refused `since` %d (%s: %s). This run reads every task without "
                    "`since` instead; the next run's `since` is recent again.",
                    pass_.since,
                    describe(response),
                    body_text(response),
                )
                return retried, tasks, anew
        raise error_for(response, max_quota_wait=0)

    def request(
        self, pass_: Pass, *, per_page: bool
    ) -> tuple[requests.Response, list[Task] | None]:
        self.requests += 1
        return self.stream.page(self.params(pass_, per_page=per_page))

    def params(self, pass_: Pass, *, per_page: bool) -> dict[str, Any]:
        params = self.stream.get_url_params(None, None)
        if per_page:
            params |= {"per_page": self.stream.config["page_size"], "offset": pass_.pager.offset}
        if pass_.since is not None:
            params["since"] = pass_.since
        return params

    # -- the snapshot -----------------------------------------------------------------------

    def snapshot(self, pass_: Pass) -> Generator[Task, None, Snapshot]:
        """One answer without `per_page`: the tasks the pages missed are emitted from it."""
        ids: set[int] = set()
        unchanged: set[int] = set()
        changed = 0
        self.emitting(pass_)
        for task in self.read_whole(pass_):
            if task["id"] in ids:
                continue  # listed twice (a join that fans out)
            ids.add(task["id"])
            if self.missed(pass_, task):
                yield task
                if protocol.changed_during(pass_, task):
                    changed += 1
                else:
                    unchanged.add(task["id"])
        self.stream.logger.info(
            "Checked against Toggl's answer without per_page (%d %s, %d %s made): %s.",
            len(ids),
            "task" if len(ids) == 1 else "tasks",
            self.requests,
            "request" if self.requests == 1 else "requests",
            "the pages had every one of them"
            if not unchanged and not changed
            else f"{len(unchanged) + changed} the pages had missed were loaded from it",
        )
        return Snapshot(frozenset(ids), frozenset(unchanged), changed)

    def explain(self, pass_: Pass, snapshot: Snapshot) -> Generator[Task, None, Snapshot]:
        """Tasks the pages listed that the snapshot lacks: if Toggl lists them as changed since
        the pass began (deleted, done), the snapshot was not cut short."""
        since = ending.explanation_since(pass_, self.settings, self.stream.host_clock())
        if since is None:
            return snapshot
        lacking = ending.unconfirmed(pass_, snapshot)
        explained = set()
        # Every task changed since, whatever the filters: a task done (or renamed) meanwhile
        # left a filtered list, which explains it as well as a deletion does.
        unfiltered = {"include_not_active": "true", "include_hidden": "true", "search": None}
        for task in self.read_whole(pass_, since=since, **unfiltered):
            if task["id"] in lacking and task["id"] not in explained:
                explained.add(task["id"])
                yield task  # its newest version: deleted, done or renamed out of the filter
        return dataclasses.replace(snapshot, explained=frozenset(explained))

    def second_look(self, pass_: Pass, snapshot: Snapshot) -> Generator[Task, None, Snapshot]:
        """The snapshot once more: two whole answers that agree settle what the pages missed."""
        ids: set[int] = set()
        for task in self.read_whole(pass_):
            new = task["id"] not in ids and task["id"] not in snapshot.ids
            if new and self.missed(pass_, task):
                yield task
            ids.add(task["id"])
        return dataclasses.replace(snapshot, second=frozenset(ids))

    def read_whole(self, pass_: Pass, since: int | None = None, **params: Any) -> Iterator[Task]:
        """One answer without `per_page`, task by task as it arrives."""
        self.requests += 1
        merged = self.params(pass_, per_page=False) | params
        if since is not None:
            merged["since"] = since
        return self.stream.snapshot({key: value for key, value in merged.items() if value})

    def missed(self, pass_: Pass, task: Task) -> bool:
        try:
            return ending.missed(pass_, task, self.settings)
        except values.BadTask as bad:
            raise TogglError(str(bad)) from None

    # -- state and messages -----------------------------------------------------------------

    def emitting(self, pass_: Pass) -> None:
        """The table version the records from now on carry (and the SDK's RECORD messages)."""
        self.stream.table_version = pass_.version
        sdk_internals.set_table_version(self.stream, pass_.version)

    def keep(self, tasks_state: state.TasksState, *, write: bool = False) -> None:
        """Make this the stream's state, and (outside BATCH mode) write a STATE with it."""
        stream_state = self.stream.stream_state
        stream_state.clear()
        stream_state.update(state.encode(tasks_state))
        if write and not self.batch_mode:
            # In BATCH mode the SDK writes the state after each BATCH message instead, so a
            # STATE never runs ahead of the records it covers.
            sdk_internals.write_state(self.stream)

    def log_progress(self, offset: int, response: requests.Response) -> None:
        quota = response.headers.get(QUOTA_REMAINING_HEADER)
        self.stream.logger.info(
            "Page at offset %s read: %d %s so far, %d %s made%s.",
            offset,
            self.tasks_read,
            "task" if self.tasks_read == 1 else "tasks",
            self.requests,
            "request" if self.requests == 1 else "requests",
            "" if quota is None else f"; Toggl's hourly quota has {quota} left",
        )


def settings_of(config: Any) -> Settings:
    start_date = config.get("start_date")
    return Settings(
        filters=state.Filters(**{name: config.get(name) for name in state.FILTER_SETTINGS}),
        lookback_seconds=int(config["lookback_seconds"]),
        start_date=None if start_date is None else as_utc(start_date),
        page_size=int(config["page_size"]),
    )


def toggl_time(response: requests.Response) -> datetime | None:
    """Toggl's clock from a response's `Date` header (whole seconds); None without one."""
    try:
        return as_utc(email.utils.parsedate_to_datetime(response.headers.get("Date", "")))
    except (TypeError, ValueError):
        return None
