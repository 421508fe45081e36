"""The Airflow DAG reads a Meltano project as Meltano does: schedules from the files its
`include_paths` name, and each schedule's own `env:` (Airflow's real DagBag, in its virtualenv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.environment import clean_environ
from tests.support.plugins import install_plugins
from tests.support.processes import run
from tests.support.project import AIRFLOW_PYTHON, ROOT

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
LOAD_DAG_FOLDER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": {str(path): str(error) for path, error in bag.import_errors.items()},
    "tasks": {
        dag_id: [[task.bash_command, task.env, task.append_env] for task in dag.tasks]
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def test_schedules_of_included_files_become_dags_with_their_env(tmp_path: Path) -> None:
    install_plugins("airflow")
    project = tmp_path / "project"
    (project / "schedules").mkdir(parents=True)
    (project / "meltano.yml").write_text(
        "include_paths: ['./schedules/*.yml']\n"
        "schedules:\n"
        "  - {name: nightly, interval: '0 5 * * *', job: toggl-to-duckdb}\n",
        encoding="utf-8",
    )
    (project / "schedules" / "teams.yml").write_text(
        "schedules:\n"
        "  - name: hourly-acme\n"
        "    interval: '@hourly'\n"
        "    job: toggl-to-postgres\n"
        "    env: {TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA: acme, RETRIES: 3}\n",
        encoding="utf-8",
    )
    env = clean_environ(MELTANO_PROJECT_ROOT=str(project), AIRFLOW_HOME=str(tmp_path / "airflow"))
    done = run(
        [
            str(AIRFLOW_PYTHON),
            "-c",
            LOAD_DAG_FOLDER,
            str(ROOT / "orchestrate" / "dags" / "meltano_schedules.py"),
        ],
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])

    assert loaded["import_errors"] == {}
    assert loaded["tasks"] == {
        "meltano_nightly": [["meltano run toggl-to-duckdb", None, True]],
        "meltano_hourly-acme": [
            [
                "meltano run toggl-to-postgres",
                {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "acme", "RETRIES": "3"},
                True,
            ]
        ],
    }
