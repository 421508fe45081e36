"""How a pass ends: what its snapshot proves, the bookmark, the listing. Pure, like protocol.py.

The snapshot (one answer without `per_page`) is a second read of Toggl's list. Its evidence:

- tasks the pages missed are emitted from it (`missed`); if they did not change during the
  pass, the pages were faulty (ties in an unstable order, an empty answer), and only a second
  snapshot that agrees makes the two reads evidence again (`needs_second_look`);
- tasks the pages listed that it lacks are looked up as changes since the pass began
  (`explanation_since`): deleted meanwhile, or else it was cut short (`unconfirmed`);
- the pages must have gone through as many rows as it lists, or one of them stopped short.

Only a full pass whose two reads agree writes a listing (`finish`): the rows of tasks it lacks
are then marked deleted in the warehouse. When they disagree nothing is marked, and the next
run reads again from the same bookmark (once: a snapshot cut at the same length twice is a cap
of Toggl's, and the pages are trusted).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from msgspec.structs import replace as evolve

from tap_toggl_tasks.protocol import (
    SINCE_WINDOW,
    SUSPECT_SHARE,
    Pass,
    Settings,
    since_seconds,
    wanted,
)
from tap_toggl_tasks.state import TasksState
from tap_toggl_tasks.values import Task, bookmark_form


@dataclass(frozen=True)
class Snapshot:
    """What the answers without `per_page` listed."""

    ids: frozenset[int]  # every task in the snapshot
    # Tasks the pages missed though they did not change during the pass: then only one read
    # lists them, which is not enough evidence for a listing.
    missed_unchanged: frozenset[int] = frozenset()
    missed_changed: int = 0  # tasks the pages missed that changed during the pass
    # Tasks the pages listed that the snapshot lacks, found changed since the pass began by a
    # second answer: deleted (or done, or renamed out of the filter) meanwhile.
    explained: frozenset[int] = frozenset()
    # The ids of a second snapshot, read when the pages missed unchanged tasks: two whole
    # answers that agree are evidence where pages and one answer disagree.
    second: frozenset[int] | None = None


@dataclass(frozen=True)
class Outcome:
    """How a pass ends: the state it leaves, and what follows its records."""

    state: TasksState
    listing: Task | None = None  # the tasks_listings record; ACTIVATE_VERSION goes with it
    warnings: tuple[str, ...] = ()
    info: tuple[str, ...] = ()


def missed(pass_: Pass, task: Task, settings: Settings) -> bool:
    """Whether a task of the snapshot is one the pages did not emit, and should have."""
    return task["id"] not in pass_.seen and wanted(task, pass_, settings)


def unconfirmed(pass_: Pass, snapshot: Snapshot) -> frozenset[int]:
    """Tasks the pages listed that the snapshot lacks, and nothing explains yet."""
    return pass_.seen - snapshot.ids - snapshot.explained


def explanation_since(pass_: Pass, settings: Settings, host_now: datetime.datetime) -> int | None:
    """The `since` of the answer that may explain a full pass's unconfirmed tasks. None when
    no answer can: for a pass with `since` (its snapshot lists deletions too), or for one that
    began too long ago for Toggl to answer that `since`."""
    if not pass_.full or pass_.began is None or pass_.began < host_now - SINCE_WINDOW:
        return None
    return math.floor(pass_.began.timestamp()) - settings.lookback_seconds


def needs_second_look(pass_: Pass, snapshot: Snapshot) -> bool:
    """Whether a second snapshot may settle a disagreement: the pages missed unchanged tasks
    (ties in an unstable order) though they went through as many rows as the snapshot has, and
    listed nothing it lacks. (Pages that stopped short, at an empty answer, settle nothing.)"""
    return (
        pass_.full
        and bool(snapshot.missed_unchanged)
        and not unconfirmed(pass_, snapshot)
        and pass_.pager.offset >= len(snapshot.ids)
    )


def finish(
    state: TasksState, pass_: Pass, snapshot: Snapshot | None, settings: Settings
) -> Outcome:
    """The state after a pass whose pages (and snapshot, if it needed one) were all emitted.

    A snapshot that lacks tasks the pages listed, with nothing to explain it, was cut short:
    the pages may have missed tasks it lacks too, so the bookmark stays and the next run reads
    again (once: cut at the same length twice is a cap of Toggl's, and the pages are trusted).
    When the reads otherwise disagree, every task read is loaded but no listing is written.
    """
    if pass_.began is None:
        raise ValueError("a pass ends after Toggl answered")
    began = bookmark_form(pass_.began)
    listed = pass_.seen if snapshot is None else snapshot.ids
    doubt = None if snapshot is None else _doubt(pass_, snapshot)
    cut_short = snapshot is not None and bool(unconfirmed(pass_, snapshot))
    warnings: list[str] = []
    # (An empty answer is never taken for a cap: Toggl answers `null` by fault too.)
    if cut_short and (not listed or state.doubted != len(listed)):
        warning = f"{doubt} Every task read was loaded; the next run reads them again."
        doubting = evolve(state, unfinished_sync=None, doubted=len(listed))
        return Outcome(doubting, warnings=(warning,))
    if cut_short:
        warnings.append(
            f"Toggl's answers without per_page stopped at {len(listed)} task(s) twice in a row: "
            "it seems to cap them. The pages are trusted; no task is marked deleted."
        )
    if pass_.full and not listed:
        # An empty answer is what a fault of Toggl's looks like too (two requests a run, while
        # the account has no task).
        note = "Toggl listed no task at all; the next run reads everything again to be sure."
        return Outcome(evolve(state, unfinished_sync=None), info=(note,))
    listing = None
    listed_count = state.listed
    if cut_short or not (pass_.full and settings.lists_everything and not settings.start_date):
        pass  # no listing: it would not hold every task
    elif doubt is not None:
        warnings.append(f"{doubt} Every task read was loaded.")
    elif state.listed is not None and len(listed) < state.listed * SUSPECT_SHARE:
        warnings.append(
            f"Toggl now lists {len(listed)} task(s) where the last complete listing had "
            f"{state.listed}. So many gone at once looks like a fault of Toggl's, so no task "
            "is marked deleted. If you did delete them, run once without state "
            "(`meltano run --full-refresh ...`) to mark them."
        )
    elif pass_.version is not None:
        listing = {"table_version": pass_.version, "began_at": began, "tasks_listed": len(listed)}
        listed_count = len(listed)
    recheck = None
    if not pass_.full:
        # The next run asks again from the bookmark this one started from.
        bookmark = state.replication_key_value
        recheck = pass_.since if bookmark is None else since_seconds(bookmark, settings)
    new_state = evolve(
        state,
        replication_key_value=began,
        filters=settings.filters,
        table_version=pass_.version if pass_.full else state.table_version,
        listed=listed_count,
        recheck_since=recheck,
        doubted=None,
        unfinished_sync=None,
    )
    return Outcome(new_state, listing, warnings=tuple(warnings))


def _doubt(pass_: Pass, snapshot: Snapshot) -> str | None:
    """Why the pages and the snapshot do not make evidence enough for a listing; None if they
    do."""
    if lacking := unconfirmed(pass_, snapshot):
        return (
            f"Toggl's answer without per_page lacks {len(lacking)} task(s) its pages listed "
            f"(e.g. {min(lacking)}) and no change explains it: it was cut short, so no task "
            "is marked deleted."
        )
    if pass_.pager.offset < len(snapshot.ids) - snapshot.missed_changed:
        return (
            f"The pages stopped after {pass_.pager.offset} row(s), where Toggl's answer without "
            f"per_page lists {len(snapshot.ids)} task(s): one of the two was cut short, so no "
            "task is marked deleted."
        )
    missed = snapshot.missed_unchanged
    second = snapshot.second
    if missed and (second is None or not missed <= second):
        return (
            f"The pages missed {len(missed)} unchanged task(s) (e.g. {min(missed)}) that "
            "Toggl's answer without per_page lists, and no second answer confirms it, so no "
            "task is marked deleted."
        )
    return None
