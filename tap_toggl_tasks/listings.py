"""The `tasks_listings` stream: the listing a complete pass of `tasks` left, if any."""

from __future__ import annotations

from collections.abc import Iterable

from singer_sdk import Stream, Tap
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_toggl_tasks.schema import LISTING_SCHEMA
from tap_toggl_tasks.streams import TasksStream
from tap_toggl_tasks.values import Task


class ListingsStream(Stream):
    """One record per pass that listed every live task, after the tasks it emitted.

    ACTIVATE_VERSION made durable, for loaders that ignore that message (target-duckdb): a
    task row whose `_sdc_table_version` is older than the newest listing's was not listed,
    so the task is deleted (transform/models/staging/stg_tasks.sql applies this).
    """

    name = "tasks_listings"
    primary_keys = ("table_version",)
    schema = LISTING_SCHEMA

    def __init__(self, tap: Tap, tasks: TasksStream) -> None:
        super().__init__(tap)
        self.tasks = tasks

    @override
    def get_records(self, context: Context | None) -> Iterable[Task]:
        if self.tasks.listing is not None:
            yield self.tasks.listing
