"""`meltano run tap-toggl-tasks target-duckdb`, for real: the README's main job."""

from __future__ import annotations

from pathlib import Path

import pytest

from tap_toggl_tasks.settings import DEFAULT_PAGE_SIZE
from tests.support.changes import requests_since, run_after_changes
from tests.support.meltano import API_TOKEN, meltano_project
from tests.support.plugins import install_plugins
from tests.support.warehouse import assert_warehouse_matches, awkward_tasks, duckdb_rows
from toggl_standin.demo_data import demo_tasks, make_task
from toggl_standin.server import TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
STATE_ID = "dev:tap-toggl-tasks-to-target-duckdb"


def test_every_task_lands_once_and_a_second_run_brings_only_the_changes(tmp_path: Path) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb")
    tasks = demo_tasks(1500) + awkward_tasks()
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)
        warehouse = meltano.warehouse

        meltano("run", "tap-toggl-tasks", "target-duckdb")

        assert_warehouse_matches(duckdb_rows(warehouse), toggl.tasks)
        first_run = requests_since(toggl, 0)
        assert {params.get("since") for params in first_run} == {None}  # a first sync: all
        # Pages until one brings nothing new (the empty one after the last task), then the
        # whole list in one answer without per_page: the evidence deletions are judged on.
        page = str(DEFAULT_PAGE_SIZE)
        offsets = [*range(0, len(tasks), DEFAULT_PAGE_SIZE), len(tasks)]
        assert [(params.get("per_page"), params.get("offset")) for params in first_run] == [
            *((page, str(offset)) for offset in offsets),
            (None, None),
        ]
        bookmark = meltano.bookmark(STATE_ID)

        run_after_changes(meltano, toggl, bookmark, "target-duckdb")

        assert_warehouse_matches(duckdb_rows(warehouse), toggl.tasks)
        assert meltano.bookmark(STATE_ID) > bookmark


def test_target_duckdb_stores_empty_strings_as_null(tmp_path: Path) -> None:
    """target-duckdb 0.8.0 stages rows as CSV, where "" and a missing value look alike (README,
    "The warehouse"). This pins that known loss: when a loader upgrade keeps "", this test fails,
    and the README's warning can go."""
    install_plugins("tap-toggl-tasks", "target-duckdb")
    tasks = [make_task(1, name="", integration_ext_id=""), make_task(2, name="kept")]
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)

        meltano("run", "tap-toggl-tasks", "target-duckdb")

    rows = {row["id"]: row for row in duckdb_rows(meltano.warehouse)}
    assert (rows[1]["name"], rows[1]["integration_ext_id"]) == (None, None)
    assert rows[2]["name"] == "kept"
