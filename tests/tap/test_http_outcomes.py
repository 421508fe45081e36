"""Each way Toggl can answer: what the tap does, what the user reads, and what it costs.

Pacing (request_interval_seconds) is off: tests/tap/test_retries.py pins it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tap_runs import API_TOKEN, config_for, run_tap
from toggl_standin.server import Fault, TogglServer

QUOTA_HEADERS = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "1"}


def request_id_of(server: TogglServer, number: int) -> str:
    return server.requests[number - 1].request_id


def gap_before(server: TogglServer, request: int) -> float:
    """Seconds between the server's request number `request` (from 1) and the one before it."""
    return server.requests[request - 1].arrived - server.requests[request - 2].arrived


def assert_nothing_bookmarked(states: list[dict[str, object]]) -> None:
    for state in states:
        assert "replication_key_value" not in str(state)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_at_once(tmp_path: Path, status: int) -> None:
    with TogglServer() as toggl:
        toggl.script(Fault(status=status))
        run = run_tap(config_for(toggl, request_interval_seconds=0, api_token=API_TOKEN), tmp_path)

    assert run.returncode == 1
    assert len(toggl.requests) == 1
    assert f"HTTP {status}" in run.error
    assert "Check the api_token setting" in run.error
    assert request_id_of(toggl, 1) in run.error
    assert "Traceback" not in run.stderr


def test_a_wrong_token_is_refused_by_the_server(tmp_path: Path) -> None:
    with TogglServer(api_token="the-real-token") as toggl:
        run = run_tap(config_for(toggl, request_interval_seconds=0, api_token=API_TOKEN), tmp_path)

    assert run.returncode == 1
    assert "HTTP 403" in run.error
    assert "Incorrect username and/or password" in run.error


def test_bad_request_shows_toggls_own_words(server: TogglServer, tmp_path: Path) -> None:
    server.script(Fault(status=400, body='"Invalid include_not_active"'))

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 1
    assert len(server.requests) == 1
    assert "HTTP 400" in run.error
    assert "Invalid include_not_active" in run.error
    assert '"Invalid' not in run.error  # the JSON string literal is decoded
    assert request_id_of(server, 1) in run.error


def test_an_exhausted_quota_is_waited_for_then_the_sync_goes_on(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(None, Fault(status=402, headers=QUOTA_HEADERS, body='"Quota exceeded"'))

    run = run_tap(config_for(server, request_interval_seconds=0, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    assert gap_before(server, 3) >= 2  # waited the announced second, plus one
    assert sorted(r["id"] for r in run.records) == list(range(1, 26))
    # page 1 is not fetched again: the refused page 2 is retried, then page 3
    assert [r.params.get("offset") for r in server.requests] == ["0", "10", "10", "20", "25", None]
    assert "it resets in 1 s. Attempt 1 of 5; waiting 2 s before the next." in run.stderr


def test_a_quota_resetting_too_late_stops_and_says_when(
    server: TogglServer, tmp_path: Path
) -> None:
    headers = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "2400"}
    server.script(Fault(status=402, headers=headers))

    run = run_tap(
        config_for(server, request_interval_seconds=0, max_quota_wait_seconds=600), tmp_path
    )

    assert run.returncode == 1
    assert len(server.requests) == 1
    assert "resets in 2400 s" in run.error
    assert "max_quota_wait_seconds (600)" in run.error
    assert request_id_of(server, 1) in run.error


def test_the_server_quota_is_honoured_end_to_end(tmp_path: Path) -> None:
    with TogglServer([], quota=0) as toggl:
        toggl.quota_resets_in = 5000
        run = run_tap(
            config_for(toggl, request_interval_seconds=0, api_token=toggl.api_token), tmp_path
        )

    assert run.returncode == 1
    assert "quota for this user is used up" in run.error


def test_402_without_quota_headers_means_a_paid_plan_is_needed(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(Fault(status=402, body='"Payment required"'))

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 1
    assert len(server.requests) == 1
    assert "paid Toggl Track feature" in run.error


def test_throttling_honours_retry_after(server: TogglServer, tmp_path: Path) -> None:
    server.script(Fault(status=429, headers={"Retry-After": "2"}))

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 0, run.stderr
    assert gap_before(server, 2) >= 2
    # the page, again, the empty page after it, then the answer without per_page
    assert len(server.requests) == 4
    assert len(run.records) == 25


def test_throttling_without_retry_after_backs_off(server: TogglServer, tmp_path: Path) -> None:
    server.script(Fault(status=429))  # the proxy's HTML page, no Retry-After

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 0, run.stderr
    assert gap_before(server, 2) >= 2  # the first back-off step
    assert len(run.records) == 25


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(status=503, body="<html>Service Unavailable</html>"),
        Fault(drop=True),
        Fault(truncate=True),
        Fault(body='[{"id": 1, "at": '),  # a 200 whose JSON ends half-way
    ],
    ids=["500", "503-html", "dropped-connection", "truncated-body", "garbled-json"],
)
def test_a_passing_failure_is_retried_and_nothing_is_lost(
    server: TogglServer, tmp_path: Path, fault: Fault
) -> None:
    server.fault_at(2, fault)

    run = run_tap(config_for(server, request_interval_seconds=0, page_size=10), tmp_path)

    assert run.returncode == 0, run.stderr
    # only the failed page is asked again, never the pages already done
    assert [r.params.get("offset") for r in server.requests] == ["0", "10", "10", "20", "25", None]
    assert sorted(r["id"] for r in run.records) == list(range(1, 26))


def test_a_slow_response_times_out_and_is_retried(server: TogglServer, tmp_path: Path) -> None:
    server.script(Fault(delay=3))

    run = run_tap(config_for(server, request_interval_seconds=0, request_timeout=1), tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(server.requests) >= 2
    assert len(run.records) == 25


def test_an_outage_ends_after_bounded_retries_with_a_clear_error(
    server: TogglServer, tmp_path: Path
) -> None:
    outage = Fault(status=503, headers={"Retry-After": "0"})
    server.script(*[outage] * 10)

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 1
    assert len(server.requests) == 5
    assert "Gave up after 5 attempts" in run.error
    assert "HTTP 503" in run.error
    assert request_id_of(server, 5) in run.error
    assert_nothing_bookmarked(run.states)


def test_secrets_stay_out_of_debug_logs_and_errors(server: TogglServer, tmp_path: Path) -> None:
    server.script(Fault(status=500, headers={"Retry-After": "0"}), Fault(status=403))

    # run_tap itself fails the test if the token or password reach stdout or stderr
    run = run_tap(
        config_for(server, request_interval_seconds=0),
        tmp_path,
        env={"TAP_TOGGL_TASKS_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"},
    )

    assert run.returncode == 1
    assert "Authorization" not in run.stderr
