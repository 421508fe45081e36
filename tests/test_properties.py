"""Property: whatever the tasks, page size, changes, faults, crashes, clocks, quotas and page
caps, a chain of runs linked by their STATE ends with an upserting warehouse equal to the server
(deleted tasks marked), each run within the stated request bound.

Runs use the Tap object in-process (fast enough for hypothesis); a crash is modelled by cutting
the run's output at a random message, as if the process died there, and resuming from the last
STATE before the cut. A run stopped by the quota (402, reset too far) is resumed by the next.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tap_toggl_tasks.errors import TogglError
from tap_toggl_tasks.paging import TasksPaginator
from tap_toggl_tasks.tap import TapTogglTasks
from tests.test_fault_matrix import as_emitted, newest_by_id
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

RECOVERABLE = [
    Fault(status=429, headers={"Retry-After": "0"}),
    Fault(status=503, headers={"Retry-After": "0"}),
]
FATAL = [Fault(status=403), Fault(status=400, body='"Invalid include_not_active"')]
# Toggl's clock against the host's: behind, the same, ahead
CLOCK_OFFSETS = [-120.0, -2.0, 0.0, 2.0, 120.0]
MAX_RUNS_TO_FINISH = 40


@dataclass
class Change:
    # insert, modify, done, delete; late: an edit Toggl shows two requests later;
    # tick: Toggl's clock moves on 1.5 s
    kind: str
    task_index: int  # which existing task, modulo the number of tasks


# Deletions and edits of tasks early in the list are what shift rows under the pager.
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
    """One run of the chain: its script, whether it starts without state, its quota, its crash."""

    plan: list[Any]
    stateless: bool = False
    quota: int | None = None
    crash: float | None = None


runs = st.builds(
    Run,
    st.lists(steps, max_size=6),
    st.booleans(),
    st.none() | st.integers(2, 6),
    st.none() | st.floats(0, 1),
)


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


def sync(config: dict[str, Any], state: dict[str, Any] | None) -> tuple[list[dict[str, Any]], bool]:
    """One run of the tap in this process: its messages, and whether it finished."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    finished = True
    with contextlib.redirect_stdout(out):
        try:
            TapTogglTasks(config=config, state=state, parse_env_config=False).sync_all()
        except TogglError:
            finished = False
        out.flush()
    lines = out.buffer.getvalue().decode().splitlines()
    return [json.loads(line) for line in lines], finished


def last_state(messages: list[dict[str, Any]], fallback: dict[str, Any] | None) -> Any:
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1] if states else fallback


