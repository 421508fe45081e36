"""The fast path emits exactly what the SDK's plain path emits.

The tap conforms records itself (tap_toggl_tasks/conformance.py) and flushes stdout less often
than the SDK's msgspec writer. A variant of the tap that uses the SDK's own conformance and
writer reads the same pages; the bytes both write must be equal, but for times of the run.
"""

from __future__ import annotations

import contextlib
import decimal
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_toggl_tasks.conformance import FlatConformer
from tap_toggl_tasks.listings import ListingsStream
from tap_toggl_tasks.schema import TASK_SCHEMA
from tap_toggl_tasks.streams import TasksStream
from tap_toggl_tasks.tap import TapTogglTasks
from tap_toggl_tasks.values import Task
from toggl_standin.demo_data import demo_tasks, make_task
from toggl_standin.server import Fault, TogglServer

# Moments of the run itself: when each record was read, and when the sync began (in the state).
RUN_TIMES = re.compile(
    rb'"(?:time_extracted|began|began_at|replication_key_value)":"[^"]*"'
    rb'|"(?:table_|_sdc_table_)?version":[0-9]+'
)


class SDKConformedTasksStream(TasksStream):
    """The tasks stream with the SDK's own conformance instead of the tap's."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE

    @override
    def conform(self, row: Task) -> Task:
        return row


class PlainTap(TapTogglTasks):
    """The tap as the SDK alone would run it: its conformance, its msgspec writer."""

    # The tap's writer is a MsgSpecWriter subclass: going back to the base is the point here.
    message_writer_class = MsgSpecWriter  # type: ignore[assignment]

    @override
    def discover_streams(self) -> list[Stream]:
        tasks = SDKConformedTasksStream(self)
        return [tasks, ListingsStream(self, tasks)]


def emitted(tap_class: type[TapTogglTasks], config: dict[str, Any]) -> bytes:
    """Everything one in-process sync writes to stdout, the moments of the run taken out."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        tap_class(config=config, parse_env_config=False).sync_all()
        out.flush()
    return RUN_TIMES.sub(b"", out.buffer.getvalue())


def past_task(task_id: int, **fields: Any) -> dict[str, Any]:
    # In the past, so that the bookmark is the newest `at`, not the sync's start time.
    return make_task(
        task_id, **{"at": f"2024-06-{task_id % 28 + 1:02d}T10:00:00.123456Z", **fields}
    )


def edge_tasks() -> list[dict[str, Any]]:
    """Tasks in every shape the plain path might treat differently from the fast one."""
    all_null = {
        name: None for name in TASK_SCHEMA["properties"] if name not in TASK_SCHEMA["required"]
    }
    return [
        past_task(9001, **all_null),
        past_task(9002, name='Ærøskøbing — 東京 🚀 "quoted" \\ back\nslash', permissions=[]),
        past_task(9003, at="2024-12-16T03:38:02+02:00", rate_last_updated="2024-01-02T03:04:05"),
        past_task(9004, at="2024-12-16T01:38:02Z", server_deleted_at="2024-12-17T00:00:00.5Z"),
        past_task(9005, rate="RATE_MANY_DIGITS", permissions="owner"),
        past_task(9006, rate="RATE_EXPONENT", permissions=["edit", "view"]),
        past_task(9007, rate=85, estimated_seconds=0, tracked_seconds=0),
        past_task(9008, color_hint="x", nested_unknown={"a": [1, 2]}),
        # Values the SDK's conformance does change, or walks into: the fast path hands these on.
        past_task(9009, active=1, recurring=0, project_billable="yes"),
        past_task(9010, permissions=["owner", 7, None], due_date=["2025-01-01"]),
        past_task(9011, name={"nested": True}, project_is_private=[]),
        past_task(9012, user_id=True, client_id=False),
    ]


def edge_page() -> bytes:
    """The edge tasks as Toggl would send them, with numbers no Python float can hold."""
    body = json.dumps(edge_tasks(), ensure_ascii=False)
    body = body.replace('"RATE_MANY_DIGITS"', "123456789.123456789012345")
    return body.replace('"RATE_EXPONENT"', "1.5E-7").encode()


@pytest.fixture
def toggl() -> Iterator[TogglServer]:
    with TogglServer(demo_tasks(600, seed=11) + edge_tasks()) as server:
        yield server


@pytest.mark.parametrize("page_size", [1000, 97])
def test_fast_path_emits_what_the_sdk_path_emits(toggl: TogglServer, page_size: int) -> None:
    config = {
        "api_token": toggl.api_token,
        "api_url": toggl.url,
        "page_size": page_size,
        "request_interval_seconds": 0,
    }

    fast = emitted(TapTogglTasks, config)
    plain = emitted(PlainTap, config)

    # a first sync reads without `since`: Toggl lists no deleted task then (9004 is one)
    assert fast.count(b'"type":"RECORD","stream":"tasks"') == len(toggl.tasks) - 1
    assert fast == plain


def test_exact_numbers_and_odd_values_come_out_the_same() -> None:
    with TogglServer() as toggl:
        config = {"api_token": toggl.api_token, "api_url": toggl.url, "request_interval_seconds": 0}
        toggl.script(Fault(body=edge_page()))
        fast = emitted(TapTogglTasks, config)
        toggl.script(Fault(body=edge_page()))
        plain = emitted(PlainTap, config)

    assert b'"rate":123456789.123456789012345' in fast
    assert fast.count(b'"type":"RECORD","stream":"tasks"') == len(edge_tasks())
    assert fast == plain


FIELDS = list(TASK_SCHEMA["properties"])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.decimals(allow_nan=False, places=3),
    st.sampled_from([decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), float("inf"), 0.5]),
    st.lists(st.text(max_size=3), max_size=3),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    known=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=12),
    unknown=st.dictionaries(st.sampled_from(["color_hint", "new_field", "x"]), VALUES, max_size=2),
)
def test_flat_conformance_equals_the_sdks(known: dict[str, Any], unknown: dict[str, Any]) -> None:
    conformer = FlatConformer("tasks", TASK_SCHEMA, TapTogglTasks.logger)
    record = {**known, **unknown}

    fast = conformer.conform(dict(record))
    plain = conformer.sdk_conform(dict(record))

    # repr: NaN is not equal to itself, and True == 1 would hide a bool turned into an int.
    assert repr(fast) == repr(plain)
