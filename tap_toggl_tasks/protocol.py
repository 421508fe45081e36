"""The sync protocol: where a sync starts, its `since`, how pages join, what the state holds.

Everything the tap decides about completeness lives here; `streams.py` only moves pages and
records between Toggl and the SDK. No HTTP and no SDK hook here: a function of the pages given.

The tasks state (`bookmarks.tasks`)::

    replication_key_value  when the last complete sync began, by Toggl's clock (the bookmark)
    filters                include_not_active, include_hidden, search, as the bookmark was made
    known_ids              the ids of the tasks loaded and not deleted (compact, see encode_ids)
    table_version          the Singer table version of the last pass that listed every task
    unfinished_sync        only while a sync has pages left: what a later run resumes from
        began, since, filters   when it began (Toggl's clock), the `since` its pass sends
        version                 the table version its records carry
        pager                   the next offset and what proves the next page joins the last
        seen, gone              ids listed live / as deleted by this pass, one chunk per page

A sync, as a state machine::

            state ──read──> plan ─┬─ unfinished_sync, same filters ──> resume its pass
                                  └─ otherwise: a new pass, `since` = bookmark - lookback;
                                     none when there is no bookmark, the filters changed,
                                     or it is older than SINCE_WINDOW (Toggl refuses those)
                                                        │
          ┌──────────── page at `offset` <──────────────┘
          │  joined?  some task of the last joined page is in it, unchanged (same id and `at`),
          │           or it is at offset 0. Then no unchanged task can have slipped past.
          │    yes ──> emit the new tasks; STATE (unfinished_sync); next offset = last row
          │    no  ──> step back one page (≤ MAX_STEP_BACKS a sync): re-read what shifted
          │  end?     a joined page of ≤ 1 row, or shorter than a page Toggl sent this run
          └──< more
                end ──> pass without `since` that lists everything: tombstones for the
                        known ids it did not list, then ACTIVATE_VERSION (for loaders that
                        mark the rows it did not load) and a `tasks_listings` record (for
                        warehouses whose loader does not). Bookmark := began; known_ids updated;
                        unfinished_sync removed. If a shift could not be bridged (`gap`),
                        the bookmark stays, so the next run reads those tasks again.

Why it is complete: Toggl's order (undocumented) depends only on the tasks, so tasks that do
not change keep their order among themselves. A task that changes during the sync gets an `at`
after `began`, so the next run's `since` brings it; a task that does not change is either in a
joined page, or after one, where the next page looks. A page shorter than asked is not the end
by itself (Toggl may cap pages): only one shorter than a page it already sent this run, or the
page that merely repeats the last row. Stopping anywhere (quota, error, kill) loses nothing:
every STATE follows the records it covers, and the next run resumes from it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tap_toggl_tasks.errors import TogglError

Task = dict[str, Any]
Identity = tuple[Any, Any]  # (id, at) as Toggl sent them: equal only while the task is unchanged

UNFINISHED = "unfinished_sync"
FILTERS = "filters"
KNOWN_IDS = "known_ids"
TABLE_VERSION = "table_version"
BOOKMARK = "replication_key_value"
FILTER_SETTINGS = ("include_not_active", "include_hidden", "search")
# Toggl refuses (or answers empty) a `since` older than 2-3 months; its own clients stay
# within two months, and so does the tap: an older start means a pass without `since`.
SINCE_WINDOW = datetime.timedelta(days=60)
MAX_STEP_BACKS = 5  # a sync's, across the runs that resume it
ANCHORS_KEPT = 10  # tasks at the end of a page that may prove the next page joins it
# The same page this many times in a row: the server ignores `offset`. (Twice is legitimate:
# tasks inserted before the offset can repeat a page.)
SAME_PAGE_LIMIT = 3
# Keys of states written by 0.1.x: what they recorded is rebuilt, so they are dropped.
OLD_KEYS = ("largest_page", "deletions_unseen_since")


class StateError(ValueError):
    """The tasks state cannot be this tap's: the message says which key and why."""


@dataclass(frozen=True)
class Settings:
    """The settings the protocol reads."""

    filters: dict[str, Any]
    lookback_seconds: int = 60
    start_date: datetime.datetime | None = None

    @property
    def lists_everything(self) -> bool:
        """Whether a pass lists every live task, so a task it does not list is deleted."""
        return bool(
            self.filters.get("include_not_active")
            and self.filters.get("include_hidden")
            and not self.filters.get("search")
        )


