"""The sync protocol, pure: what a run reads, what it trusts, and the state it leaves.

No HTTP, no SDK, no clock: each function takes the state, the settings, the answers and the
moments it needs, and returns new values (frozen: nothing is changed in place). `sync.py`
carries the decisions out over HTTP; the state's layout and its checks are in `state.py`.

A run::

    state ──plan──> a pass: the unfinished one (same filters), or a new one whose `since` is
                    the bookmark before the last (less the lookback); no `since` (a full pass)
                    when there is no bookmark, the filters changed, or it is older than
                    SINCE_WINDOW
      │
      ├─ pages at offset 0, n, 2n, ... until one brings no task new to the pass (a short page
      │  is not the end: Toggl may cap pages or filter rows after LIMIT); each page's new
      │  tasks are emitted, then a STATE resumes after it
      ├─ the snapshot, for every full pass and for a `since` pass of several pages: ONE request
      │  without `per_page`, which Toggl answers with every task at once. The tasks the pages
      │  missed (ties in an unstable order, a task moved by an edit, an empty answer) are
      │  emitted from it; the tasks the pages listed and it lacks are looked up as changes
      │  since the pass began (deleted meanwhile) or show it was cut short
      └─ finish: bookmark := when the pass began (Toggl's clock). A full pass that lists every
         task, agrees with its snapshot and keeps at least half of the last listing writes a
         listing (tasks_listings, ACTIVATE_VERSION): the rows of tasks it lacks are marked
         deleted in the warehouse, never erased.

Why nothing is lost: a task that changes during a pass gets an `at` after the pass began, which
the next run's `since` covers; a task that does not change is on a page or in the snapshot. The
next run's `since` reaches back to the bookmark before the last, so every stretch of time is
asked about by two runs: one wrong empty answer cannot hide a change. Why no live task is
marked deleted: only two reads that agree (the pages and the snapshot, which holds every task
the pages listed) write a listing, and never an empty one or one that halves the last.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from msgspec.structs import replace as evolve  # dataclasses.replace, for the state's structs

from tap_toggl_tasks.state import Filters, Pager, TasksState, Unfinished
from tap_toggl_tasks.values import Task, as_utc, bookmark_form, decode_chunks, encode_ids, task_time

# Toggl refuses (or answers empty) a `since` older than two to three months, and two months
# can be 59 days: the tap stays well inside, an older start is a pass without `since`.
SINCE_WINDOW = datetime.timedelta(days=45)
# A listing that would mark more than this share of the last listing's tasks deleted at once
# looks like a fault of Toggl's (an empty answer, a short page), not like a user's deletions.
SUSPECT_SHARE = 0.5
REPEATS_LIMIT = 3  # full pages in a row with no new task: Toggl ignores `offset`


@dataclass(frozen=True)
class Settings:
    """The settings the protocol reads."""

    filters: Filters
    lookback_seconds: int = 60
    start_date: datetime.datetime | None = None
    page_size: int = 5000

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
    seen_chunks: tuple[str, ...] = ()  # the ids its pages listed, one encoded chunk a page
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


# -- the plan -------------------------------------------------------------------------------


def plan(state: TasksState, settings: Settings, host_now: datetime.datetime) -> Plan:
    """The pass a run makes from this state: the unfinished one, or a new one.

    `host_now` (this machine's clock) only judges whether a bookmark is too old for `since`.
    """
    warnings: list[str] = []
    unfinished = state.unfinished_sync
    too_old = (host_now - SINCE_WINDOW).timestamp()
    if unfinished is not None:
        if unfinished.since is not None and unfinished.since < too_old:
            pass  # Toggl would refuse its `since` now: a new pass reads what it would have
        elif unfinished.filters == settings.filters:
            return Plan(resume(unfinished), resumed=True)
        else:
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
        start = _since_moment(bookmark, settings)
        if state.recheck_since is not None:
            start = min(start, datetime.datetime.fromtimestamp(state.recheck_since, datetime.UTC))
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
    return Pass(
        since=unfinished.since,
        filters=unfinished.filters,
        began=as_utc(unfinished.began),
        version=unfinished.version,
        pager=unfinished.pager,
        seen_chunks=tuple(unfinished.seen),
        seen=frozenset(decode_chunks(unfinished.seen)),
    )


def answered(pass_: Pass, toggl_now: datetime.datetime) -> Pass:
    """The pass after Toggl's first answer: its clock is when the pass began."""
    if pass_.began is not None:
        return pass_
    return _with_new_version(replace(pass_, began=toggl_now))


def without_since(pass_: Pass) -> Pass:
    """Toggl refused the pass's `since`: the same pass from the start, without it."""
    anew = Pass(since=None, filters=pass_.filters, began=pass_.began, version=pass_.version)
    return _with_new_version(anew)


def _with_new_version(pass_: Pass) -> Pass:
    """A full pass gets a table version of its own: Toggl's clock in milliseconds, always
    above the last version, should that clock step back. A pass with `since` keeps the
    version of the full pass its rows belong to."""
    if not pass_.full or pass_.began is None:
        return pass_
    version = max(math.floor(pass_.began.timestamp() * 1000), (pass_.version or 0) + 1)
    return replace(pass_, version=version)


# -- the pages ------------------------------------------------------------------------------


def turn_page(
    pass_: Pass, tasks: Sequence[Task], settings: Settings
) -> tuple[tuple[Task, ...], Pass]:
    """Take the page Toggl sent for the pass's offset: the tasks to emit, and the pass after.

    Pages go on until a short one brings no task new to the pass: a short page with new tasks
    is not the end (Toggl may cap pages, or filter rows out after LIMIT). A task listed twice
    (a join that fans out) counts once. A pass with `since` whose first page is empty is done:
    nothing changed.
    """
    pager = pass_.pager
    rows: dict[int, Task] = {}
    for task in tasks:
        rows.setdefault(task["id"], task)
    fresh = [task for task_id, task in rows.items() if task_id not in pass_.seen]
    new_ids = [task["id"] for task in fresh]
    # A full page of tasks seen before is not the end (ties reshuffled, tasks moved), unless
    # it keeps coming: then Toggl ignores `offset`, and the snapshot reads the rest.
    repeats = 0 if fresh else pager.repeats + 1
    following = evolve(
        pager,
        offset=pager.offset + len(rows),
        pages_with_rows=pager.pages_with_rows + (1 if rows else 0),
        repeats=repeats,
        done=not fresh and (len(rows) < settings.page_size or repeats >= REPEATS_LIMIT),
    )
    chunks = (*pass_.seen_chunks, encode_ids(new_ids)) if new_ids else pass_.seen_chunks
    after = replace(
        pass_, pager=following, seen=pass_.seen | frozenset(new_ids), seen_chunks=chunks
    )
    # Emitted: what the pass has not seen, and newer versions of what it has (changed since
    # the pass began: cheaper to emit now than to leave to the next run).
    emit = [
        task
        for task in rows.values()
        if task["id"] not in pass_.seen or changed_during(pass_, task)
    ]
    return tuple(task for task in emit if wanted(task, pass_, settings)), after


def needs_snapshot(pass_: Pass) -> bool:
    """Whether the pages may have missed a task, so the snapshot must be read.

    Every full pass reads it: its listing marks deleted whatever it lacks. So does every pass
    with `since` that found a change: pages alone prove nothing whole (ties in Toggl's order
    move tasks across page boundaries between two requests, rows filtered out after LIMIT
    leave pages empty that are not the end). Only a first page that is empty is trusted: a
    pass with `since` that finds nothing costs one request (and the next run asks again).
    """
    return pass_.full or pass_.pager.pages_with_rows > 0


def changed_during(pass_: Pass, task: Task) -> bool:
    """Whether a task changed while the pass ran (so it may have moved past its pages)."""
    return pass_.began is None or task_time(task, "at") >= pass_.began


def wanted(task: Task, pass_: Pass, settings: Settings) -> bool:
    """Whether the pass emits this task: without `since`, Toggl lists tasks older than
    start_date too."""
    start = settings.start_date
    return start is None or not pass_.full or task_time(task, "at") >= start


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


def _since_moment(bookmark: str, settings: Settings) -> datetime.datetime:
    return as_utc(bookmark) - datetime.timedelta(seconds=settings.lookback_seconds)


def since_seconds(bookmark: str, settings: Settings) -> int:
    return math.floor(_since_moment(bookmark, settings).timestamp())
