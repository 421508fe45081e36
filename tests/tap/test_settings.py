"""Bad settings fail before any request, naming the setting and what is allowed.

The checks run in-process (constructing the tap is where they happen); the exit code and the
one ERROR paragraph a user reads are pinned by a run of the command in tests/tap/test_messages.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_toggl_tasks.settings import config_failure, settings_errors
from tap_toggl_tasks.tap import TapTogglTasks
from tests.support.tap_runs import API_TOKEN, EMAIL, PASSWORD, config_for, run_tap
from toggl_standin.server import TogglServer


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"api_token": None}, "No credentials: set api_token"),
        ({"email": EMAIL, "password": PASSWORD}, "either api_token, or email and password"),
        ({"api_token": None, "email": EMAIL}, "email and password go together"),
        ({"api_token": None, "password": PASSWORD}, "email and password go together"),
        ({"api_url": "http://toggl.example.com/api/v9"}, "must be an https:// URL"),
        ({"api_url": "api.track.toggl.com"}, "must be an https:// URL"),
        ({"page_size": 1}, "1 is less than the minimum of 2 in config['page_size']"),
        ({"page_size": 10001}, "10001 is greater than the maximum of 10000 in config['page_size']"),
        ({"page_size": "many"}, "'many' is not of type 'integer'"),
        ({"start_date": "last tuesday"}, "start_date 'last tuesday' is not a date"),
        ({"include_not_active": "yes"}, "'yes' is not of type 'boolean'"),
        ({"request_timeout": 0}, "in config['request_timeout']"),
        ({"max_quota_wait_seconds": -1}, "in config['max_quota_wait_seconds']"),
        (
            {"request_interval_seconds": -1},
            "-1 is less than the minimum of 0 in config['request_interval_seconds']",
        ),
    ],
)
def test_bad_settings_fail_before_any_request(
    server: TogglServer, overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigValidationError) as refused:
        TapTogglTasks(config=config_for(server, **overrides), parse_env_config=False)

    assert expected in str(refused.value)
    assert str(refused.value).startswith("Config validation failed, so nothing was requested")
    assert server.requests == []


def test_one_bad_setting_is_told_to_fix_it_and_several_to_fix_them() -> None:
    one = config_failure(["No credentials."])
    several = config_failure(["No credentials.", "1 is less than the minimum of 2"])

    assert one == (
        "Config validation failed, so nothing was requested from Toggl: No credentials. Fix it "
        "where it is set (the --config file, TAP_TOGGL_TASKS_<SETTING> variables with --config "
        "ENV, or `meltano config set tap-toggl-tasks <setting> <value>`); `tap-toggl-tasks "
        "--about` lists every setting."
    )
    assert several.startswith(
        "Config validation failed, so nothing was requested from Toggl: (1) No credentials. "
        "(2) 1 is less than the minimum of 2. Fix them where they are set (the --config file, "
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    with TogglServer([], api_token=API_TOKEN) as toggl:
        url = toggl.url.replace("127.0.0.1", host)
        config = {"api_token": API_TOKEN, "api_url": url, "request_interval_seconds": 0}
        run = run_tap(config, tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(toggl.requests) == 2  # an empty page, and the whole list, empty too


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.track.toggl.com/api/v9", True),
        ("http://[::1]:8080/api/v9", True),
        ("http://127.5.0.1/api/v9", True),
        ("http://10.0.0.5/api/v9", False),
        ("ftp://127.0.0.1/api/v9", False),
        ("https:///api/v9", False),
    ],
)
def test_which_api_urls_are_accepted(url: str, allowed: bool) -> None:
    errors = settings_errors({"api_token": API_TOKEN, "api_url": url})

    assert (errors == []) is allowed


def test_settings_come_from_the_environment_too(server: TogglServer, tmp_path: Path) -> None:
    env = {
        "TAP_TOGGL_TASKS_API_TOKEN": API_TOKEN,
        "TAP_TOGGL_TASKS_API_URL": server.url,
        "TAP_TOGGL_TASKS_PAGE_SIZE": "7",
        "TAP_TOGGL_TASKS_REQUEST_INTERVAL_SECONDS": "0",
    }
    (tmp_path / "empty").mkdir()

    run = run_tap({}, tmp_path / "empty", args=("--config", "ENV"), env=env)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 25
    assert server.requests[0].params["per_page"] == "7"


def test_discovery_needs_no_credentials(tmp_path: Path) -> None:
    run = run_tap({}, tmp_path, args=("--discover",))

    assert run.returncode == 0, run.stderr
    catalog = json.loads(run.stdout)
    assert [stream["tap_stream_id"] for stream in catalog["streams"]] == ["tasks", "tasks_listings"]
