"""Helpers of the tests, one job a module; no test lives here.

For the tap and the pure core:
- `tap_runs`: run `tap-toggl-tasks` as a process against the stand-in, and read what it wrote.
- `warm_taps`: those processes forked from one that imported the tap once (the SDK's import
  was most of the fast suite's time).
- `in_process`: the tap in the test's own process over HTTP, for runs by the hundred.
- `toggl_model`: a Toggl in memory that does whatever the docs allow, for the pure core's model.
- `warehouse_model`: what target-postgres and target-duckdb make of the tap's messages.
- `tap_signalled_after_record`: the tap, signalling itself right after its Nth record.
- `environment`: what every test's processes inherit from the shell (nothing of the user's).

For the pipelines:
- `processes`: run a command bounded in time, and end it with every process it started.
- `plugins`: Meltano and the plugin virtualenvs, installed once into a cache the tests share.
- `project`: a copy of this Meltano project, as the repository ships it, in a test's folder.
- `meltano`: `meltano` run in such a copy, against a local Toggl server.
- `warehouse`: what the server's tasks must become, and reading DuckDB and PostgreSQL back.
- `project_hours`: what the project_hours mart must hold.
- `postgres`: a private PostgreSQL server, its databases, and the `postgres` fixture.
- `changes`: what happens in Toggl between two runs, and the check that a run resumed.
- `faketime`: a process run days ahead of this machine's clock.
- `readme_walk`: the README's and docs' sh blocks, run section by section.

For scripts/test: `xdist_groups` (a slow module on one worker), `module_times` (its table).
"""
