"""What the dbt mart `project_hours` must hold, summed in plain Python from the Toggl server's
tasks: the pipeline tests compare the warehouse with it, and the demo test the demo's table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from toggl_standin.demo_data import parse_at


def expected_project_hours(tasks: Mapping[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """project_hours as the server's tasks say it should be, by project id."""
    projects: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks.values():
        if task["server_deleted_at"] is None and task["project_id"] is not None:
            projects[task["project_id"]].append(task)
    expected = {}
    for project_id, project_tasks in projects.items():
        # The project is named as its most recently changed task says.
        newest = max(project_tasks, key=lambda task: (parse_at(task["at"]), task["id"]))
        done = sum(task["active"] is False for task in project_tasks)
        expected[project_id] = {
            "workspace_id": newest["workspace_id"],
            "project_name": newest["project_name"],
            "client_name": newest["client_name"],
            "open_tasks": len(project_tasks) - done,
            "done_tasks": done,
            "tasks": len(project_tasks),
            # tracked_seconds is milliseconds
            "hours_tracked": sum((t["tracked_seconds"] or 0) / 3_600_000 for t in project_tasks),
            "hours_estimated": sum((t["estimated_seconds"] or 0) / 3600 for t in project_tasks),
        }
    return expected
