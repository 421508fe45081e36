"""The sync protocol, pure: what a run reads, what it trusts, and the state it leaves.

No HTTP, no SDK, no clock: every function takes the state, the settings, the pages and the
moments it needs, and returns new values (the dataclasses are frozen). `sync.py` carries the
decisions out over HTTP; the state's layout and its checks are in `state.py`.

A run, as a state machine::

    state ──plan──> a pass: the unfinished one (same filters), or a new one whose `since` is
                    the bookmark less the lookback; none (a full pass) when there is no
                    bookmark, the filters changed, or it is older than SINCE_WINDOW
        │
        ├─> page at `offset` ──turn_page──> the tasks it brings that the pass has not seen,
        │     and the pager: the next page starts on this page's last row (the overlap), so
        │     a page that does not hold that row, unchanged, shows the list shifted (a gap).
        │     A page with no unseen task ends the paging; a short page never does.
        └─> after the pages, unless one page already held everything: ONE request without
            `per_page`, which Toggl answers with every task at once (a snapshot). The tasks
            the pages missed (a cap, an empty answer, ties in an unstable order, a task moved
            by an edit) are emitted from it. ──finish──> bookmark := when the pass began
            (Toggl's clock); for a full pass that lists every task and agrees with its
            snapshot, a listing (tasks_listings, ACTIVATE_VERSION): the rows of tasks it
            did not list are marked deleted, never erased.

Why nothing is lost: a task that changes during the sync gets an `at` after the pass began,
so the next run's `since` brings it; a task that does not change is on a page, or in the
snapshot, which is taken after the pages. Why no live task is marked deleted: only a full
pass whose pages and snapshot agree (the snapshot holds every task the pages listed) writes a
listing, and never one that would drop half of the last listing's tasks at once.
"""

from __future__ import annotations

import base64
import datetime
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from msgspec.structs import replace as evolve  # dataclasses.replace, for the state's structs

from tap_toggl_tasks.state import Filters, Pager, TasksState, Unfinished

Task = dict[str, Any]
Identity = tuple[int, datetime.datetime]  # a task's id and `at`: equal while it is unchanged

# Toggl refuses (or answers empty) a `since` older than two to three months, and two months
# can be 59 days: the tap stays well inside, an older start is a pass without `since`.
SINCE_WINDOW = datetime.timedelta(days=45)
ANCHORS_KEPT = 10  # rows at the end of a page that may prove the next page joins it
# A listing that would mark more than this share of the last listing's tasks deleted at once
# looks like a fault of Toggl's (an empty answer, a short page), not like a user's deletions.
SUSPECT_SHARE = 0.5


@dataclass(frozen=True)
class Settings:
    """The settings the protocol reads."""

    filters: Filters
    lookback_seconds: int = 60
    start_date: datetime.datetime | None = None

    @property
    def lists_everything(self) -> bool:
        """Whether a full pass lists every live task, so a task it does not list is deleted."""
        filters = self.filters
        return bool(filters.include_not_active and filters.include_hidden and not filters.search)


@dataclass(frozen=True)
class Pass:
    """One pass over Toggl's list, from its first page to its snapshot."""

    since: int | None  # None: a full pass
    filters: Filters
    began: datetime.datetime | None = None  # Toggl's clock at its first answer
    version: int | None = None  # the table version its records carry
    pager: Pager = field(default_factory=Pager)
    seen_chunks: tuple[str, ...] = ()  # the ids it emitted, one encoded chunk a page
    seen: frozenset[int] = frozenset()  # the same ids, decoded

    @property
    def full(self) -> bool:
        return self.since is None


@dataclass(frozen=True)
class Plan:
    """A run's pass, and what the user should know about it."""

    pass_: Pass
    resumed: bool = False
    warnings: tuple[str, ...] = ()  # a choice of the user's costs a full read
    info: tuple[str, ...] = ()  # normal, but worth a line (a pause past the `since` window)


@dataclass(frozen=True)
class Page:
    """What one page brings: the tasks to emit, and the pass after it."""

    fresh: tuple[Task, ...]
    pass_: Pass


@dataclass(frozen=True)
class Outcome:
    """How a pass ends: the state it leaves, and what follows its records."""

    state: TasksState
    listing: Task | None = None  # the tasks_listings record; ACTIVATE_VERSION goes with it
    warnings: tuple[str, ...] = ()
    info: tuple[str, ...] = ()


# -- the plan -------------------------------------------------------------------------------


