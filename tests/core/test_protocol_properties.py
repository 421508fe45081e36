"""Property: whatever Toggl does (tests/support/toggl_model.py), after EVERY run of a chain linked
by its state, no live task is marked deleted, and none is missing or stale beyond the reach of the
next run; after the chain and a quiet full refresh, both warehouses equal Toggl's truth.

The pure protocol is driven directly (no HTTP, no SDK), so thousands of chains run in
seconds; tests/test_sync*.py check the glue around it with the tap as a process.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tap_toggl_tasks import protocol
from tap_toggl_tasks.state import TasksState
from tests.support.toggl_model import T0, Fault, Run, Toggl, drive, settings_for
from tests.support.warehouse_model import Warehouse
from toggl_standin.demo_data import parse_at

faults = st.builds(
    Fault,
    cap=st.none() | st.integers(2, 6),
    empty=st.booleans(),
    drop_one=st.booleans(),
    duplicate=st.booleans(),
    edits=st.lists(st.sampled_from(["insert", "edit", "done", "delete", "touch"]), max_size=3).map(
        tuple
    ),
    refuse=st.sampled_from([False] * 9 + [True]),
)


@dataclass
class Step:
    """One run of a chain and what happens in Toggl before it."""

    faults: list[Fault | None] = field(default_factory=list)
    before: list[str] = field(default_factory=list)  # changes while no run is going
    days: int = 0
    stop_at: int | None = None  # the run's quota (or a kill) after this many requests
    snapshot_cap: int | None = None
    stateless: bool = False  # a full refresh
    include_not_active: bool = True


steps = st.builds(
    Step,
    faults=st.lists(st.none() | faults, max_size=8),
    before=st.lists(st.sampled_from(["insert", "edit", "done", "delete"]), max_size=3),
    days=st.sampled_from([0, 0, 0, 1, 30, 100]),
    stop_at=st.none() | st.integers(1, 6),
    snapshot_cap=st.sampled_from([None] * 5 + [0, 3]),
    stateless=st.sampled_from([False] * 5 + [True]),
    include_not_active=st.sampled_from([True] * 4 + [False]),
)
chains = st.fixed_dictionaries(
    {
        "tasks": st.integers(0, 25),
        "page_size": st.integers(2, 8),
        "order": st.sampled_from(["id", "at_asc", "at_desc", "name", "ties"]),
        "time_format": st.sampled_from(["Z", "offset", "plain", "zone"]),
        "old_since": st.sampled_from(["refuse", "empty"]),
        "host_offset": st.sampled_from([-120, -2, 0, 2, 120]),
        "steps": st.lists(steps, min_size=1, max_size=5),
    }
)


def first_tasks(count: int) -> dict[int, dict[str, Any]]:
    # A few share a minute (ties, when ordered by minute), names repeat (order by name).
    return {
        i: {
            "id": i,
            "name": f"task {i % 7}",
            "active": i % 4 != 0,
            "at": T0 + timedelta(seconds=20 * (i // 3)),
            "deleted": None,
        }
        for i in range(1, count + 1)
    }


def check_after(
    run: Run, toggl: Toggl, messages: list[dict[str, Any]], step_settings: Any, host_now: datetime
) -> None:
    for warehouse in (Warehouse(activate_version=True), Warehouse(activate_version=False)):
        warehouse.load(messages)
        for task_id in toggl.live():
            assert not warehouse.marked_deleted(task_id), f"live task {task_id} marked deleted"
        if not run.finished:
            continue
        following = protocol.plan(run.state, step_settings, host_now).pass_.since
        if following is None:
            continue  # the next run reads everything
        for task_id, task in toggl.live().items():
            if task["at"].timestamp() >= following:
                continue  # within the next run's reach
            if not step_settings.filters.include_not_active and not task["active"]:
                continue  # outside the filter, by the user's choice
            row = warehouse.rows.get(task_id)
            assert row is not None, f"task {task_id} missing beyond the next run's reach"
            assert (row["name"], row["active"], parse_at(row["at"])) == (
                task["name"],
                task["active"],
                task["at"],
            ), f"task {task_id} stale beyond the next run's reach"


def check_equal(toggl: Toggl, messages: list[dict[str, Any]]) -> None:
    for warehouse in (Warehouse(activate_version=True), Warehouse(activate_version=False)):
        warehouse.load(messages)
        for task_id, task in toggl.tasks.items():
            row = warehouse.rows.get(task_id)
            if task["deleted"]:
                # With no task left at all, nothing tells that from a fault of Toggl's: an
                # empty listing is never trusted (docs/sync-protocol-and-quota.md).
                if toggl.live():
                    assert row is None or warehouse.marked_deleted(task_id), f"{task_id} not marked"
                continue
            assert row is not None, f"task {task_id} missing"
            assert not warehouse.marked_deleted(task_id)
            assert (row["name"], row["active"], parse_at(row["at"])) == (
                task["name"],
                task["active"],
                task["at"],
            ), f"task {task_id} stale"


def run_chain(chain: dict[str, Any]) -> None:
    toggl = Toggl(
        first_tasks(chain["tasks"]),
        order=chain["order"],
        time_format=chain["time_format"],
        old_since=chain["old_since"],
    )
    toggl.tick(3600)  # the tasks were made an hour before the first run
    host = timedelta(seconds=chain["host_offset"])
    state = TasksState()
    messages: list[dict[str, Any]] = []
    first_answer_empty = False
    for drawn in chain["steps"]:
        # One wrong empty answer to a run's first request is re-read by the next run (its
        # `since` reaches back a run); the same fault on the next run too is out of the model.
        faults = list(drawn.faults)
        if faults and faults[0] is not None and faults[0].empty and first_answer_empty:
            faults[0] = dataclasses.replace(faults[0], empty=False)
        first_answer_empty = bool(faults and faults[0] is not None and faults[0].empty)
        step = dataclasses.replace(drawn, faults=faults)
        toggl.now += timedelta(days=step.days)
        for position, kind in enumerate(step.before):
            toggl.change(kind, position)
            toggl.tick()
        # An answer without per_page cut short while the pages are faulty too could hide a
        # task from both reads: the tap's one documented limit, left out of the model.
        # (A pass resumed from an earlier run may have met page faults there.)
        resumed = state.unfinished_sync is not None and not step.stateless
        faulty = chain["order"] == "ties" or any(step.faults) or resumed
        cut = None if faulty else step.snapshot_cap
        toggl.faults, toggl.stop_at, toggl.snapshot_cap = step.faults, step.stop_at, cut
        run_settings = settings_for(step.include_not_active, chain["page_size"])
        run = drive(
            toggl, TasksState() if step.stateless else state, run_settings, toggl.now + host
        )
        messages += run.messages
        state = run.state
        check_after(run, toggl, messages, run_settings, toggl.now + host)
        toggl.tick(5)
    # Quiet runs until one finishes, then a full refresh: the warehouses equal Toggl's truth.
    toggl.faults, toggl.stop_at, toggl.snapshot_cap = [], None, None
    for _ in range(3):
        toggl.tick(3600)
        run = drive(toggl, state, settings_for(page_size=chain["page_size"]), toggl.now + host)
        messages += run.messages
        state = run.state
        assert run.finished
    run = drive(toggl, TasksState(), settings_for(page_size=chain["page_size"]), toggl.now + host)
    messages += run.messages
    check_equal(toggl, messages)


# MODEL_EXAMPLES=40000 searches longer; CI's profile (tests/conftest.py) draws the same ones.
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "2000"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains)
@example(
    {
        "tasks": 25,
        "page_size": 5,
        "order": "id",
        "time_format": "Z",
        "old_since": "refuse",
        "host_offset": 0,
        "steps": [Step(), Step(days=100, faults=[Fault(empty=True)])],
    }
)  # one empty answer
def test_after_every_run_nothing_is_lost_or_falsely_deleted(chain: dict[str, Any]) -> None:
    run_chain(chain)
