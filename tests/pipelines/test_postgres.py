"""Into PostgreSQL with target-postgres, and Meltano's state kept in PostgreSQL too.

The tests start a PostgreSQL server of their own (the `postgres` fixture) and always stop it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.changes import run_after_changes
from tests.support.meltano import API_TOKEN, Meltano, meltano_env, meltano_project
from tests.support.plugins import install_plugins
from tests.support.postgres import (
    create_database,
    postgres_fixture,  # noqa: F401 - the `postgres` fixture
    sqlalchemy_url,
)
from tests.support.project import make_project
from tests.support.warehouse import assert_warehouse_matches, awkward_tasks, postgres_rows
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
STATE_ID = "dev:tap-toggl-tasks-to-target-postgres"


def test_every_task_lands_once_in_postgres_and_changes_update_it(
    postgres: str, tmp_path: Path
) -> None:
    install_plugins("tap-toggl-tasks", "target-postgres")
    warehouse = create_database(postgres, "warehouse_updates")
    with TogglServer(demo_tasks(300) + awkward_tasks(), api_token=API_TOKEN) as toggl:
        meltano = meltano_project(
            tmp_path, toggl, TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(warehouse)
        )

        meltano("run", "tap-toggl-tasks", "target-postgres")

        assert_warehouse_matches(postgres_rows(warehouse), toggl.tasks)
        bookmark = meltano.bookmark(STATE_ID)

        run_after_changes(meltano, toggl, bookmark, "target-postgres")

        assert_warehouse_matches(postgres_rows(warehouse), toggl.tasks)


def test_state_in_postgres_carries_over_to_another_machine(postgres: str, tmp_path: Path) -> None:
    """Two machines (or Airflow workers) that share MELTANO_DATABASE_URI share the bookmark."""
    install_plugins("tap-toggl-tasks", "target-postgres")
    warehouse = create_database(postgres, "warehouse_shared_state")
    system_db = sqlalchemy_url(create_database(postgres, "meltano_system"))
    with TogglServer(demo_tasks(200), api_token=API_TOKEN) as toggl:
        shared = {
            "MELTANO_DATABASE_URI": system_db,
            "TARGET_POSTGRES_SQLALCHEMY_URL": sqlalchemy_url(warehouse),
        }
        machine_a = meltano_project(tmp_path / "a", toggl, **shared)
        # Machine B has nothing of A's: its own copy of the project and .meltano folder, plugins
        # installed afresh.
        machine_b_dir = tmp_path / "b" / ".meltano"
        machine_b = Meltano(
            meltano_env(toggl, MELTANO_SYS_DIR_ROOT=str(machine_b_dir), **shared),
            cwd=make_project(tmp_path / "b" / "project"),
        )

        machine_a("run", "tap-toggl-tasks", "target-postgres")
        bookmark = machine_a.bookmark(STATE_ID)
        machine_b("install", "tap-toggl-tasks", "target-postgres")
        assert machine_b.bookmark(STATE_ID) == bookmark
        # machine B resumes from machine A's bookmark
        run_after_changes(machine_b, toggl, bookmark, "target-postgres")

        assert_warehouse_matches(postgres_rows(warehouse), toggl.tasks)
        assert not (machine_b_dir / "meltano.db").exists(), "B kept its state in SQLite"
        # And back: A sees the bookmark B moved.
        assert machine_a.bookmark(STATE_ID) == machine_b.bookmark(STATE_ID) > bookmark
