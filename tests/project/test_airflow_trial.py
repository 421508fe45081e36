"""scripts/airflow_trial.py: what it repeats at the end of a failed trial run's log.

The lines are Airflow 3.3's and Meltano 4.4's, as tests/pipelines/test_airflow.py and
tests/pipelines/test_many_accounts.py print them; those tests run the script for real.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.support.project import ROOT


def load_script() -> ModuleType:
    path = ROOT / "scripts" / "airflow_trial.py"
    spec = importlib.util.spec_from_file_location("airflow_trial", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRIAL = load_script()
TS = "2026-12-02T12:31:43.733169Z"
HOOK = (
    "[airflow.task.hooks.airflow.providers.standard.hooks.subprocess.SubprocessHook]"
    " loc=subprocess.py:106"
)
REFUSED = (
    "Toggl refused the credentials (HTTP 403 Forbidden, request id abc: Incorrect username "
    "and/or password). Check the api_token setting; then run again."
)


def relayed(level: str, plugin: str, message: str, suffix: str = HOOK) -> str:
    """A line `meltano run` printed, as the Airflow task relays it."""
    return f"{TS} [info     ] {TS} [{level:<9}] {plugin:<12} {message} {suffix}"


def traceback(exception: str) -> list[str]:
    return [
        f"{TS} [error    ] Task failed with exception     [task] loc=task_runner.py:1651",
        "Traceback (most recent call last):",
        '  File "/venv/airflow/sdk/execution_time/task_runner.py", line 1579, in _run',
        "    result = _execute_task(context=context, ti=ti, log=log)",
        exception,
        f"{TS} [info     ] ::group::Post Execute          [task] loc=task_runner.py:1652",
    ]


def test_a_failed_bash_task_ends_with_the_plugins_error_not_airflows() -> None:
    log = [
        relayed("info", "tap-toggl-tasks", "Beginning sync of 'tasks' in incremental mode"),
        relayed("error", "tap-toggl-tasks", REFUSED),
        relayed("error", "meltano", "Extractor failed"),
        relayed("error", "meltano", "Block run completed"),
        *traceback(
            "airflow.sdk.exceptions.AirflowException: Bash command failed. The command returned"
            " a non-zero exit code 1."
        ),
        f"{TS} [info     ] meltano      DagRun failed",
    ]

    assert TRIAL.what_went_wrong(log) == [f"tap-toggl-tasks: {REFUSED}"]


def test_an_account_that_failed_is_named_once() -> None:
    log = [
        relayed("error", "tap-toggl-tasks", REFUSED, "[toggl_accounts] loc=toggl_accounts.py:219"),
        *traceback(f"RuntimeError: Account initech: tap-toggl-tasks: {REFUSED}"),
        *traceback("toggl_accounts.AccountsError: Account acme: no Toggl API token: set it."),
    ]

    assert TRIAL.what_went_wrong(log) == [
        f"Account initech: tap-toggl-tasks: {REFUSED}",
        "Account acme: no Toggl API token: set it.",
    ]


def test_an_unexpected_exception_keeps_its_name_and_a_bare_bash_failure_is_shown() -> None:
    log = [
        *traceback("KeyError: 'schedules'"),
        *traceback("airflow.sdk.exceptions.AirflowException: Bash command failed. Exit code 2."),
    ]

    assert TRIAL.what_went_wrong(log) == [
        "KeyError: 'schedules'",
        "AirflowException: Bash command failed. Exit code 2.",
    ]


def test_a_log_without_errors_has_nothing_to_repeat() -> None:
    log = [relayed("info", "tap-toggl-tasks", "Beginning sync"), f"{TS} [error    ] no plugin"]

    assert TRIAL.what_went_wrong(log) == []
