"""One Airflow DAG per job schedule in meltano.yml; each runs `meltano run <job>`.

Airflow finds this folder through AIRFLOW__CORE__DAGS_FOLDER, which the `airflow` utility in
meltano.yml sets. The workers need `meltano` on their PATH (or MELTANO_EXECUTABLE set) and the
settings the job needs (e.g. TAP_TOGGL_TASKS_API_TOKEN), which the task inherits from Airflow's
environment.

What Meltano itself would honour, the DAGs honour too: schedules in the files that meltano.yml's
`include_paths` name, a schedule's own `env:` (set for its task), and the Meltano environment:
MELTANO_ENVIRONMENT in Airflow's environment, else meltano.yml's `default_environment`. Meltano
schedules are not per environment, so an Airflow deployment serves one Meltano environment: set
MELTANO_ENVIRONMENT=prod on the production workers, staging on the staging ones.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
MELTANO = os.environ.get("MELTANO_EXECUTABLE", "meltano")


def job_schedules(project_root: Path) -> list[dict[str, Any]]:
    """The schedules of meltano.yml, and of the files its include_paths name, that run a job.

    Read straight from the file rather than with `meltano schedule list`: Airflow re-parses DAG
    files every few seconds, and starting Meltano each time would cost over a second a parse.
    """
    project = yaml.safe_load((project_root / "meltano.yml").read_text(encoding="utf-8"))
    included = [
        path
        for pattern in project.get("include_paths") or []
        for path in sorted(project_root.glob(pattern))
    ]
    files = [
        project,
        *(yaml.safe_load(path.read_text(encoding="utf-8")) or {} for path in included),
    ]
    return [s for file in files for s in file.get("schedules") or [] if s.get("job")]


# Meltano's interval presets that Airflow spells differently; cron and the rest are the same.
_AIRFLOW_PRESETS: dict[str | None, str | None] = {
    None: None,
    "@manual": None,
    "@none": None,
    "@midnight": "@daily",
    "@annually": "@yearly",
}


def airflow_schedule(interval: str | None) -> str | None:
    """Meltano's interval in Airflow's terms; None means only when triggered."""
    return _AIRFLOW_PRESETS.get(interval, interval)


def trial_run(argv: list[str]) -> bool:
    """Whether this process is `airflow dags test`, a person's trial run, watching it end.

    It parses this file and runs the task in itself (without --use-executor), so what is set
    here is what it does: a retry would keep it polling "up_for_retry" for the whole
    retry_delay after the tap has already said what is wrong.
    """
    return argv[1:3] == ["dags", "test"]


# A scheduled run gets one more try after 15 minutes (Toggl or the network back by then);
# a trial run fails at once, with the tap's message.
RETRIES = (
    {"retries": 0} if trial_run(sys.argv) else {"retries": 1, "retry_delay": timedelta(minutes=15)}
)


for schedule in job_schedules(PROJECT_ROOT):
    with DAG(
        dag_id=f"meltano_{schedule['name']}",
        description=f"meltano run {schedule['job']}",
        schedule=airflow_schedule(schedule.get("interval")),
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        # The bookmark makes each run catch up on everything since the last: no backfill needed.
        catchup=False,
        # Two runs at once would both start from the same bookmark and fetch the same tasks.
        max_active_runs=1,
        # Airflow pauses new DAGs by default: a schedule added to meltano.yml would never run.
        is_paused_upon_creation=False,
        default_args=RETRIES,
        tags=["meltano"],
    ):
        BashOperator(
            task_id=schedule["job"].replace("-", "_"),
            bash_command=f"{shlex.quote(MELTANO)} run {shlex.quote(schedule['job'])}",
            cwd=str(PROJECT_ROOT),
            # The schedule's `env:` on top of Airflow's environment, as `meltano schedule run` does.
            env={name: str(value) for name, value in (schedule.get("env") or {}).items()} or None,
            append_env=True,
        )
