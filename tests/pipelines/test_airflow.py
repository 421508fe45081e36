"""Airflow 3 runs the Meltano schedules: the DAG folder imports cleanly and really loads rows."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.meltano import API_TOKEN, Meltano, meltano_project
from tests.support.plugins import install_plugins
from tests.support.processes import run
from tests.support.project import AIRFLOW_PYTHON, ROOT
from tests.support.warehouse import assert_warehouse_matches, awkward_tasks, duckdb_rows
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
# The docs' trial command: `meltano invoke airflow dags test <dag>`, ending with what failed.
TRIAL = ROOT / "scripts" / "airflow_trial.py"
# Runs inside Airflow's own virtualenv: what Airflow's DAG processor makes of the folder.
LOAD_DAG_FOLDER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": {str(path): str(error) for path, error in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "schedule": dag.schedule,
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "paused_at_creation": dag.is_paused_upon_creation,
            "commands": [task.bash_command for task in dag.tasks],
            "cwd": [task.cwd for task in dag.tasks],
            "retries": [task.retries for task in dag.tasks],
        }
        for dag_id, dag in bag.dags.items()
        if dag_id.startswith("meltano_")  # toggl_accounts has a test of its own
    },
}))
"""


@pytest.fixture(scope="module")
def airflow_installed() -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb", "dbt-duckdb", "airflow")


@pytest.mark.usefixtures("airflow_installed")
def test_dag_folder_imports_and_has_a_dag_per_meltano_schedule(tmp_path: Path) -> None:
    with TogglServer(api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl)
        schedules = json.loads(meltano("schedule", "list", "--format=json"))["schedules"]["job"]
    done = run(
        [str(AIRFLOW_PYTHON), "-c", LOAD_DAG_FOLDER, str(meltano.cwd / "orchestrate" / "dags")],
        timeout=300,
        env={**meltano.env, "AIRFLOW_HOME": str(tmp_path / "airflow")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])

    assert loaded["import_errors"] == {}
    assert schedules, "meltano.yml has no job schedule for Airflow to run"
    assert loaded["dags"] == {
        f"meltano_{schedule['name']}": {
            "schedule": schedule["cron_interval"],
            "catchup": False,
            "max_active_runs": 1,
            # Airflow pauses new DAGs unless told: a schedule added to meltano.yml must run.
            "paused_at_creation": False,
            "commands": [f"meltano run {schedule['job']['name']}"],
            "cwd": [str(meltano.cwd)],
            # what the scheduler parses: a failed run gets one more try (after 15 minutes)
            "retries": [1],
        }
        for schedule in schedules
    }


def daily_trial(meltano: Meltano) -> subprocess.CompletedProcess[str]:
    """The README's trial run of the daily DAG. The bound fails a run that retries (it would
    poll for its 15-minute delay); stderr joins stdout, as a terminal shows the two."""
    return run(
        [str(TRIAL), "meltano_daily-toggl-to-duckdb"],
        cwd=meltano.cwd,
        env=meltano.env,
        timeout=600,
        stderr_into_stdout=True,
    )


@pytest.mark.usefixtures("airflow_installed")
def test_airflow_dags_test_runs_the_scheduled_job_into_duckdb(tmp_path: Path) -> None:
    tasks = demo_tasks(400, unknown_field=False) + awkward_tasks()
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        meltano = meltano_project(tmp_path, toggl, AIRFLOW_HOME=str(tmp_path / "airflow"))
        meltano("invoke", "airflow:migrate")

        # As the docs show it: without a date, the run is "now".
        done = daily_trial(meltano)

        assert done.returncode == 0, done.stdout[-6000:]
        assert "state=success" in done.stdout
        # Nothing but Meltano's first-run notice warns on a run that succeeds: the tap has
        # nothing to say, and the script leaves out Airflow's graphviz and deprecation notices.
        warnings = re.findall(r".*\[warning\s*\].*", done.stdout)
        assert [w for w in warnings if "No state was found" not in w] == [], warnings
        assert "The trial run of" not in done.stdout  # the summary is for failed runs
        assert API_TOKEN not in done.stdout
        assert_warehouse_matches(duckdb_rows(meltano.warehouse), toggl.tasks)
        assert meltano.state("dev:tap-toggl-tasks-to-target-duckdb")["singer_state"]["bookmarks"]


@pytest.mark.usefixtures("airflow_installed")
def test_a_failing_trial_run_ends_at_once_with_the_taps_message(tmp_path: Path) -> None:
    with TogglServer(demo_tasks(10), api_token="the-real-token") as toggl:
        meltano = meltano_project(tmp_path, toggl, AIRFLOW_HOME=str(tmp_path / "airflow"))
        meltano("invoke", "airflow:migrate")

        done = daily_trial(meltano)

    output = done.stdout
    assert done.returncode != 0
    assert len(toggl.requests) == 1  # one try: no retry by Airflow, none by the tap
    assert "up_for_retry" not in output, output[-3000:]
    assert API_TOKEN not in output
    # The whole log stays: the task's traceback and Airflow's verdict come before the summary.
    assert "Bash command failed" in output
    assert "DagRun failed" in output
    # What the user reads last: a heading, then the tap's ERROR paragraph, the request id in it.
    heading, message = [line for line in output.splitlines() if line.strip()][-2:]
    assert heading == "The trial run of meltano_daily-toggl-to-duckdb failed; what went wrong:"
    assert message.startswith(
        "tap-toggl-tasks: Toggl refused the credentials (HTTP 403 Forbidden, request id "
        f"{toggl.requests[0].request_id}: Incorrect username and/or password). Check the api_token"
    ), output[-3000:]
    assert message.endswith("then run again.")
