"""`python -m tap_toggl_tasks`: the same as the `tap-toggl-tasks` command."""

from tap_toggl_tasks.tap import TapTogglTasks

TapTogglTasks.cli()
