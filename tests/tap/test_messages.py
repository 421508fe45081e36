"""What a user reads when something is off: one ERROR paragraph, a connection test that only
tests, and a warning for a setting the tap does not know."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tap_toggl_tasks.tap import TapTogglTasks
from tests.support.tap_runs import API_TOKEN, config_for, run_tap
from toggl_standin.server import Fault, TogglServer

SDK_UNHANDLED = "An unhandled error occurred"


def quiet_config(toggl: TogglServer, **overrides: Any) -> dict[str, Any]:
    """A working config without pacing, which tests/tap/test_retries.py pins."""
    return config_for(toggl, request_interval_seconds=0, **overrides)


@pytest.mark.parametrize(
    "fault",
    [Fault(status=403), Fault(status=400), Fault(status=404), Fault(body='{"not": "a list"}')],
    ids=["credentials", "bad-request", "wrong-url", "not-a-task-list"],
)
def test_a_handled_failure_is_one_error_paragraph(
    server: TogglServer, tmp_path: Path, fault: Fault
) -> None:
    server.script(fault)

    run = run_tap(quiet_config(server), tmp_path)

    assert run.returncode == 1
    assert len(run.errors) == 1, run.errors
    assert SDK_UNHANDLED not in run.stderr
    assert "Traceback" not in run.stderr
    assert server.requests[0].request_id in run.error


def test_bad_settings_are_one_error_paragraph_listing_each(tmp_path: Path) -> None:
    config = {"api_url": "http://toggl.example.com/api/v9", "page_size": 1}

    run = run_tap(config, tmp_path)

    assert run.returncode == 1
    assert run.stdout == ""
    assert run.errors == [
        "Config validation failed, so nothing was requested from Toggl: (1) 1 is less than the "
        "minimum of 2 in config['page_size']. (2) No credentials: set api_token (Toggl Track > "
        "Profile settings > API Token), or email and password: in the file given with --config, "
        "or as TAP_TOGGL_TASKS_API_TOKEN in the environment with --config ENV. (3) api_url "
        "'http://toggl.example.com/api/v9' must be an https:// URL such as "
        "https://api.track.toggl.com/api/v9 (plain http:// only for a server on this machine: "
        "localhost, 127.0.0.1, ::1), so that credentials never cross a network unencrypted. Fix "
        "them where they are set (the --config file, TAP_TOGGL_TASKS_<SETTING> variables with "
        "--config ENV, or `meltano config set tap-toggl-tasks <setting> <value>`); "
        "`tap-toggl-tasks --about` lists every setting."
    ]


def test_the_connection_test_makes_one_small_request_and_writes_no_messages(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(quiet_config(server), tmp_path, args=("--test",))

    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert '"status":"failed"' not in run.stderr
    assert run.errors == []
    assert [request.params for request in server.requests] == [{"per_page": "1"}]
    assert "Connection test passed: Toggl accepted the URL and the credentials." in run.stderr


def test_a_failed_connection_test_is_one_error_paragraph(tmp_path: Path) -> None:
    with TogglServer(api_token="the-real-token") as toggl:
        run = run_tap(quiet_config(toggl, api_token=API_TOKEN), tmp_path, args=("--test",))

    assert run.returncode == 1
    assert run.stdout == ""
    assert len(toggl.requests) == 1
    assert run.errors == [
        "Connection test failed. Toggl refused the credentials (HTTP 403 Forbidden, request id "
        f"{toggl.requests[0].request_id}: Incorrect username and/or password). Check the "
        "api_token setting (Toggl Track > Profile settings > API Token), or email and password, "
        "and that this user still belongs to a workspace; then run again."
    ]


def test_a_connection_test_with_bad_settings_requests_nothing(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(quiet_config(server, api_token=None), tmp_path, args=("--test",))

    assert run.returncode == 1
    assert run.stdout == ""
    assert server.requests == []
    assert len(run.errors) == 1
    assert run.error.startswith("Config validation failed, so nothing was requested")
    assert run.error.endswith("The connection was not tested.")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("key", "warning"),
    [
        ("api_tokn", "Unknown setting api_tokn: did you mean api_token?"),
        ("pagesize", "Unknown setting pagesize: did you mean page_size?"),
        (
            "request_interval",
            "Unknown setting request_interval: did you mean request_interval_seconds?",
        ),
        (
            "colour",
            "Unknown setting colour: the tap ignores it (`tap-toggl-tasks --about` lists the "
            "settings).",
        ),
    ],
)
def test_an_unknown_setting_is_named_with_the_nearest_known_one(
    caplog: pytest.LogCaptureFixture, key: str, warning: str
) -> None:
    config = {"api_token": API_TOKEN, key: "x"}

    TapTogglTasks(config=config, parse_env_config=False)

    assert warnings_of(caplog) == [warning]


def test_the_settings_meltano_and_the_sdk_pass_are_known(caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "api_token": API_TOKEN,
        "stream_maps": {"tasks": {"tracked_seconds": "tracked_seconds // 1000"}},
        "stream_map_config": {},
        "faker_config": {"seed": 1},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "batch_config": {
            "encoding": {"format": "jsonl"},
            "storage": {"root": "file://."},
            "batch_size": 1000,  # a whole number of pages, as the tap requires
        },
    }

    TapTogglTasks(config=config, parse_env_config=False)

    assert warnings_of(caplog) == []


def test_a_misspelt_credential_warns_before_the_error(tmp_path: Path) -> None:
    run = run_tap({"api_tokn": API_TOKEN}, tmp_path)

    assert run.returncode == 1
    assert "WARNING" in run.stderr
    assert "Unknown setting api_tokn: did you mean api_token?" in run.stderr
    assert run.error.startswith("Config validation failed, so nothing was requested from Toggl: ")
    assert "No credentials: set api_token" in run.error


def test_a_normal_sync_ends_without_misleading_sdk_lines(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(quiet_config(server), tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(server.requests) == 3  # the page, the empty page after it, the whole list
    assert "Pagination stopped after" not in run.stderr  # the SDK's "after 1 pages"
    assert "| WARNING " not in run.stderr
    assert run.errors == []
