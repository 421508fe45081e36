"""Print what scripts/demo loaded: counts, done vs active, and a few rows of toggl.tasks.

Usage: show_warehouse.py WAREHOUSE.duckdb RUN_STARTED (local time, ISO 8601)
"""

import sys
import unicodedata
from datetime import datetime
from pathlib import Path

import duckdb


def width(text: str) -> int:
    """Columns a terminal gives the text: East Asian wide characters (CJK, most emoji) take two,
    combining marks none. The loader's virtualenv has no wcwidth; Python's own Unicode tables
    give the same answer for task names."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def fit(text: str, columns: int) -> str:
    """The text cut to at most `columns` terminal columns, then padded to exactly that many."""
    kept = ""
    for char in text:
        if width(kept + char) > columns:
            break
        kept += char
    return kept + " " * (columns - width(kept))


def main(warehouse: str, started: str) -> None:
    with duckdb.connect(warehouse, read_only=True) as db:
        total, active, done, deleted, this_run = db.execute(
            """
            select count(*),
                   count(*) filter (where active and server_deleted_at is null),
                   count(*) filter (where not active and server_deleted_at is null),
                   count(*) filter (where server_deleted_at is not null),
                   -- target-duckdb stamps each row it writes with its local time.
                   count(*) filter (where _sdc_batched_at >= ?)
            from toggl.tasks
            """,
            [datetime.fromisoformat(started)],
        ).fetchone() or (0, 0, 0, 0, 0)
        rows = db.execute(
            """
            select id, name, active, project_name, round(tracked_seconds / 3600000, 1), "at"
            from toggl.tasks order by "at" desc limit 5
            """
        ).fetchall()
    path = Path(warehouse)
    where = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print(f"\nWarehouse: {where}, table toggl.tasks")
    print(f"  this run loaded {this_run} new or changed tasks")
    print(f"  it holds {total} tasks: {active} active, {done} done, {deleted} deleted in Toggl")
    print("  the five changed last:")
    print(f"    {'id':>6}  {'name':<40} {'state':<6} {'project':<22} {'hours':>6}  at (UTC)")
    for task_id, name, is_active, project, hours, at in rows:
        # Toggl may leave any field but id and at empty.
        state = {True: "active", False: "done", None: "-"}[is_active]
        cells = f"{fit(name or '-', 40)} {state:<6} {fit(project or '-', 22)}"
        print(f"    {task_id:>6}  {cells} {'-' if hours is None else hours:>6}  {at}")
    print("  query it with the DuckDB CLI or Python: see the README, The warehouse\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
