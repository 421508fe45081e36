"""Helpers of the pipeline tests (tests/test_pipeline_*.py and the README walk), one job a module:

- `processes`: run a command bounded in time, and end it with every process it started.
- `plugins`: Meltano and the plugin virtualenvs, installed once into a cache the tests share.
- `project`: a copy of this Meltano project, as the repository ships it, in a test's folder.
- `meltano`: `meltano` run in such a copy, against a local Toggl server.
- `warehouse`: what the server's tasks must become, and reading DuckDB and PostgreSQL back.
- `postgres`: a private PostgreSQL server, its databases, and the `postgres` fixture.
- `changes`: what happens in Toggl between two runs, and the check that a run resumed.

What every test's processes inherit from the shell is decided in tests/environment.py.
"""