# Shapes random search rarely builds, always tried:
@example(  # 8.1: Toggl's clock 2 s behind; task 1 (page 1) edited, then task 15 (page 2)
    task_count=20,
    page_size=10,
    order="id",
    clock=-2.0,
    cap=None,
    chain=[Run([None, [Change("modify", 0), Change("tick", 0), Change("modify", 14)]])],
)
@example(  # Toggl's clock two minutes ahead, edits during the sync, ordered by `at`
    task_count=12,
    page_size=4,
    order="at",
    clock=120.0,
    cap=None,
    chain=[Run([None, [Change("modify", 1)], [Change("modify", 9)]])],
)
@example(  # a write Toggl shows late, below a bookmark a later write sets
    task_count=6,
    page_size=3,
    order="id",
    clock=0.0,
    cap=None,
    chain=[Run([]), Run([[Change("late", 2), Change("tick", 0), Change("modify", 4)]])],
)
@example(  # 8.2: sync; delete task 3; a minute later edit task 5; full refresh; two runs
    task_count=10,
    page_size=12,
    order="id",
    clock=0.0,
    cap=None,
    chain=[
        Run([]),
        Run([[Change("delete", 2)] + [Change("tick", 0)] * 40 + [Change("modify", 3)]]),
        Run([], stateless=True),
        Run([]),
    ],
)
@example(  # 8.3: quota 3, 10 tasks, 2 a page: the first sync finishes over several runs
    task_count=10,
    page_size=2,
    order="id",
    clock=0.0,
    cap=None,
    chain=[Run([], quota=3), Run([None, [Change("delete", 0)]], quota=3)],
)
@example(  # 8.4: Toggl caps pages at 3 while 10 are asked; changes during the sync
    task_count=20,
    page_size=10,
    order="id",
    clock=0.0,
    cap=3,
    chain=[Run([None, [Change("insert", 0)], [Change("delete", 1)]]), Run([])],
)
@example(  # two deletions before page 2's offset, when tasks leave the list (done, ordered by at)
    task_count=20,
    page_size=5,
    order="at",
    clock=0.0,
    cap=None,
    chain=[Run([[], [Change("done", 0), Change("done", 1)]], crash=0.5), Run([FATAL[0]])],
)
@example(  # a first sync stopped after one page (a 403), then a task it loaded is deleted
    task_count=10,
    page_size=4,
    order="id",
    clock=0.0,
    cap=None,
    chain=[Run([None, FATAL[0]]), Run([[Change("delete", 0)]])],
)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    task_count=st.integers(0, 30),
    page_size=st.integers(2, 12),
    order=st.sampled_from(["id", "at"]),
    clock=st.sampled_from(CLOCK_OFFSETS),
    cap=st.none() | st.integers(2, 12),
    chain=st.lists(runs, min_size=1, max_size=4),
)
def test_a_chain_of_runs_ends_with_the_warehouse_equal_to_the_server(  # noqa: PLR0917
    task_count: int, page_size: int, order: str, clock: float, cap: int | None, chain: list[Run]
) -> None:
    tasks = [make_task(i) for i in range(1, task_count + 1)]
    with TogglServer(
        tasks, order=order, clock_offset=timedelta(seconds=clock), max_per_page=cap
    ) as toggl:
        config = {
            "api_token": toggl.api_token,
            "api_url": toggl.url,
            "page_size": page_size,
            "max_quota_wait_seconds": 0,  # a run out of quota stops; the next one resumes
        }
        warehouse: list[dict[str, Any]] = []
        state: dict[str, Any] | None = None
        for run in [Run([], stateless=True), *chain]:
            toggl.script(*script_for(run.plan))
            toggl.quota_remaining = run.quota
            before = len(toggl.requests)
            messages, _ = sync(config, None if run.stateless else state)
            if run.crash is not None:
                messages = messages[: math.floor(run.crash * len(messages))]
            warehouse += messages
            state = last_state(messages, None if run.stateless else state)
            assert_within_request_bound(toggl, before, page_size, cap, len(run.plan))

        # Quiet runs (no faults, no changes, every write shown) until one finishes.
        toggl.script()
        toggl.show_late_writes()
        toggl.quota_remaining = None
        for _ in range(MAX_RUNS_TO_FINISH):
            before = len(toggl.requests)
            messages, done = sync(config, state)
            warehouse += messages
            state = last_state(messages, state)
            assert_within_request_bound(toggl, before, page_size, cap, 0)
            if done:
                break
        assert done
        # ...and one more: its changes may have come during the previous quiet run.
        messages, done = sync(config, state)
        assert done
        warehouse += messages
        truth = {task_id: as_emitted(task) for task_id, task in toggl.tasks.items()}

    records = [m["record"] for m in warehouse if m["type"] == "RECORD"]
    loaded = newest_by_id(records)
    # every task that exists is loaded as it is now; a deleted one is marked, or never loaded
    for task_id, expected in truth.items():
        if expected[3] is None:
            assert loaded.get(task_id) == expected
        else:
            assert loaded.get(task_id, expected) == expected


def assert_within_request_bound(
    server: TogglServer, before: int, page_size: int, cap: int | None, scripted: int
) -> None:
    """Pages of (Toggl's page size - 1) new tasks, one more to see or check the end, one for
    finding a cap, one per step back; one per scripted fault or change (a retry, or a shift the
    pager must step back from), and one refused for the quota."""
    made = len(server.requests) - before
    tasks = len(server.tasks)
    honoured = page_size if cap is None else min(page_size, cap)
    pages = math.ceil(max(tasks - 1, 0) / (honoured - 1)) + 2
    assert made <= pages + TasksPaginator.MAX_STEP_BACKS + scripted + 1