@dataclass
class Pager:
    """Where a pass stands between two pages: all of it goes into the state after each page."""

    offset: int = 0  # of the next request
    joined_at: int = 0  # offset of the last page that joined
    anchors: list[Identity] = field(default_factory=list)  # the end of that page
    # While stepping back: the page that did not join, and the offset after it.
    stranded: list[Identity] | None = None
    stranded_at: int = 0
    resume_at: int | None = None
    step_backs: int = 0
    gap: bool = False  # a shift was not bridged: an unchanged task may have been skipped


@dataclass
class Sync:
    """One sync of the tasks stream, from its plan to the state it leaves."""

    settings: Settings
    since: int | None
    began: datetime.datetime | None = None  # Toggl's clock at its first answer
    pager: Pager = field(default_factory=Pager)
    # The pager after the last page whose tasks were all emitted: where a later run resumes.
    committed: Pager = field(default_factory=Pager)
    version: int | None = None  # the table version records carry
    seen: list[str] = field(default_factory=list)  # encoded ids, one chunk a page
    gone: list[str] = field(default_factory=list)
    resumed: bool = False
    # What the plan wants the user to know: warnings (a user's change costs a full read) and,
    # in `info`, what is normal (a pause past the `since` window).
    notes: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    widest: int = 0  # the largest page Toggl sent in this run: a shorter one is the end
    repeats: int = 0  # pages in a row that were the page before over again
    tasks_read: int = 0
    finished: bool = False
    # Set by finish() when the pass listed every live task and emitted each with `version`:
    # the `tasks_listings` record, the durable form of ACTIVATE_VERSION.
    listing: Task | None = None

    # -- the plan -------------------------------------------------------------------------

    @classmethod
    def plan(cls, tasks_state: dict[str, Any], settings: Settings, now: datetime.datetime) -> Sync:
        """The sync a run makes from this state: the unfinished one, or a new one."""
        unfinished = tasks_state.get(UNFINISHED)
        if unfinished is not None:
            if unfinished["filters"] == settings.filters:
                return cls._resume(unfinished, settings)
            # What it loaded is in the warehouse: its ids stay known, for later tombstones.
            tasks_state[KNOWN_IDS] = encode_ids(
                (decode_ids(tasks_state.get(KNOWN_IDS)) | set(decode_chunks(unfinished["seen"])))
                - set(decode_chunks(unfinished["gone"]))
            )
            del tasks_state[UNFINISHED]
            note = (
                f"The unfinished sync in the state was made with other filters "
                f"({_describe(unfinished['filters'])}); it is dropped and this run starts anew."
            )
            return cls._new(tasks_state, settings, now, [note])
        return cls._new(tasks_state, settings, now, [])

    @classmethod
    def _resume(cls, unfinished: Mapping[str, Any], settings: Settings) -> Sync:
        pager = unfinished["pager"]
        return cls(
            settings,
            since=unfinished["since"],
            began=as_utc(unfinished["began"]),
            pager=Pager(
                offset=pager["offset"],
                joined_at=pager["joined_at"],
                anchors=[tuple(anchor) for anchor in pager["anchors"]],
                stranded=None
                if pager["stranded"] is None
                else [tuple(anchor) for anchor in pager["stranded"]],
                stranded_at=pager["stranded_at"],
                resume_at=pager["resume_at"],
                step_backs=pager["step_backs"],
                gap=pager["gap"],
            ),
            version=unfinished.get("version"),
            seen=list(unfinished["seen"]),
            gone=list(unfinished["gone"]),
            resumed=True,
        ).committing()

    @classmethod
    def _new(
        cls,
        tasks_state: dict[str, Any],
        settings: Settings,
        now: datetime.datetime,
        notes: list[str],
    ) -> Sync:
        bookmark = tasks_state.get(BOOKMARK)
        made_with = tasks_state.get(FILTERS)
        if bookmark is not None and made_with is not None and made_with != settings.filters:
            notes.append(
                f"The filters changed since the bookmark was made ({_describe(made_with)}, now "
                f"{_describe(settings.filters)}): a bookmark says nothing about tasks outside "
                "its filter, so this run reads every task."
            )
            bookmark = None
        start: datetime.datetime | None = None
        if bookmark is not None:
            start = as_utc(bookmark) - datetime.timedelta(seconds=settings.lookback_seconds)
        elif settings.start_date is not None:
            start = settings.start_date
        since = None if start is None else math.floor(start.timestamp())
        info = []
        if start is not None and start < now - SINCE_WINDOW:
            info.append(
                f"The sync would start at {start:%Y-%m-%d}, more than {SINCE_WINDOW.days} days "
                "ago, and Toggl does not accept `since` that old: this run reads every task "
                "instead, and marks deleted the tasks it knew that Toggl no longer lists."
            )
            since = None
        return cls(
            settings, since=since, version=tasks_state.get(TABLE_VERSION), notes=notes, info=info
        )

    def answered(self, toggl_now: datetime.datetime) -> None:
        """Toggl's first answer: its clock is when the sync began."""
        if self.began is not None:
            return
        self.began = toggl_now
        if self.full_pass:
            self.version = self._new_version()

    def _new_version(self) -> int:
        """A new table version for every pass without `since`, filtered ones too (then a later
        pass that lists everything reaches their rows): Toggl's clock in milliseconds, and
        always above the last one, should that clock step back."""
        if self.began is None:
            raise RuntimeError("a version needs the time the sync began")
        return max(math.floor(self.began.timestamp() * 1000), (self.version or 0) + 1)

    def without_since(self) -> None:
        """Toggl refused this pass's `since`: start the pass over without it."""
        self.since = None
        if self.began is not None:
            self.version = self._new_version()
        self.pager = self.committed = Pager()
        self.seen, self.gone = [], []

    @property
    def full_pass(self) -> bool:
        return self.since is None

    @property
    def lists_everything(self) -> bool:
        """Whether this pass lists every live task, so a known id it does not list is deleted."""
        return self.full_pass and self.settings.lists_everything

    @property
    def activates(self) -> bool:
        """Whether ACTIVATE_VERSION follows the pass: it emits every live task (with a
        start_date it leaves older ones out, whose rows a loader would then mark deleted)."""
        return self.lists_everything and self.settings.start_date is None

    # -- the pages ------------------------------------------------------------------------

    @property
    def next_offset(self) -> int | None:
        return None if self.finished else self.pager.offset

    def read_page(self, tasks: list[Task]) -> list[Task]:
        """Take the page asked at `next_offset`; return the tasks to emit, decide what follows."""
        widest_before, self.widest = self.widest, max(self.widest, len(tasks))
        identities = [identity(task) for task in tasks]
        offset = self.pager.offset
        same_again = bool(identities) and identities[-ANCHORS_KEPT:] == self.pager.anchors
        fresh_tasks, self.pager, end = turn_page(self.pager, identities, tasks, widest_before)
        self.repeats = self.repeats + 1 if same_again and not end else 0
        if self.repeats >= SAME_PAGE_LIMIT - 1:
            # A server that ignores `offset` would otherwise be asked for one page forever.
            raise TogglError(
                f"Toggl returned the same page at {SAME_PAGE_LIMIT} offsets in a row (the last "
                f"{offset}): it seems to ignore the offset parameter. Check the api_url setting; "
                "as a workaround set page_size above your number of tasks."
            )
        self.finished = end
        self.tasks_read += len(fresh_tasks)
        live = [task["id"] for task in tasks if not task.get("server_deleted_at")]
        gone = [task["id"] for task in tasks if task.get("server_deleted_at")]
        if live:
            self.seen.append(encode_ids(live))
        if gone:
            self.gone.append(encode_ids(gone))
        start = self.settings.start_date
        if start is not None and self.full_pass:
            # Without `since`, Toggl lists tasks older than start_date too.
            fresh_tasks = [task for task in fresh_tasks if as_utc(task["at"]) >= start]
        return fresh_tasks

    def committing(self) -> Sync:
        """The tasks of the page just read are all emitted: a later run may resume after it."""
        self.committed = self.pager
        return self

    def checkpoint(self) -> dict[str, Any]:
        """The `unfinished_sync` a later run resumes from: after the last committed page, and
        with the ids of every task read, the page being emitted included (known ids must
        cover every row a loader may hold, even when a stop cuts that page short)."""
        if self.began is None:
            raise RuntimeError("a checkpoint needs the time the sync began")
        pager = self.committed
        return {
            "began": bookmark_form(self.began),
            "since": self.since,
            "filters": self.settings.filters,
            "version": self.version,
            "pager": {
                "offset": pager.offset,
                "joined_at": pager.joined_at,
                "anchors": [list(anchor) for anchor in pager.anchors],
                "stranded": None
                if pager.stranded is None
                else [list(anchor) for anchor in pager.stranded],
                "stranded_at": pager.stranded_at,
                "resume_at": pager.resume_at,
                "step_backs": pager.step_backs,
                "gap": pager.gap,
            },
            "seen": self.seen,
            "gone": self.gone,
        }

    # -- the end --------------------------------------------------------------------------

    def finish(self, tasks_state: dict[str, Any]) -> list[Task]:
        """Settle the state of a sync that read its last page; the tombstones to emit."""
        if self.began is None:
            raise RuntimeError("a sync ends after Toggl answered")
        known = decode_ids(tasks_state.get(KNOWN_IDS))
        seen = set(decode_chunks(self.seen))
        tombstones: list[Task] = []
        if self.lists_everything and not self.pager.gap:
            began = bookmark_form(self.began)
            tombstones = [
                {"id": task_id, "at": began, "server_deleted_at": began}
                for task_id in sorted(known - seen)
            ]
            known = seen
        else:
            known = (known | seen) - set(decode_chunks(self.gone))
        if self.full_pass and not self.pager.gap:
            tasks_state[TABLE_VERSION] = self.version
        if self.activates and not self.pager.gap and self.version is not None:
            self.listing = {
                "table_version": self.version,
                "began_at": bookmark_form(self.began),
                "tasks_listed": len(seen),
                "tasks_gone": len(tombstones),
            }
        tasks_state[KNOWN_IDS] = encode_ids(known)
        if not self.pager.gap:
            tasks_state["replication_key"] = "at"
            tasks_state[BOOKMARK] = bookmark_form(self.began)
            tasks_state[FILTERS] = self.settings.filters
        tasks_state.pop(UNFINISHED, None)
        for key in OLD_KEYS:
            tasks_state.pop(key, None)
        return tombstones


