"""A model of Toggl's /me/tasks for the protocol's property test: what Toggl may do, in memory.

Everything the tap must be right about, whatever Toggl does (it documents neither its order nor
its page lengths): pages capped (by count, by bytes), rows filtered out after LIMIT, a row
listed twice (a join that fans out), empty answers, orders by id, by `at` either way, by name,
and by `at` alone with ties that come back in a different order on every request (SQL's
ORDER BY without a unique key), edits between any two requests, `at` in other formats (a
profile time zone, no fraction), a `since` older than its window refused or answered empty.

`drive` runs the pure protocol (tap_toggl_tasks.protocol) over it as sync.py does over HTTP,
writing the messages a loader would get; `Stop` ends a run where the quota or a crash would.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tap_toggl_tasks import ending, protocol
from tap_toggl_tasks.ending import Snapshot
from tap_toggl_tasks.protocol import Pass, Settings
from tap_toggl_tasks.state import Filters, TasksState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=90)  # how old a `since` Toggl still answers
PLUS_2 = timezone(timedelta(hours=2))  # a user's profile time zone


@dataclass
class Fault:
    """How Toggl misbehaves on one request (all may combine)."""

    cap: int | None = None  # at most this many rows (a cap by count or by bytes)
    empty: bool = False  # `null`, whatever there is
    drop_one: bool = False  # one row of the page filtered out after LIMIT
    duplicate: bool = False  # one row listed twice
    edits: tuple[str, ...] = ()  # before answering: insert, edit, done, delete, touch
    refuse: bool = False  # HTTP 400 (a request about something else than `since`, too)


class Stop(Exception):
    """The run ends here: its quota used up, or killed."""


@dataclass
class Toggl:
    tasks: dict[int, dict[str, Any]]
    order: str = "id"  # id, at_asc, at_desc, name, ties
    now: datetime = T0
    old_since: str = "refuse"  # refuse | empty
    time_format: str = "Z"  # Z | offset | plain | zone
    faults: list[Fault | None] = field(default_factory=list)  # per request of the current run
    stop_at: int | None = None  # the request of this run that does not happen
    snapshot_cap: int | None = None  # the answer without per_page cut short at this many
    requests: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    next_id: int = 1000

    # -- Toggl's truth and its changes ----------------------------------------------------

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)

    def change(self, kind: str, which: int = 0) -> None:
        live = sorted(i for i, t in self.tasks.items() if not t["deleted"])
        if kind == "insert" or not live:
            self.next_id += 1
            self.tasks[self.next_id] = {
                "id": self.next_id,
                "name": f"new {self.next_id}",
                "active": True,
                "at": self.now,
                "deleted": None,
            }
            return
        task = self.tasks[live[which % len(live)]]
        task["at"] = self.now
        if kind == "edit":
            task["name"] = f"{task['name']}*"
        elif kind == "done":
            task["active"] = False
        elif kind == "delete":
            task["deleted"] = self.now
        # "touch": only `at` moves (an edit of a field the tap does not read)

    def live(self) -> dict[int, dict[str, Any]]:
        return {i: t for i, t in self.tasks.items() if not t["deleted"]}

    # -- its answers ----------------------------------------------------------------------

    def answer(self, params: dict[str, Any]) -> tuple[int, list[dict[str, Any]] | None]:
        """(status, rows) for a request; rows None for `null`."""
        number = self.requests
        if self.stop_at is not None and number >= self.stop_at:
            raise Stop
        self.requests += 1
        fault = self.faults[number] if number < len(self.faults) else None
        fault = fault or Fault()
        for position, kind in enumerate(fault.edits):
            self.change(kind, which=number + position)
            self.tick()
        self.tick()
        if fault.refuse:
            return 400, None
        since = params.get("since")
        if since is not None and since < (self.now - WINDOW).timestamp():
            if self.old_since == "refuse":
                return 400, None
            return 200, None
        rows = self._select(since, params)
        if "per_page" in params:
            offset = params["offset"]
            rows = rows[offset : offset + params["per_page"]]
            if fault.cap is not None:
                rows = rows[: fault.cap]
        elif self.snapshot_cap is not None:
            rows = rows[: self.snapshot_cap]
        if fault.drop_one and rows and "per_page" in params:  # no LIMIT, nothing filtered after
            rows.pop(len(rows) // 2)
        if fault.duplicate and rows:
            rows.insert(1, rows[0])
        if fault.empty or not rows:
            return 200, None
        return 200, [self._as_sent(task) for task in rows]

    def _select(self, since: int | None, params: dict[str, Any]) -> list[dict[str, Any]]:
        if since is None:
            rows = list(self.live().values())
        else:
            rows = [t for t in self.tasks.values() if t["at"].timestamp() >= since]
        if params.get("include_not_active") == "false":
            rows = [t for t in rows if t["active"]]
        if self.order == "id":
            return sorted(rows, key=lambda t: t["id"])
        if self.order == "name":
            return sorted(rows, key=lambda t: (t["name"], t["id"]))
        if self.order == "ties":
            # ORDER BY a key many rows share (whole minutes here), ties in any order.
            self.rng.shuffle(rows)
            return sorted(rows, key=lambda t: math.floor(t["at"].timestamp() / 60))
        rows.sort(key=lambda t: (t["at"], t["id"]), reverse=self.order == "at_desc")
        return rows

    def _as_sent(self, task: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": task["id"],
            "name": task["name"],
            "active": task["active"],
            "at": self._format(task["at"]),
            "server_deleted_at": None if task["deleted"] is None else self._format(task["deleted"]),
        }

    def _format(self, moment: datetime) -> str:
        if self.time_format == "offset":
            return moment.isoformat(timespec="microseconds")
        if self.time_format == "plain":
            return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        if self.time_format == "zone":  # the user's profile time zone
            return moment.astimezone(PLUS_2).isoformat(timespec="microseconds")
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- one run: the protocol driven as sync.py drives it ------------------------------------------


@dataclass
class Run:
    messages: list[dict[str, Any]]
    state: TasksState  # what the next run gets (the last STATE written)
    finished: bool
    began: datetime | None = None


def settings_for(include_not_active: bool = True, page_size: int = 5) -> Settings:
    return Settings(
        filters=Filters(include_not_active=include_not_active, include_hidden=True, search=None),
        page_size=page_size,
    )


def drive(toggl: Toggl, state: TasksState, settings: Settings, host_now: datetime) -> Run:
    """One run of the tap over the model: the messages it writes and the state it leaves."""
    messages: list[dict[str, Any]] = []
    last_written = state
    toggl.requests = 0
    page_size = settings.page_size
    params_base = {"include_not_active": str(settings.filters.include_not_active).lower()}

    def emit(task: dict[str, Any], pass_: Pass) -> None:
        messages.append(
            {
                "type": "RECORD",
                "stream": "tasks",
                "version": pass_.version,
                "record": {**task, "_sdc_table_version": pass_.version},
            }
        )

    def request(pass_: Pass, paged: bool, since: int | None = None) -> tuple[int, Any]:
        params: dict[str, Any] = dict(params_base)
        if paged:
            params |= {"per_page": page_size, "offset": pass_.pager.offset}
        if (since := pass_.since if since is None else since) is not None:
            params["since"] = since
        return toggl.answer(params)

    try:
        plan = protocol.plan(state, settings, host_now)
        pass_ = plan.pass_
        while not pass_.pager.done:
            status, rows = request(pass_, paged=True)
            if status == 400:
                if pass_.since is None:
                    return Run(messages, last_written, finished=False)
                anew = protocol.without_since(pass_)
                status, rows = request(anew, paged=True)
                if status == 400:
                    return Run(messages, last_written, finished=False)
                pass_ = anew
            fresh, pass_ = protocol.turn_page(
                protocol.answered(pass_, toggl.now), rows or [], settings
            )
            for task in fresh:
                emit(task, pass_)
            if not pass_.pager.done or protocol.needs_snapshot(pass_):
                last_written = protocol.checkpoint(state, pass_)
        snapshot = None
        if protocol.needs_snapshot(pass_):
            snapshot = read_evidence(toggl, pass_, settings, host_now, request=request, emit=emit)
        outcome = ending.finish(state, pass_, snapshot, settings)
    except Stop:
        return Run(messages, last_written, finished=False)
    if outcome.listing is not None:
        messages.append(
            {
                "type": "ACTIVATE_VERSION",
                "stream": "tasks",
                "version": outcome.listing["table_version"],
            }
        )
        messages.append({"type": "RECORD", "stream": "tasks_listings", "record": outcome.listing})
    return Run(messages, outcome.state, finished=True, began=pass_.began)


def read_evidence(
    toggl: Toggl,
    pass_: Pass,
    settings: Settings,
    host_now: datetime,
    *,
    request: Callable[..., tuple[int, Any]],
    emit: Callable[[dict[str, Any], Pass], None],
) -> Snapshot:
    """The snapshot, and the answers that settle what it disagrees on (as sync.py reads them)."""
    snapshot = read_snapshot(toggl, pass_, settings, request, emit)
    if (
        ending.unconfirmed(pass_, snapshot)
        and (since := ending.explanation_since(pass_, settings, host_now)) is not None
    ):
        status, rows = toggl.answer({"since": since, "include_not_active": "true"})
        if status == 400:
            raise Stop
        lacking = ending.unconfirmed(pass_, snapshot)
        explained = set()
        for task in rows or []:
            if task["id"] in lacking and task["id"] not in explained:
                explained.add(task["id"])
                emit(task, pass_)
        snapshot = dataclasses.replace(snapshot, explained=frozenset(explained))
    if ending.needs_second_look(pass_, snapshot):
        status, rows = request(pass_, paged=False)
        if status == 400:
            raise Stop
        for task in rows or []:
            if task["id"] not in snapshot.ids and ending.missed(pass_, task, settings):
                emit(task, pass_)
        second = frozenset(task["id"] for task in rows or [])
        snapshot = dataclasses.replace(snapshot, second=second)
    return snapshot


def read_snapshot(
    toggl: Toggl,
    pass_: Pass,
    settings: Settings,
    request: Callable[..., tuple[int, Any]],
    emit: Callable[[dict[str, Any], Pass], None],
) -> Snapshot:
    status, rows = request(pass_, paged=False)
    if status == 400:
        raise Stop
    ids: set[int] = set()
    unchanged: set[int] = set()
    changed = 0
    for task in rows or []:
        if task["id"] in ids:
            continue
        ids.add(task["id"])
        if ending.missed(pass_, task, settings):
            emit(task, pass_)
            if protocol.changed_during(pass_, task):
                changed += 1
            else:
                unchanged.add(task["id"])
    return Snapshot(frozenset(ids), frozenset(unchanged), changed)
