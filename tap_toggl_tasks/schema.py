"""The records: a task with every field Toggl has sent on /me/tasks, and a listing.

Fields come and go between API versions, so everything but the keys is nullable, and a field
the API starts sending that is not listed here is dropped (with a log line), never a failure.
One column is the tap's, not Toggl's: `_sdc_table_version`, which with `tasks_listings` lets a
warehouse find the rows of deleted tasks even when its loader ignores ACTIVATE_VERSION.
"""

from __future__ import annotations

from singer_sdk import typing as th


def _timestamp(name: str, description: str, *, required: bool = False) -> th.Property[str]:
    return th.Property(name, th.DateTimeType, required=required, description=description)


TASK_SCHEMA = th.PropertiesList(
    th.Property("id", th.IntegerType, required=True, description="Task ID."),
    th.Property("name", th.StringType, description="Task name."),
    th.Property("active", th.BooleanType, description="False once the task has been done."),
    _timestamp(
        "at",
        "When the task was created or last modified, in UTC. The replication key.",
        required=True,
    ),
    _timestamp(
        "server_deleted_at",
        "When the task was deleted, in UTC; null for tasks that exist. Deleted tasks are only "
        "reported by incremental syncs.",
    ),
    th.Property("workspace_id", th.IntegerType, description="Workspace ID."),
    th.Property("project_id", th.IntegerType, description="Project ID."),
    th.Property("user_id", th.IntegerType, description="Assignee's user ID, if any."),
    th.Property("user_name", th.StringType, description="Assignee's name, if any."),
    th.Property("avatar_url", th.StringType, description="Assignee's avatar URL, if any."),
    th.Property("toggl_accounts_id", th.StringType, description="Assignee's Toggl account ID."),
    th.Property("client_id", th.IntegerType, description="Client ID of the task's project."),
    th.Property(
        "estimated_seconds",
        th.IntegerType,
        description="Estimated duration, in seconds.",
    ),
    th.Property(
        "tracked_seconds",
        th.IntegerType,
        description=(
            "Time tracked on the task, in MILLISECONDS despite the name (Toggl's own field note). "
            "Divide by 1000 for seconds."
        ),
    ),
    th.Property("rate", th.NumberType, description="Hourly rate for this task."),
    _timestamp("rate_last_updated", "When the rate last changed, in UTC."),
    th.Property("recurring", th.BooleanType, description="Whether the task is recurring."),
    th.Property(
        "permissions",
        th.ArrayType(th.StringType),
        description="The user's permissions on the task (older API versions sent one string).",
    ),
    th.Property("due_date", th.StringType, description="Due date, as Toggl sends it."),
    th.Property(
        "integration_provider",
        th.StringType,
        description="Provider of a linked external entity (asana, jira, salesforce).",
    ),
    th.Property("integration_ext_id", th.StringType, description="ID of the linked entity."),
    th.Property("integration_ext_type", th.StringType, description="Type of the linked entity."),
    th.Property("external_reference", th.StringType, description="External reference."),
    th.Property("project_name", th.StringType, description="Project name (meta field)."),
    th.Property("project_color", th.StringType, description="Project colour (meta field)."),
    th.Property(
        "project_billable",
        th.BooleanType,
        description="Whether the project is billable (meta field).",
    ),
    th.Property(
        "project_is_private",
        th.BooleanType,
        description="Whether the project is private.",
    ),
    th.Property("client_name", th.StringType, description="Client name (meta field)."),
    th.Property(
        "_sdc_table_version",
        th.IntegerType,
        description=(
            "Set by the tap: the table version of the sync that wrote the row. A row older than "
            "the newest tasks_listings.table_version was not in that listing: the task is deleted."
        ),
    ),
).to_dict()

# What Toggl sends; the rest of a record is the tap's.
TOGGL_FIELDS = tuple(name for name in TASK_SCHEMA["properties"] if not name.startswith("_sdc_"))

LISTING_SCHEMA = th.PropertiesList(
    th.Property(
        "table_version",
        th.IntegerType,
        required=True,
        description="The table version every live task was emitted with by this listing.",
    ),
    _timestamp("began_at", "When the listing began, by Toggl's clock (UTC).", required=True),
    th.Property("tasks_listed", th.IntegerType, description="Live tasks Toggl listed."),
).to_dict()

# The timestamps Toggl sends in mixed forms; `at` among them, normalised before bookmarking.
TIMESTAMP_FIELDS = ("at", "rate_last_updated", "server_deleted_at")
