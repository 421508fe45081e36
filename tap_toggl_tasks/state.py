"""The tasks state (`bookmarks.tasks`): its layout, declared once, and decoded by checking it.

    replication_key_value  when the last complete sync began, by Toggl's clock (the bookmark)
    filters                include_not_active, include_hidden, search, as the bookmark was made
    table_version          the Singer table version of the last full pass
    listed                 how many tasks the last listing (tasks_listings) held
    recheck_since          the `since` the next run asks (from the bookmark before the last:
                           one wrong empty answer cannot hide a change)
    doubted                after a snapshot cut short: its length (cut at the same length
                           twice, Toggl caps it; the pages are trusted)
    unfinished_sync        only while a sync has requests left: what a later run resumes from
        began, since, filters, version   when it began (Toggl's clock), its `since`, ...
        pager                            the next offset, pages with rows so far, and
                                         whether the pages are over (the snapshot left)
        seen                             the ids it emitted, one compressed chunk a page

`decode` is the only way in: a value that does not fit this layout is refused with one
paragraph naming the key, before any request. Keys of older versions of the tap are dropped
(what they held is rebuilt), never trusted.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import zlib
from typing import Annotated, Any, Literal

import msgspec

Count = Annotated[int, msgspec.Meta(ge=0)]
FILTER_SETTINGS = ("include_not_active", "include_hidden", "search")
# What 0.1's states held: dropped on load. `known_ids` were the tombstones' evidence, which the
# snapshot replaced; an unfinished sync of the older layout restarts from the bookmark.
OLD_KEYS = ("largest_page", "deletions_unseen_since", "known_ids")


class StateError(ValueError):
    """The tasks state cannot be this tap's: the message says which key and why."""


class Filters(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    include_not_active: bool | None = None
    include_hidden: bool | None = None
    search: str | None = None

    def describe(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in FILTER_SETTINGS)


class Pager(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a pass stands between two pages."""

    offset: Count = 0  # of the next page
    pages_with_rows: Count = 0  # pages that were not empty
    repeats: Count = 0  # full pages in a row that brought none
    done: bool = False  # the pages are read; the snapshot may be left


class Unfinished(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    began: str
    since: int | None
    filters: Filters
    version: Count | None
    pager: Pager
    seen: list[str]

    def __post_init__(self) -> None:
        _check_timestamp(self.began, "began")
        for chunk in self.seen:
            _check_ids(chunk)


class TasksState(msgspec.Struct, frozen=True, omit_defaults=True):
    replication_key: Literal["at"] = "at"
    replication_key_value: str | None = None
    filters: Filters | None = None
    table_version: Count | None = None
    listed: Count | None = None
    recheck_since: int | None = None
    doubted: Count | None = None
    unfinished_sync: Unfinished | None = None

    def __post_init__(self) -> None:
        if self.replication_key_value is not None:
            _check_timestamp(self.replication_key_value, "replication_key_value")


def decode(value: Any) -> TasksState:
    """The tasks state from a --state file's `bookmarks.tasks`, checked; StateError if unfit."""
    if value is None:
        return TasksState()
    if not isinstance(value, dict):
        raise StateError("The state's `tasks` bookmark is not an object.")
    value = {key: item for key, item in value.items() if key not in OLD_KEYS}
    unfinished = value.get("unfinished_sync")
    pager = unfinished.get("pager") if isinstance(unfinished, dict) else None
    if isinstance(pager, dict) and "joined_at" in pager:
        del value["unfinished_sync"]  # the older layout: its pass starts over from the bookmark
    try:
        return msgspec.convert(value, TasksState)
    except msgspec.ValidationError as problem:
        where, _, what = str(problem).partition(" - at `$")
        place = f"bookmarks.tasks{what.rstrip('`')}" if what else "bookmarks.tasks"
        raise StateError(f"The state's {place} is not this tap's: {where}.") from None


def encode(state: TasksState) -> dict[str, Any]:
    """The state as the JSON object a STATE message carries."""
    value: dict[str, Any] = msgspec.to_builtins(state)
    value.setdefault("replication_key", "at")
    return value


def _check_timestamp(value: str, key: str) -> None:
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"`{key}` {value!r} is not a timestamp") from None


def _check_ids(chunk: str) -> None:
    try:
        zlib.decompress(base64.b64decode(chunk, validate=True)).decode().split(",")
    except (ValueError, zlib.error, binascii.Error):
        raise ValueError(f"`seen` chunk {chunk[:20]!r} is not encoded task ids") from None


def problem(value: Any) -> str | None:
    """Why a --state file's `bookmarks.tasks` cannot be this tap's; None when it can be."""
    try:
        decode(value)
    except StateError as error:
        return str(error)
    return None


def is_timestamp(value: Any) -> bool:
    try:
        _check_timestamp(str(value), "start_date")
    except ValueError:
        return False
    return True
