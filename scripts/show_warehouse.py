"""Print what scripts/demo loaded: counts, done vs active, and a few rows of toggl.tasks.

Usage: show_warehouse.py WAREHOUSE.duckdb RUN_STARTED (local time, ISO 8601)
"""

import sys
from datetime import datetime
from pathlib import Path

import duckdb
from terminal_columns import fit


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
    print("  query it with the DuckDB CLI or Python: see docs/warehouses-and-meltano.md\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
