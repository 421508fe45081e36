"""No setting of the user's shell or checkout reaches what the tests run.

A developer who followed the README has a `.env` with a token in the checkout, tokens and URLs
exported, and meltano.yml edited by the README's recipes. The README walk runs this module (and
one pipeline) in its clone after the walk, with a wrong token in that `.env` and another exported:
that is where these tests prove the point; in a plain checkout they guard the mechanism.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import meltano
from tests.support.environment import clean_environ
from tests.support.project import ROOT, make_project, shipped_project
from tests.support.tap_runs import API_TOKEN, config_for, run_tap
from toggl_standin.server import TogglServer

# What a user may have exported: settings that would send a test elsewhere.
USERS_EXPORTS = {
    "TAP_TOGGL_TASKS_API_TOKEN": "wrong-token-exported",
    "TAP_TOGGL_TASKS_API_URL": "http://127.0.0.1:9/api/v9",
    "TAP_TOGGL_TASKS__ACME_API_TOKEN": "wrong-acme-token",
    "TARGET_DUCKDB_FILEPATH": "/nonexistent/warehouse.duckdb",
    "MELTANO_DATABASE_URI": "sqlite:////nonexistent/meltano.db",
    "MELTANO_ENVIRONMENT": "prod",
    "DBT_PROFILES_DIR": "/nonexistent",
    "AIRFLOW_HOME": "/nonexistent/airflow",
    "TOGGL_ACCOUNTS_FILE": "/nonexistent/accounts.yml",
    "LOGLEVEL": "CRITICAL",
    "VIRTUAL_ENV": "/nonexistent/venv",
}


@pytest.fixture
def users_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in USERS_EXPORTS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("users_shell")
def test_a_tests_process_inherits_none_of_the_users_settings() -> None:
    inherited = clean_environ(EXTRA="kept")

    assert set(USERS_EXPORTS).isdisjoint(inherited)
    assert inherited["EXTRA"] == "kept"
    assert "PATH" in inherited


@pytest.mark.usefixtures("users_shell")
def test_a_sync_reads_its_config_file_not_the_users_exports(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(record["id"] for record in run.records) == sorted(server.tasks)


@pytest.mark.usefixtures("users_shell")
def test_settings_from_the_environment_are_the_tests_not_a_users_dotenv(
    server: TogglServer, tmp_path: Path
) -> None:
    """The SDK lets a `.env` it finds override the environment under `--config ENV`; the user's
    (here, one in a folder above the run's) is never the one it finds."""
    (tmp_path / ".env").write_text("TAP_TOGGL_TASKS_API_TOKEN=wrong-token-in-dotenv\n")
    (tmp_path / "run").mkdir()
    env = {"TAP_TOGGL_TASKS_API_TOKEN": API_TOKEN, "TAP_TOGGL_TASKS_API_URL": server.url}

    run = run_tap({}, tmp_path / "run", args=("--config", "ENV"), env=env)

    assert run.returncode == 0, run.stderr
    assert sorted(record["id"] for record in run.records) == sorted(server.tasks)


@pytest.mark.usefixtures("users_shell")
def test_a_meltano_project_copy_has_the_shipped_project_and_the_tests_settings_only(
    server: TogglServer, tmp_path: Path
) -> None:
    env = meltano.meltano_env(server, TARGET_DUCKDB_FILEPATH="set-by-the-test")
    copy = make_project(tmp_path / "project")

    assert not (copy / ".env").exists(), "the checkout's .env reached the copy"
    assert env["TAP_TOGGL_TASKS_API_TOKEN"] == meltano.API_TOKEN
    assert env["TAP_TOGGL_TASKS_API_URL"] == server.url
    assert env["TARGET_DUCKDB_FILEPATH"] == "set-by-the-test"
    assert not {"MELTANO_DATABASE_URI", "MELTANO_ENVIRONMENT", "AIRFLOW_HOME"} & set(env)
    # The README's recipes (an extractor or loader per account, a stream map) are left out.
    plugins = shipped_project()["plugins"]
    assert not [p["name"] for kind in plugins.values() for p in kind if "inherit_from" in p]
    assert all("stream_maps" not in (p.get("config") or {}) for p in plugins["extractors"])
    [tap] = [p for p in plugins["extractors"] if p["name"] == "tap-toggl-tasks"]
    assert tap["pip_url"] == f"-e {ROOT}"