def plan(state: TasksState, settings: Settings, host_now: datetime.datetime) -> Plan:
    """The pass a run makes from this state: the unfinished one, or a new one.

    `host_now` (this machine's clock) only judges whether a bookmark is too old for `since`.
    """
    warnings: list[str] = []
    unfinished = state.unfinished_sync
    if unfinished is not None:
        if unfinished.filters == settings.filters:
            return Plan(resume(unfinished), resumed=True)
        warnings.append(
            f"The unfinished sync in the state was made with other filters "
            f"({unfinished.filters.describe()}); it is dropped and this run starts anew."
        )
    bookmark = state.replication_key_value
    if bookmark is not None and state.filters is not None and state.filters != settings.filters:
        warnings.append(
            f"The filters changed since the bookmark was made ({state.filters.describe()}, now "
            f"{settings.filters.describe()}): a bookmark says nothing about tasks outside its "
            "filter, so this run reads every task."
        )
        bookmark = None
    start = settings.start_date
    if bookmark is not None:
        start = as_utc(bookmark) - datetime.timedelta(seconds=settings.lookback_seconds)
    info: list[str] = []
    if start is not None and start < host_now - SINCE_WINDOW:
        info.append(
            f"The sync would start at {start:%Y-%m-%d}, more than {SINCE_WINDOW.days} days "
            "ago, older than Toggl accepts for `since`: this run reads every task instead."
        )
        start = None
    since = None if start is None else math.floor(start.timestamp())
    new = Pass(since=since, filters=settings.filters, version=state.table_version)
    return Plan(new, warnings=tuple(warnings), info=tuple(info))


def resume(unfinished: Unfinished) -> Pass:
    seen_chunks = tuple(unfinished.seen)
    return Pass(
        since=unfinished.since,
        filters=unfinished.filters,
        began=as_utc(unfinished.began),
        version=unfinished.version,
        pager=unfinished.pager,
        seen_chunks=seen_chunks,
        seen=frozenset(decode_chunks(seen_chunks)),
    )


def answered(pass_: Pass, toggl_now: datetime.datetime) -> Pass:
    """The pass after Toggl's first answer: its clock is when the pass began."""
    if pass_.began is not None:
        return pass_
    return _with_new_version(replace(pass_, began=toggl_now))


def without_since(pass_: Pass) -> Pass:
    """Toggl refused the pass's `since`: the same pass from the start, without it."""
    return _with_new_version(
        Pass(since=None, filters=pass_.filters, began=pass_.began, version=pass_.version)
    )


def _with_new_version(pass_: Pass) -> Pass:
    """A full pass gets a table version of its own: Toggl's clock in milliseconds, always
    above the last version, should that clock step back. An incremental pass keeps the
    version of the full pass its rows belong to."""
    if not pass_.full or pass_.began is None:
        return pass_
    version = max(math.floor(pass_.began.timestamp() * 1000), (pass_.version or 0) + 1)
    return replace(pass_, version=version)


# -- the pages ------------------------------------------------------------------------------


def turn_page(pass_: Pass, tasks: Sequence[Task], settings: Settings) -> Page:
    """Take the page Toggl sent for the pass's offset: the tasks to emit, and the pass after."""
    pager = pass_.pager
    anchors = anchor_identities(pager)
    rows = _first_of_each_id(tasks)  # a join that fans out can list a task twice
    fresh = tuple(task for task in rows if task["id"] not in pass_.seen)
    identities = [identity(task) for task in rows]
    first_page = pager.offset == 0 and not pager.anchors
    if first_page:
        gap = pager.gap
    elif fresh:
        # Some row of the last page must be here, unchanged; else rows before this offset
        # went away (deleted, moved by an edit, filtered out) and others may have slipped
        # past it. Either way the snapshot at the end brings them.
        gap = pager.gap or set(anchors).isdisjoint(identities)
    else:
        # The end: the page holds nothing new. Only the overlap row alone is a clean end; any
        # other answer (nothing, rows seen long before: a server ignoring `offset`) may hide
        # tasks further on, which the snapshot then reads.
        gap = pager.gap or identities != anchors[-1:]
    seen = pass_.seen | {task["id"] for task in fresh}
    chunks = pass_.seen_chunks + ((encode_ids(task["id"] for task in fresh),) if fresh else ())
    following = Pager(
        offset=pager.offset + max(len(rows) - 1, 0),
        anchors=tuple((task_id, bookmark_form(at)) for task_id, at in identities[-ANCHORS_KEPT:]),
        gap=gap,
        data_pages=pager.data_pages + (1 if fresh else 0),
        done=not fresh,
    )
    page_pass = replace(pass_, pager=following, seen=seen, seen_chunks=chunks)
    return Page(tuple(task for task in fresh if wanted(task, pass_, settings)), page_pass)


def needs_snapshot(state: TasksState, pass_: Pass) -> bool:
    """Whether the pages alone may have missed a task, so the snapshot must be read.

    One page that held every task is a snapshot already (one answer), unless it would drop
    half of the last listing's tasks. A full pass whose first answer was empty needs one too.
    """
    pager = pass_.pager
    if pager.gap or pager.data_pages >= 2:
        return True
    if not pass_.full:
        return False
    return pager.data_pages == 0 or _suspect(state, len(pass_.seen))


