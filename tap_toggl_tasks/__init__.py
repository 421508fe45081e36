"""tap-toggl-tasks: a Singer tap for the tasks of Toggl Track's GET /api/v9/me/tasks."""
