"""Property: whatever Toggl does between and during runs, a chain of runs linked by their STATE
ends with a warehouse equal to Toggl's truth, each run within the stated request bound.

What the model tries (each run of a chain draws its own):
- changes between any two requests of a run, first syncs included: inserts, edits, tasks done,
  deletions, edits Toggl shows late, Toggl's clock ticking on;
- Toggl's list ordered by id or by `at` (an edit moves a task to the end), its clock behind or
  ahead of the host's, a cap on its pages that appears, grows or shrinks between runs;
- runs stopped by the quota, by a fatal answer or by a crash at any message, and resumed;
- `include_not_active` changed between runs, between a stop and its resume too;
- days passing between runs (both clocks move), past Toggl's `since` window, which either
  refuses an old `since` or, worse, answers it with an empty list;
- full refreshes (a run without state) and deletions that only a pass without `since` sees.

The oracle is a warehouse that upserts by id and honours ACTIVATE_VERSION as
meltanolabs-target-postgres does; `test_..._without_activate_version` checks the same chains
into one that ignores it (target-duckdb), where tombstones and the `tasks_listings` rule of
stg_tasks must do the work, full refreshes included.
Runs use the Tap in this process (tests/support/in_process.py), whose host clock the model moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tap_toggl_tasks.protocol import REPEATS_LIMIT
from tests.support.in_process import last_state, sync
from tests.support.warehouse_model import Warehouse, as_emitted
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

# Chains of runs through HTTP take tens of seconds: the pure model (test_protocol_properties)
# is the fast suite's; this one runs with the pipelines.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

RECOVERABLE = [
    Fault(status=429, headers={"Retry-After": "0"}),
    Fault(status=503, headers={"Retry-After": "0"}),
]
FATAL = [Fault(status=403), Fault(status=400, body='"Invalid include_not_active"')]
CLOCK_OFFSETS = [-120.0, -2.0, 0.0, 2.0, 120.0]  # Toggl's clock against the host's
MAX_RUNS_TO_FINISH = 40
# A chain of runs is slow and large next to hypothesis's usual examples.
CHAIN_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@dataclass
class Change:
    # insert, modify, done, delete; late: an edit Toggl shows two requests later;
    # tick: Toggl's clock moves on 1.5 s
    kind: str
    task_index: int  # which existing task, modulo the number of tasks


changes = st.builds(
    Change,
    st.sampled_from(["insert", "modify", "done", "delete", "delete", "modify", "late", "tick"]),
    st.integers(0, 30),
)
# one scripted request: None (normal), a change before it, a recoverable or a fatal fault
steps = st.one_of(
    st.none(),
    st.lists(changes, min_size=1, max_size=4),
    st.sampled_from(RECOVERABLE),
    st.sampled_from(FATAL),
)


@dataclass
class Run:
    """One run of a chain, and what happens in Toggl before it."""

    plan: list[Any] = field(default_factory=list)  # per request: None, changes or a fault
    before: list[Change] = field(default_factory=list)  # changes while no run is going
    days: int = 0  # days that pass before the run
    stateless: bool = False  # a full refresh: the run gets no state
    quota: int | None = None
    crash: float | None = None  # the run's output cut at this fraction, as if killed
    cap: int | None = None  # Toggl's page cap during this run
    include_not_active: bool = True
    sync: bool = True  # False: only time passes and Toggl changes (a pause between runs)


runs = st.builds(
    Run,
    plan=st.lists(steps, max_size=6),
    before=st.lists(changes, max_size=3),
    days=st.sampled_from([0, 0, 0, 1, 30, 100]),
    stateless=st.booleans(),
    quota=st.none() | st.integers(2, 6),
    crash=st.none() | st.floats(0, 1),
    cap=st.none() | st.integers(2, 12),
    include_not_active=st.booleans(),
    sync=st.sampled_from([True, True, True, False]),
)


# What Toggl is like in a chain: its tasks, page size, order, clock, and answer to an old `since`.
WORLDS: dict[str, st.SearchStrategy[Any]] = {
    "task_count": st.integers(0, 30),
    "page_size": st.integers(2, 12),
    "order": st.sampled_from(["id", "at"]),
    "clock": st.sampled_from(CLOCK_OFFSETS),
    "old_since": st.sampled_from(["refuse", "empty"]),
    "chain": st.lists(runs, min_size=1, max_size=4),
}


def apply(server: TogglServer, change_list: list[Change]) -> None:
    live = sorted(
        task_id for task_id, task in server.tasks.items() if not task["server_deleted_at"]
    )
    for change in change_list:
        if change.kind == "tick":
            server.clock_offset += timedelta(seconds=1.5)
            continue
        if change.kind == "insert" or not live:
            server.add(name="inserted")
            continue
        task_id = live[change.task_index % len(live)]
        if change.kind == "modify":
            server.modify(task_id, name=f"modified {change.task_index}")
        elif change.kind == "late":
            server.modify_late(task_id, after_requests=2, name=f"late {change.task_index}")
        elif change.kind == "done":
            server.mark_done(task_id)
        else:
            server.delete(task_id)
            live.remove(task_id)


def script_for(plan: list[Any]) -> list[Fault | None]:
    return [Fault(before=changing(step)) if isinstance(step, list) else step for step in plan]


def changing(change_list: list[Change]) -> Callable[[TogglServer], None]:
    return lambda server: apply(server, change_list)


def run_chain(
    chain: list[Run],
    *,
    task_count: int,
    page_size: int,
    order: str,
    clock: float,
    old_since: str,
    activate_version: bool,
) -> tuple[TogglServer, list[dict[str, Any]]]:
    """Run the chain, then quiet runs until one finishes, and one more: every message.

    After every run, the warehouse marks no task deleted that Toggl has, unchanged, since
    before the run: a false deletion must not even last until the next run.
    """
    tasks = [make_task(i) for i in range(1, task_count + 1)]
    # Days pass on both clocks: Toggl's (the server's offset) and the host's (host_now).
    host_now = datetime.now(UTC)
    messages: list[dict[str, Any]] = []
    with TogglServer(
        tasks, order=order, clock_offset=timedelta(seconds=clock), old_since=old_since
    ) as toggl:
        config = {
            "api_token": toggl.api_token,
            "api_url": toggl.url,
            "page_size": page_size,
            "max_quota_wait_seconds": 0,  # a run out of quota stops; the next one resumes
            "request_interval_seconds": 0,
        }
        state: dict[str, Any] | None = None
        for run in chain:
            if run.days:
                # Toggl shows a late write within seconds (the lookback covers that): never
                # after days have passed.
                toggl.show_late_writes()
            toggl.clock_offset += timedelta(days=run.days)
            host_now += timedelta(days=run.days)
            apply(toggl, run.before)
            if not run.sync:
                continue
            toggl.script(*script_for(run.plan))
            toggl.quota_remaining = run.quota
            toggl.max_per_page = run.cap
            before = len(toggl.requests)
            unchanged = live_tasks(toggl)
            run_config = {**config, "include_not_active": run.include_not_active}
            output, _ = sync(run_config, None if run.stateless else state, host_now)
            if run.crash is not None:
                output = output[: math.floor(run.crash * len(output))]
            messages += output
            assert_no_false_deletion(messages, unchanged & live_tasks(toggl), activate_version)
            state = last_state(output, None if run.stateless else state)
            refused = any(step is FATAL[1] for step in run.plan)  # a 400 may be taken for `since`
            assert_within_request_bound(
                toggl, before, page_size, run.cap, len(run.plan), second_pass=refused
            )

        # Quiet runs (no faults, no changes, every write shown, no cap) until one finishes.
        toggl.script()
        toggl.show_late_writes()
        toggl.quota_remaining = None
        toggl.max_per_page = None
        for _ in range(MAX_RUNS_TO_FINISH):
            before = len(toggl.requests)
            output, done = sync(config, state, host_now)
            messages += output
            state = last_state(output, state)
            assert_within_request_bound(toggl, before, page_size, None, 0)
            if done:
                break
        assert done
        # ...and one more: its changes may have come during the previous quiet run.
        output, done = sync(config, state, host_now)
        assert done
        messages += output
    return toggl, messages


def live_tasks(toggl: TogglServer) -> set[tuple[int, str]]:
    return {(i, task["at"]) for i, task in toggl.tasks.items() if task["server_deleted_at"] is None}


def assert_no_false_deletion(
    messages: list[dict[str, Any]], live: set[tuple[int, str]], activate_version: bool
) -> None:
    warehouse = Warehouse(activate_version=activate_version).load(messages)
    for task_id, _ in live:
        assert not warehouse.marked_deleted(task_id), f"live task {task_id} marked deleted"


def assert_warehouse_equals_toggl(
    toggl: TogglServer, messages: list[dict[str, Any]], *, activate_version: bool
) -> None:
    warehouse = Warehouse(activate_version=activate_version)
    warehouse.load(messages)
    for task_id, task in toggl.tasks.items():
        row = warehouse.rows.get(task_id)
        if task["server_deleted_at"] is None:
            assert row is not None, f"task {task_id} never loaded"
            assert as_emitted(row) == as_emitted(task), f"task {task_id} stale"
            assert not warehouse.marked_deleted(task_id), f"live task {task_id} marked deleted"
        else:
            assert row is None or warehouse.marked_deleted(task_id), (
                f"deleted task {task_id} not marked"
            )


def assert_within_request_bound(
    server: TogglServer,
    before: int,
    page_size: int,
    cap: int | None,
    scripted: int,
    *,
    second_pass: bool = False,
) -> None:
    """Pages of Toggl's page size; the empty page that ends them, or full pages with nothing
    new (a shift); three answers without per_page at most (the whole list, the changes that
    explain what it lacks, the second look); one per scripted fault or change; one refused
    for the quota; and all of it again when a 400 makes the tap read the pass again without
    `since`."""
    made = len(server.requests) - before
    tasks = len(server.tasks)
    honoured = page_size if cap is None else min(page_size, cap)
    pages = math.ceil(tasks / honoured) + REPEATS_LIMIT
    bound = pages + 3 + scripted + 1
    assert made <= (2 * bound if second_pass else bound)


# Shapes random search rarely builds, always tried: each is a silent-loss path found before.
@example(  # 1a: false join, ordered by `at`: the overlap task (10) and task 5 edited mid-sync
    task_count=15,
    page_size=10,
    order="at",
    clock=0.0,
    old_since="refuse",
    chain=[Run([None, [Change("modify", 4), Change("modify", 9)]])],
)
@example(  # 1a, incremental: the same edits during a run that starts from a bookmark
    task_count=15,
    page_size=10,
    order="at",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run(before=[Change("modify", 0)] * 12, plan=[None, [Change("modify", 4)]])],
)
@example(  # 1b: stopped by the quota without done tasks, resumed with them
    task_count=25,
    page_size=10,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(quota=1, include_not_active=False), Run(include_not_active=True)],
)
@example(  # 1c: a cap that appears later, below every page Toggl sent before
    task_count=30,
    page_size=12,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run(stateless=True, cap=4)],
)
@example(  # 1d: a task inserted while the end of an 8-task list is checked
    task_count=8,
    page_size=10,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run([None, [Change("insert", 0)]])],
)
@example(  # 1f: more shifts than one run may step back from, over a resumed sync
    task_count=30,
    page_size=4,
    order="at",
    clock=0.0,
    old_since="refuse",
    chain=[
        Run([None, *[[Change("modify", 0), Change("delete", 1)]] * 4], quota=5),
        Run([[Change("modify", 0), Change("delete", 1)]] * 4),
    ],
)
@example(  # 2: a quiet account paused past the window; Toggl answers an old `since` with []
    task_count=6,
    page_size=4,
    order="id",
    clock=0.0,
    old_since="empty",
    chain=[Run(), Run(days=50, sync=False), Run(days=50, before=[Change("modify", 2)])],
)
@example(  # 3: a task deleted 80 days before a pass that follows a 100-day pause
    task_count=10,
    page_size=4,
    order="id",
    clock=0.0,
    old_since="empty",
    chain=[Run(), Run(days=20, before=[Change("delete", 3)], sync=False), Run(days=80)],
)
@example(  # 3: a full refresh after a deletion (the state, and its known ids, are gone)
    task_count=10,
    page_size=12,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run(before=[Change("delete", 2)], stateless=True)],
)
@example(  # Toggl's clock 2 s behind; task 1 (page 1) edited, then task 15 (page 2)
    task_count=20,
    page_size=10,
    order="id",
    clock=-2.0,
    old_since="refuse",
    chain=[Run([None, [Change("modify", 0), Change("tick", 0), Change("modify", 14)]])],
)
@example(  # a write Toggl shows late, below a bookmark a later write sets
    task_count=6,
    page_size=3,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run([[Change("late", 2), Change("tick", 0), Change("modify", 4)]])],
)
@example(  # two tasks done before page 2's offset (ordered by at), a crash, then a 403
    task_count=20,
    page_size=5,
    order="at",
    clock=0.0,
    old_since="refuse",
    chain=[Run([[], [Change("done", 0), Change("done", 1)]], crash=0.5), Run([FATAL[0]])],
)
@settings(max_examples=40, **CHAIN_SETTINGS)
@given(**WORLDS)
def test_a_chain_of_runs_ends_with_the_warehouse_equal_to_toggl(**world: Any) -> None:
    toggl, messages = run_chain(**world, activate_version=True)
    assert_warehouse_equals_toggl(toggl, messages, activate_version=True)


@example(  # 3: a task deleted 80 days before a pass that follows a 100-day pause
    task_count=10,
    page_size=4,
    order="at",
    clock=0.0,
    old_since="empty",
    chain=[Run(), Run(days=20, before=[Change("delete", 3)], sync=False), Run(days=80)],
)
@example(  # 3: a full refresh a day after a deletion: only tasks_listings can tell
    task_count=10,
    page_size=4,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run(before=[Change("delete", 2)], sync=False), Run(days=1, stateless=True)],
)
@example(  # the same with Toggl's clock two minutes behind, the refresh stopped by the quota
    task_count=6,
    page_size=3,
    order="at",
    clock=-120.0,
    old_since="refuse",
    chain=[
        Run(),
        Run(before=[Change("delete", 0)], sync=False),
        Run(days=1, stateless=True, quota=1),
        Run(),
    ],
)
@example(  # a pass without done tasks lists only some: its rows must not mark the rest deleted
    task_count=5,
    page_size=3,
    order="id",
    clock=0.0,
    old_since="refuse",
    chain=[Run(), Run(before=[Change("done", 1)]), Run(include_not_active=False)],
)
@settings(max_examples=25, **CHAIN_SETTINGS)
@given(**WORLDS)
def test_the_same_holds_in_a_warehouse_without_activate_version(**world: Any) -> None:
    toggl, messages = run_chain(**world, activate_version=False)
    assert_warehouse_equals_toggl(toggl, messages, activate_version=False)