def missed(pass_: Pass, task: Task, settings: Settings) -> bool:
    """Whether a task of the snapshot is one the pages did not emit, and should have."""
    return task["id"] not in pass_.seen and wanted(task, pass_, settings)


def wanted(task: Task, pass_: Pass, settings: Settings) -> bool:
    """Whether the pass emits this task: without `since`, Toggl lists tasks older than
    start_date too."""
    start = settings.start_date
    return start is None or not pass_.full or task_time(task, "at") >= start


def _first_of_each_id(tasks: Sequence[Task]) -> list[Task]:
    rows, ids = [], set()
    for task in tasks:
        if task["id"] not in ids:
            ids.add(task["id"])
            rows.append(task)
    return rows


# -- the end --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What the request without `per_page` listed: the ids of every task in it."""

    ids: frozenset[int]


def finish(
    state: TasksState, pass_: Pass, snapshot: Snapshot | None, settings: Settings
) -> Outcome:
    """The state after a pass whose pages (and snapshot, if it needed one) were all emitted."""
    if pass_.began is None:
        raise ValueError("a pass ends after Toggl answered")
    began = bookmark_form(pass_.began)
    listed = pass_.seen if snapshot is None else snapshot.ids
    warnings: list[str] = []
    listing = None
    listed_count = state.listed
    if pass_.full and settings.lists_everything and settings.start_date is None:
        unconfirmed = pass_.seen - listed
        if unconfirmed:
            warnings.append(
                f"{len(unconfirmed)} task(s) the pages listed are missing from Toggl's answer "
                f"without per_page (e.g. {min(unconfirmed)}): deleted meanwhile, or that answer "
                "was cut short. The two reads disagree, so no task is marked deleted this "
                "time; every task read was loaded, and the bookmark moves on."
            )
        elif _suspect(state, len(listed)):
            warnings.append(
                f"Toggl now lists {len(listed)} task(s) where the last complete listing had "
                f"{state.listed}. So many gone at once looks like a fault of Toggl's, so no task "
                "is marked deleted. If you did delete them, run once without state "
                "(`meltano run --full-refresh ...`) to mark them."
            )
        elif listed and pass_.version is not None:
            listing = {
                "table_version": pass_.version,
                "began_at": began,
                "tasks_listed": len(listed),
            }
            listed_count = len(listed)
    new_state = evolve(
        state,
        replication_key_value=began,
        filters=settings.filters,
        table_version=pass_.version if pass_.full else state.table_version,
        listed=listed_count,
        unfinished_sync=None,
    )
    return Outcome(new_state, listing, warnings=tuple(warnings))


def checkpoint(state: TasksState, pass_: Pass) -> TasksState:
    """The state a later run resumes from: after the last page whose tasks were all emitted."""
    if pass_.began is None:
        raise ValueError("a checkpoint needs the time the pass began")
    unfinished = Unfinished(
        began=bookmark_form(pass_.began),
        since=pass_.since,
        filters=pass_.filters,
        version=pass_.version,
        pager=pass_.pager,
        seen=list(pass_.seen_chunks),
    )
    return evolve(state, unfinished_sync=unfinished)


def _suspect(state: TasksState, listed: int) -> bool:
    return state.listed is not None and listed < state.listed * SUSPECT_SHARE


# -- identities, ids and timestamps -----------------------------------------------------------


class BadTask(ValueError):
    """A task the tap cannot read: the message says which and what to do."""


def identity(task: Task) -> Identity:
    """A task's id and `at`, as an instant: a change of Toggl's format is not a change."""
    return (task["id"], task_time(task, "at"))


def task_time(task: Task, field: str) -> datetime.datetime:
    """A timestamp of a task, as an aware UTC datetime; BadTask when it is not one."""
    value = task.get(field)
    try:
        return as_utc(value)
    except (TypeError, ValueError):
        raise BadTask(
            f"Task {task.get('id')}: its {field} {value!r} is not a timestamp, so the sync "
            "stopped before advancing the bookmark. Report this message: Toggl changed its "
            "format."
        ) from None


def anchor_identities(pager: Pager) -> list[Identity]:
    return [(task_id, as_utc(at)) for task_id, at in pager.anchors]


def encode_ids(ids: Iterable[int]) -> str:
    """A set of task ids as a short ASCII string (about 3 bytes an id for Toggl's ids)."""
    ordered = sorted(set(ids))
    steps = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
    text = ",".join(map(str, steps)).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def decode_ids(encoded: str) -> set[int]:
    text = zlib.decompress(base64.b64decode(encoded, validate=True)).decode()
    ids, total = set(), 0
    for step in text.split(",") if text else ():
        total += int(step)
        ids.add(total)
    return ids


def decode_chunks(chunks: Iterable[str]) -> Iterable[int]:
    for chunk in chunks:
        yield from decode_ids(chunk)


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