def turn_page(
    pager: Pager, identities: list[Identity], tasks: list[Task], widest_before: int
) -> tuple[list[Task], Pager, bool]:
    """The tasks of a page not read just before it, the pager for the next page, and whether
    the pass ends here: a pure function of the pager and the page."""
    known = set(pager.anchors) | set(pager.stranded or ())
    fresh = [task for task, ident in zip(tasks, identities, strict=True) if ident not in known]
    joined = pager.offset == 0 or not set(pager.anchors).isdisjoint(identities)
    at_end = len(tasks) <= 1 or len(tasks) < widest_before

    stranded = pager.stranded
    if (
        joined
        and stranded is not None
        and (not stranded or not set(stranded).isdisjoint(identities))
    ):
        # Bridged: what slipped past the stranded page is in this one, so it stands as read.
        bridged = Pager(
            offset=pager.resume_at or 0,
            joined_at=pager.stranded_at,
            anchors=stranded[-ANCHORS_KEPT:],
            step_backs=pager.step_backs,
            gap=pager.gap,
        )
        return fresh, bridged, pager.resume_at is None
    if not joined and pager.step_backs < MAX_STEP_BACKS:
        # Rows before this page went away (deleted, moved by an edit, filtered out), so
        # unchanged tasks may have shifted past it: read the range before it again.
        if stranded is None:
            stepping = Pager(
                offset=pager.joined_at,
                stranded=identities,
                stranded_at=pager.offset,
                resume_at=_after(pager.offset, len(tasks), at_end=at_end),
            )
        else:
            page = max(widest_before, len(tasks), 2)
            stepping = Pager(
                offset=max(0, pager.offset - page + 1),
                stranded=stranded,
                stranded_at=pager.stranded_at,
                resume_at=pager.resume_at,
            )
        stepping.joined_at, stepping.anchors = pager.joined_at, pager.anchors
        stepping.step_backs, stepping.gap = pager.step_backs + 1, pager.gap
        return fresh, stepping, False
    # Joined (or out of step-backs: then go on, and keep the bookmark, so the next run reads
    # these tasks again).
    following = Pager(
        offset=_after(pager.offset, len(tasks), at_end=at_end) or 0,
        joined_at=pager.offset,
        anchors=identities[-ANCHORS_KEPT:],
        step_backs=pager.step_backs,
        gap=pager.gap or not joined,
    )
    return fresh, following, at_end


