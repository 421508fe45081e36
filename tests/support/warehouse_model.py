"""What a warehouse makes of the tap's messages: the oracle of many tests.

The tasks table is upserted by id. `Warehouse(activate_version=True)` loads as
meltanolabs-target-postgres: each RECORD replaces the row of its id and stamps it with the
message's table version; ACTIVATE_VERSION marks deleted (`_sdc_deleted_at`) the rows of older
versions, and of none: `marked_deleted` is what the table itself then says. With
`activate_version=False` it loads as target-duckdb 0.8.0, which ignores ACTIVATE_VERSION, and
`marked_deleted` is what stg_tasks shows on top: `server_deleted_at`, or a row older
(`_sdc_table_version`) than the newest `tasks_listings` row. Each rule is checked alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from toggl_standin.demo_data import parse_at


def as_emitted(task: dict[str, Any]) -> tuple[Any, ...]:
    """What must match between Toggl and the warehouse, timestamps compared as instants."""
    deleted = task.get("server_deleted_at")
    return (
        task.get("name"),
        task.get("active"),
        parse_at(task["at"]),
        None if deleted is None else parse_at(deleted),
    )


@dataclass
class Warehouse:
    activate_version: bool = True
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    versions: dict[int, int | None] = field(default_factory=dict)
    soft_deleted: set[int] = field(default_factory=set)
    listings: list[int] = field(default_factory=list)  # tasks_listings' table versions

    def load(self, messages: Iterable[dict[str, Any]]) -> Warehouse:
        for message in messages:
            if message["type"] == "RECORD" and message["stream"] == "tasks_listings":
                self.listings.append(message["record"]["table_version"])
            elif message["type"] == "RECORD":
                task_id = message["record"]["id"]
                self.rows[task_id] = message["record"]
                self.versions[task_id] = message.get("version")
                self.soft_deleted.discard(task_id)
            elif message["type"] == "ACTIVATE_VERSION" and self.activate_version:
                new = message["version"]
                self.soft_deleted |= {
                    task_id
                    for task_id, version in self.versions.items()
                    if version is None or version < new
                }
        return self

    def marked_deleted(self, task_id: int) -> bool:
        row = self.rows.get(task_id)
        if row is None:
            return False
        unlisted = (
            not self.activate_version
            and bool(self.listings)
            and (row["_sdc_table_version"] or 0) < max(self.listings)
        )
        return task_id in self.soft_deleted or row.get("server_deleted_at") is not None or unlisted


def newest_by_id(records: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """The warehouse after upserting the records in order: the last version of each id wins."""
    return {record["id"]: as_emitted(record) for record in records}
