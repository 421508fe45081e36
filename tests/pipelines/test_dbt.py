"""The jobs toggl-to-duckdb and toggl-to-postgres: load, then dbt builds and tests the models.

The `project_hours` mart is checked against sums this test computes from the server's own tasks,
on both warehouses, before and after tasks are deleted and done in Toggl.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.meltano import API_TOKEN, meltano_project
from tests.support.plugins import install_plugins
from tests.support.postgres import (
    create_database,
    postgres_fixture,  # noqa: F401 - the `postgres` fixture
    sqlalchemy_url,
)
from tests.support.project import shipped_project
from tests.support.warehouse import assert_mart_matches, duckdb_rows, postgres_rows
from toggl_standin.demo_data import demo_tasks, make_task
from toggl_standin.server import TogglServer

SELECT_MART = "select * from toggl_analytics.project_hours"
# The module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = pytest.mark.xdist_group(__name__)


def pinned_duckdb(pip_url: str) -> str:
    return next(spec for spec in pip_url.split() if spec.startswith("duckdb=="))


def test_dbt_writes_the_warehouse_with_the_loaders_duckdb() -> None:
    """A DuckDB file written by a newer DuckDB may not open in an older one: the loader and dbt
    share the file, so they must pin the same version."""
    plugins = yaml_plugins()
    assert pinned_duckdb(plugins["dbt-duckdb"]) == pinned_duckdb(plugins["target-duckdb"])


def yaml_plugins() -> dict[str, str]:
    """pip_url of every plugin in meltano.yml as the repository ships it."""
    return {
        plugin["name"]: plugin["pip_url"]
        for plugins in shipped_project()["plugins"].values()
        for plugin in plugins
    }


def postgres_execute(url: str, sql: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url) as db:
        db.execute(sql)


def open_task_in_project(toggl: TogglServer, *, not_in: int | None = None) -> dict[str, Any]:
    return next(
        task
        for _, task in sorted(toggl.tasks.items())
        if task["active"] and task["server_deleted_at"] is None and task["project_id"] != not_in
    )


def delete_one_finish_another(toggl: TogglServer, mart: list[dict[str, Any]]) -> dict[int, int]:
    """In Toggl: an open task deleted, an open task of another project done, a project renamed.
    Returns the open counts the mart must show next, for the two projects touched."""
    deleted = open_task_in_project(toggl)
    finished = open_task_in_project(toggl, not_in=deleted["project_id"])
    toggl.delete(deleted["id"])
    toggl.mark_done(finished["id"])
    toggl.modify(finished["id"], project_name="Renamed project ✓")
    open_before = {row["project_id"]: row["open_tasks"] for row in mart}
    return {
        deleted["project_id"]: open_before[deleted["project_id"]] - 1,
        finished["project_id"]: open_before[finished["project_id"]] - 1,
    }


def assert_open_counts(rows: list[dict[str, Any]], open_tasks: Mapping[int, int]) -> None:
    landed = {row["project_id"]: row["open_tasks"] for row in rows}
    assert {project: landed[project] for project in open_tasks} == open_tasks


@pytest.mark.slow
def test_toggl_to_duckdb_builds_project_hours_equal_to_the_servers_tasks(tmp_path: Path) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb", "dbt-duckdb")
    with TogglServer(demo_tasks(400), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)
        warehouse = meltano.warehouse

        meltano("run", "toggl-to-duckdb")

        first = duckdb_rows(warehouse, SELECT_MART)
        assert_mart_matches(first, toggl.tasks)
        open_next = delete_one_finish_another(toggl, first)

        meltano("run", "toggl-to-duckdb")

        second = duckdb_rows(warehouse, SELECT_MART)
        assert_mart_matches(second, toggl.tasks)
        assert_open_counts(second, open_next)
        assert "Renamed project ✓" in {row["project_name"] for row in second}


@pytest.mark.slow
def test_toggl_to_postgres_builds_project_hours_equal_to_the_servers_tasks(
    postgres: str, tmp_path: Path
) -> None:
    install_plugins("tap-toggl-tasks", "target-postgres", "dbt-postgres")
    warehouse = create_database(postgres, "warehouse_dbt")
    with TogglServer(demo_tasks(300), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(
            tmp_path,
            toggl,
            TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(warehouse),
        )

        meltano("run", "toggl-to-postgres")

        first = postgres_rows(warehouse, SELECT_MART)
        assert_mart_matches(first, toggl.tasks)
        postgres_execute(warehouse, "create table first_load as select * from toggl.tasks")
        open_next = delete_one_finish_another(toggl, first)

        meltano("run", "toggl-to-postgres")

        second = postgres_rows(warehouse, SELECT_MART)
        assert_mart_matches(second, toggl.tasks)
        assert_open_counts(second, open_next)

        # What an append-only loader leaves: every version of a task, the old ones too.
        postgres_execute(warehouse, "alter table toggl.tasks drop constraint tasks_pkey")
        postgres_execute(warehouse, "insert into toggl.tasks select * from first_load")
        meltano("invoke", "dbt-postgres:build")

        assert_mart_matches(postgres_rows(warehouse, SELECT_MART), toggl.tasks)


@pytest.mark.slow
def test_a_failing_dbt_test_fails_the_job(tmp_path: Path) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb", "dbt-duckdb")
    tasks = [*demo_tasks(20), make_task(9001, tracked_seconds=-3_600_000)]
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        # meltano.run, not meltano(...), which fails the test when the job fails.
        meltano = meltano_project(tmp_path, toggl)
        done = meltano.run("run", "toggl-to-duckdb")

    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "FAIL 1 non_negative_stg_tasks_hours_tracked" in output, output[-3000:]
    assert "SKIP relation toggl_analytics.project_hours" in output, output[-3000:]