def _after(offset: int, rows: int, *, at_end: bool) -> int | None:
    """The offset of the page after `rows` rows at `offset`: it starts on their last row."""
    return None if at_end else offset + rows - 1


def identity(task: Task) -> Identity:
    return (task.get("id"), task.get("at"))


# -- the state, checked before any request ------------------------------------------------


def state_problem(tasks_state: Mapping[str, Any]) -> str | None:
    """Why the tasks state cannot be this tap's; None when every key the tap reads is sound."""
    try:
        _check_state(tasks_state)
    except StateError as problem:
        return str(problem)
    return None


def _check_state(tasks: Mapping[str, Any]) -> None:
    if tasks.get("replication_key", "at") != "at":
        raise StateError(
            f"The state's tasks bookmark is on {tasks['replication_key']!r}, not `at`."
        )
    _expect(tasks, BOOKMARK, "a timestamp", is_timestamp, optional=True)
    _expect(tasks, FILTERS, "an object of filter settings", _is_filters, optional=True)
    _expect(tasks, KNOWN_IDS, "encoded task ids", _decodes, optional=True)
    _expect(tasks, TABLE_VERSION, "a whole number", _is_count, optional=True)
    unfinished = tasks.get(UNFINISHED)
    if unfinished is None:
        return
    where = f"tasks {UNFINISHED}"
    if not isinstance(unfinished, Mapping):
        raise StateError(f"The state's {where} is not an object.")
    _expect(unfinished, "began", "a timestamp", is_timestamp, where=where)
    _expect(unfinished, "since", "UNIX seconds", _is_int, where=where, optional=True)
    _expect(unfinished, "version", "a whole number", _is_count, where=where, optional=True)
    _expect(unfinished, "filters", "an object of filter settings", _is_filters, where=where)
    _expect(unfinished, "seen", "a list of encoded ids", _is_chunks, where=where)
    _expect(unfinished, "gone", "a list of encoded ids", _is_chunks, where=where)
    _expect(unfinished, "pager", "an object", lambda value: isinstance(value, Mapping), where=where)
    pager, where = unfinished["pager"], f"{where} pager"
    for key in ("offset", "joined_at", "stranded_at", "step_backs"):
        _expect(pager, key, "a whole number", _is_count, where=where)
    _expect(pager, "resume_at", "a whole number", _is_count, where=where, optional=True)
    _expect(pager, "anchors", "a list of [id, at] pairs", _is_anchors, where=where)
    _expect(pager, "stranded", "a list of [id, at] pairs", _is_anchors, where=where, optional=True)
    _expect(pager, "gap", "true or false", lambda value: isinstance(value, bool), where=where)


