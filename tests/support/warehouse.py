"""What a server's tasks must become in a warehouse (the loader's table, the project_hours mart),
and the warehouses read back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.schema import TIMESTAMP_FIELDS, TOGGL_FIELDS
from tests.support.project_hours import expected_project_hours
from toggl_standin.demo_data import make_task, parse_at

TASK_FIELDS = TOGGL_FIELDS
MART_COUNTS = ("open_tasks", "done_tasks", "tasks")
MART_HOURS = ("hours_tracked", "hours_estimated")


def awkward_tasks() -> list[dict[str, Any]]:
    """Tasks that loaders get wrong: quotes, unicode, line breaks, nulls, offsets, huge numbers."""
    nullable = [name for name in TASK_FIELDS if name not in ("id", "at")]
    return [
        make_task(9001, name="She said \"ship it\", then 'wait' \\ back,slash;semi|pipe"),
        make_task(9002, name="Ünïcödé · 日本語 · 🚀 · עברית · \u00a0nbsp", permissions=[]),
        make_task(9003, name="line one\nline two\r\nline three"),
        make_task(9004, **dict.fromkeys(nullable)),
        make_task(
            9005,
            at="2024-12-16T02:38:02.034497+01:00",
            rate_last_updated="2024-12-16T01:38:02Z",
            permissions=["edit", "view"],
        ),
        # 2**53 + 1: survives only if no stage turns integers into floats.
        make_task(9006, tracked_seconds=9_007_199_254_740_993, estimated_seconds=0, rate=0.1),
    ]


def expected_row(task: Mapping[str, Any]) -> dict[str, Any]:
    """The row a server task should become: timestamps as instants, permissions as a list."""
    row: dict[str, Any] = {name: task.get(name) for name in TASK_FIELDS}
    for name in TIMESTAMP_FIELDS:
        if row[name] is not None:
            row[name] = parse_at(row[name])
    if isinstance(row["permissions"], str):
        row["permissions"] = [row["permissions"]]
    return row


def _comparable(value: Any) -> Any:
    # Warehouses hand back timestamps without a zone (stored as UTC) and numerics as Decimal.
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_warehouse_matches(
    rows: list[dict[str, Any]], tasks: Mapping[int, dict[str, Any]]
) -> None:
    """Every server task is in the warehouse exactly once, with every field equal."""
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "a task landed more than once"
    assert sorted(ids) == sorted(tasks), "the warehouse and the server hold different tasks"
    assert set(TASK_FIELDS) <= set(rows[0]), "the warehouse lacks columns"
    for row in rows:
        landed = {name: _comparable(row[name]) for name in TASK_FIELDS}
        if isinstance(landed["permissions"], str):
            landed["permissions"] = json.loads(landed["permissions"])  # DuckDB's JSON type
        assert landed == expected_row(tasks[row["id"]]), f"task {row['id']} differs"


def duckdb_rows(path: Path, sql: str = "select * from toggl.tasks") -> list[dict[str, Any]]:
    """The rows of a query on a DuckDB file (by default the tasks table), as dicts."""
    import duckdb  # noqa: PLC0415 - only the pipeline tests need it

    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(sql)
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def postgres_rows(url: str, sql: str = "select * from toggl.tasks") -> list[dict[str, Any]]:
    """The rows of a query on a PostgreSQL database (by default the tasks table), as dicts."""
    import psycopg  # noqa: PLC0415 - only the pipeline tests need it
    from psycopg.rows import dict_row  # noqa: PLC0415

    with psycopg.connect(url, row_factory=dict_row) as db:
        return db.execute(sql).fetchall()


def assert_mart_matches(rows: list[dict[str, Any]], tasks: Mapping[int, dict[str, Any]]) -> None:
    """project_hours' rows are what the server's tasks sum to (deleted tasks left out)."""
    expected = expected_project_hours(tasks)
    landed = {row["project_id"]: row for row in rows}
    assert len(landed) == len(rows), "a project has more than one row"
    assert sorted(landed) == sorted(expected), "the mart and the server know different projects"
    for project_id, want in expected.items():
        row = landed[project_id]
        for name in ("workspace_id", "project_name", "client_name", *MART_COUNTS):
            assert row[name] == want[name], f"project {project_id}: {name} differs"
        for name in MART_HOURS:
            assert float(row[name]) == pytest.approx(want[name], rel=1e-9), (
                f"project {project_id}: {name} differs"
            )