def _expect(
    holder: Mapping[str, Any],
    key: str,
    what: str,
    check: Any,
    *,
    where: str = "tasks",
    optional: bool = False,
) -> None:
    if key not in holder or holder[key] is None:
        if optional:
            return
        raise StateError(f"The state's {where} has no `{key}`.")
    if not check(holder[key]):
        raise StateError(f"The state's {where} `{key}` {holder[key]!r} is not {what}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _is_filters(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) <= set(FILTER_SETTINGS)


def _is_anchors(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 for pair in value
    )


def _is_chunks(value: Any) -> bool:
    return isinstance(value, list) and all(_decodes(chunk) for chunk in value)


def _decodes(value: Any) -> bool:
    try:
        decode_ids(value)
    except (ValueError, TypeError, zlib.error, binascii.Error):
        return False
    return True


def is_timestamp(value: Any) -> bool:
    try:
        datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


# -- ids, compactly: sorted, as differences, zlib-compressed, base64 ---------------------------


def encode_ids(ids: Iterable[int]) -> str:
    """A set of task ids as a short ASCII string (about 3 bytes an id for Toggl's ids)."""
    ordered = sorted(set(ids))
    steps = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
    text = ",".join(map(str, steps)).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def decode_ids(encoded: str | None) -> set[int]:
    if not encoded:
        return set()
    if not isinstance(encoded, str):
        raise TypeError("encoded ids are a string")
    text = zlib.decompress(base64.b64decode(encoded, validate=True)).decode()
    ids, total = set(), 0
    for step in text.split(",") if text else ():
        total += int(step)
        ids.add(total)
    return ids


def decode_chunks(chunks: Iterable[str]) -> Iterable[int]:
    for chunk in chunks:
        yield from decode_ids(chunk)


# -- timestamps ---------------------------------------------------------------------------------


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


def _describe(filters: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={filters.get(name)!r}" for name in FILTER_SETTINGS)
