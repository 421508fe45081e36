"""Retries as users see them: how many attempts, how long each wait, one readable line per retry,
and a long wait that says every minute how long is left.

Waits are pinned through what the tap logs and what the server recorded, never by the wall
clock: a test server answers `Retry-After: 0` where the wait itself is not under test, and the
long waits run in this process on a fake clock, so an hour's wait takes no time.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_toggl_tasks.connection import unreachable
from tap_toggl_tasks.errors import (
    DEFAULT_API_URL,
    TogglError,
    TogglQuotaExhausted,
    TogglRetryableError,
)
from tap_toggl_tasks.retrying import SPEAK_EVERY, duration, retry_waits
from tap_toggl_tasks.streams import TasksStream
from tap_toggl_tasks.tap import TapTogglTasks
from tests.support.tap_runs import API_TOKEN, TapRun, about_json, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

NO_WAIT = {"Retry-After": "0"}


def log_lines(run: TapRun, level: str) -> list[str]:
    """The messages of one level, without the timestamp and logger columns."""
    return [line.split(" | ")[-1] for line in run.stderr.splitlines() if f"| {level} " in line]


def assert_readable(run: TapRun) -> None:
    """No object reprs, no traceback, and one ERROR at most: the last word."""
    assert "<bound method" not in run.stderr
    assert " object at 0x" not in run.stderr
    assert "Traceback" not in run.stderr
    assert "Backing off" not in run.stderr
    assert len(run.errors) <= 1, run.errors


def stopped_server_url() -> str:
    with TogglServer() as toggl:
        url = toggl.url
    return url  # noqa: RET504 - the server is stopped now: every connection is refused


def test_a_refused_connection_ends_after_one_quick_retry_naming_api_url(tmp_path: Path) -> None:
    url = stopped_server_url()
    host = url.split("/")[2]

    run = run_tap({"api_token": API_TOKEN, "api_url": url, "request_interval_seconds": 0}, tmp_path)

    assert run.returncode == 1
    assert log_lines(run, "WARNING") == [
        f"Cannot connect to {host} (connection refused). Attempt 1 of 2; waiting 1 s before the "
        "next."
    ]
    assert run.errors == [
        f"Cannot connect to {host}, the host of the api_url setting (connection refused; 2 "
        f"attempts). Check api_url (now {url}; Toggl's is https://api.track.toggl.com/api/v9) "
        "and that this machine reaches that host (network, proxy, firewall, DNS); then run again."
    ]
    assert_readable(run)


def test_an_unknown_host_ends_after_one_quick_retry_naming_api_url(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 6761): resolvers answer at once, offline machines too.
    url = "https://toggl.invalid/api/v9"

    run = run_tap({"api_token": API_TOKEN, "api_url": url, "request_interval_seconds": 0}, tmp_path)

    assert run.returncode == 1
    assert log_lines(run, "WARNING") == [
        "Cannot connect to toggl.invalid (unknown host). Attempt 1 of 2; waiting 1 s before the "
        "next."
    ]
    assert run.error.startswith(
        "Cannot connect to toggl.invalid, the host of the api_url setting (unknown host; 2 "
        f"attempts). Check api_url (now {url};"
    )
    assert_readable(run)


def test_server_errors_keep_five_attempts_each_on_one_line(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(*[Fault(status=503, headers=NO_WAIT)] * 5)

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 1
    assert len(server.requests) == 5
    ids = [request.request_id for request in server.requests]
    assert log_lines(run, "WARNING") == [
        f"Toggl had a server error (HTTP 503 Service Unavailable, request id {ids[n - 1]}: "
        f"Internal Server Error). Attempt {n} of 5; waiting 0 s before the next."
        for n in range(1, 5)
    ]
    assert run.errors == [
        f"Toggl had a server error (HTTP 503 Service Unavailable, request id {ids[4]}: Internal "
        "Server Error). Gave up after 5 attempts. Toggl or the network may be down: check "
        "https://status.toggl.com and run again later; check the api_url setting if it is not "
        "Toggl's. The state holds this sync's progress: the next run resumes, nothing lost."
    ]
    assert_readable(run)


def test_a_dropped_connection_backs_off_two_seconds_then_goes_on(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(Fault(drop=True))

    run = run_tap(config_for(server, request_interval_seconds=0), tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 25
    assert log_lines(run, "WARNING") == [
        "The connection to Toggl failed (RemoteDisconnected: Remote end closed connection "
        "without response). Attempt 1 of 5; waiting 2 s before the next."
    ]
    assert_readable(run)


def test_a_quota_answer_without_headers_waits_and_resumes(
    server: TogglServer, tmp_path: Path
) -> None:
    # Toggl's words about its limit, no X-Toggl-Quota-* headers: a quota answer, not a plan's.
    quota = Fault(status=402, body='"You have hit your hourly limit"', headers=NO_WAIT)
    server.script(None, quota)

    run = run_tap(config_for(server, page_size=10, request_interval_seconds=0), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in run.records) == list(range(1, 26))
    assert [r.params.get("offset") for r in server.requests] == ["0", "10", "10", "20", "25", None]
    assert "paid" not in run.stderr
    assert log_lines(run, "WARNING") == []
    request_id = server.requests[1].request_id
    assert (
        f"Toggl's hourly request quota is used up (HTTP 402 Payment Required, request id "
        f"{request_id}); it resets in 0 s. Attempt 1 of 5; waiting 1 s before the next."
    ) in log_lines(run, "INFO")


def test_a_quota_answer_without_a_reset_time_and_no_wait_allowed_stops(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(Fault(status=402, body='"Quota exceeded"'))

    run = run_tap(
        config_for(server, max_quota_wait_seconds=0, request_interval_seconds=0), tmp_path
    )

    assert run.returncode == 1
    assert len(server.requests) == 1
    assert run.errors == [
        "Toggl's hourly request quota for this user is used up (HTTP 402 Payment Required, "
        f"request id {server.requests[0].request_id}: Quota exceeded), and "
        "max_quota_wait_seconds is 0, so the tap does not wait for it. Run again within the "
        "hour: the state holds this sync's progress, so the next run resumes where this one "
        "stopped. Other tools using this Toggl user share the same quota."
    ]


def waits_for(errors: list[BaseException | None], *, max_quota_wait: float = 3600) -> list[float]:
    """The waits the tap chooses after these failures, in order; shorter when it gives up."""
    waits = retry_waits(max_quota_wait=max_quota_wait)
    next(waits)
    chosen = []
    for error in errors:
        try:
            chosen.append(waits.send(error))
        except StopIteration:
            break
    return chosen


def test_the_wait_schedule() -> None:
    server_error = TogglRetryableError("Toggl had a server error.")
    asked = TogglRetryableError("Throttled.", wait_seconds=7)
    quota_unknown = TogglQuotaExhausted("Quota used up; no reset time.")

    assert waits_for([server_error] * 4) == [2, 4, 8, 16]
    assert waits_for([asked, server_error, asked, server_error]) == [7, 2, 7, 4]
    # a quota answer without a reset time: 1, 4, 16 minutes, then the hour Toggl's window lasts
    assert waits_for([quota_unknown] * 4) == [60, 240, 960, 3600]
    assert waits_for([quota_unknown] * 3, max_quota_wait=100) == [60, 100, 100]


def test_the_wait_schedule_gives_up_on_a_second_refused_connection() -> None:
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(stopped_server_url(), timeout=5)

    assert waits_for([refused.value] * 3) == [1]


def test_requests_are_paced_one_interval_apart_retries_included(tmp_path: Path) -> None:
    arrivals: list[float] = []
    lock = threading.Lock()

    def stamp(_: TogglServer) -> None:
        with lock:
            arrivals.append(time.monotonic())

    tasks = [make_task(i) for i in range(1, 26)]
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        # page 1, page 2 refused once (503, no wait asked), page 2 again, page 3
        toggl.script(
            Fault(before=stamp),
            Fault(status=503, headers=NO_WAIT, before=stamp),
            Fault(before=stamp),
            Fault(before=stamp),
        )
        run = run_tap(config_for(toggl, page_size=10, request_interval_seconds=1), tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # The tap spaces the starts of its requests; what reaches the server may shift by the time
    # a connection takes, hence the margin. Only a lower bound: a busy machine may be slower.
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_pacing_is_a_setting_users_see() -> None:
    setting = about_json()["settings"]["properties"]["request_interval_seconds"]

    assert setting["default"] == 1
    assert setting["minimum"] == 0
    assert re.search(r"at most one request a second", setting["description"])


def test_an_unreachable_toggl_is_not_told_to_fix_its_own_address() -> None:
    """With api_url at its default, comparing it with Toggl's would say `now X; Toggl's is X`."""
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(stopped_server_url(), timeout=5)

    at_default = str(unreachable(refused.value, api_url=DEFAULT_API_URL, attempts=2))
    elsewhere = str(unreachable(refused.value, api_url="https://toggl.example.com", attempts=2))

    assert "Check api_url" not in at_default
    assert at_default.endswith(
        "(connection refused; 2 attempts). Check that this machine reaches that host (network, "
        "proxy, firewall, DNS); then run again."
    )
    assert (
        f"Check api_url (now https://toggl.example.com; Toggl's is {DEFAULT_API_URL})" in elsewhere
    )


@dataclass
class FakeClock:
    """The stream's clock and sleep: a sleep moves the clock on at once."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class InProcessRun:
    records: int
    error: str | None  # the TogglError the sync ended with
    log: list[tuple[str, str]]  # (level, message) of the tap's lines
    sleeps: list[float]


def sync_on_a_fake_clock(toggl: TogglServer, caplog: pytest.LogCaptureFixture) -> InProcessRun:
    """One sync in this process, its waits on a fake clock; pacing off, as in the other tests."""
    clock = FakeClock()
    config: dict[str, Any] = config_for(toggl, page_size=10, request_interval_seconds=0)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error = None
    with contextlib.redirect_stdout(out), caplog.at_level(logging.INFO):
        tap = TapTogglTasks(config=config, parse_env_config=False)
        stream = tap.streams["tasks"]
        assert isinstance(stream, TasksStream)
        stream.monotonic = clock.monotonic  # type: ignore[method-assign]
        stream.sleep = clock.sleep  # type: ignore[method-assign]
        try:
            tap.sync_all()
        except TogglError as stopped:
            error = str(stopped)
        out.flush()
    records = out.buffer.getvalue().decode().count('"type":"RECORD","stream":"tasks"')
    log = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("tap-")]
    return InProcessRun(records, error, log, clock.sleeps)


def test_a_long_retry_after_says_every_minute_how_long_is_left_and_when_it_is_over(
    server: TogglServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(None, Fault(status=503, headers={"Retry-After": "150"}))

    run = sync_on_a_fake_clock(server, caplog)

    assert run.error is None
    assert run.records == 25
    assert run.sleeps == [60, 60, 30]
    retry_line = next(n for n, (_, message) in enumerate(run.log) if "Attempt 1 of 5" in message)
    assert run.log[retry_line][0] == "WARNING"
    assert run.log[retry_line][1].endswith("Attempt 1 of 5; waiting 150 s before the next.")
    then = "then attempt 2 of 5."
    assert run.log[retry_line + 1 : retry_line + 4] == [
        (
            "INFO",
            f"Still waiting for the time Toggl asked for (Retry-After): 1 min 30 s left, {then}",
        ),
        ("INFO", f"Still waiting for the time Toggl asked for (Retry-After): 30 s left, {then}"),
        (
            "INFO",
            "Waited 2 min 30 s for the time Toggl asked for (Retry-After); now attempt 2 of 5.",
        ),
    ]
    # The failed request, retried as it was: no page skipped, none read twice.
    assert server.requests[1].params == server.requests[2].params
    assert [r.status for r in server.requests[1:3]] == [503, 200]


def test_an_hour_of_used_up_quota_is_never_an_hour_of_silence(
    server: TogglServer, caplog: pytest.LogCaptureFixture
) -> None:
    quota = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "3599"}
    server.script(None, Fault(status=402, body='"Quota exceeded"', headers=quota))

    run = sync_on_a_fake_clock(server, caplog)

    assert run.error is None
    assert run.records == 25
    assert run.sleeps == [SPEAK_EVERY] * 60
    said = [message for _, message in run.log]
    waiting = [message for message in said if message.startswith("Still waiting")]
    assert len(waiting) == 59  # after each minute but the last
    assert waiting[0] == (
        "Still waiting for Toggl's hourly request quota to reset: 59 min left, then attempt 2 of 5."
    )
    assert waiting[-1].startswith("Still waiting for Toggl's hourly request quota to reset: 1 min ")
    assert "Waited 60 min for Toggl's hourly request quota to reset; now attempt 2 of 5." in said
    assert all(level == "INFO" for level, message in run.log if "quota" in message)


def test_a_retry_after_longer_than_max_quota_wait_stops_instead_of_sleeping(
    server: TogglServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Fault(status=503, headers={"Retry-After": "86400"}))

    run = sync_on_a_fake_clock(server, caplog)

    assert run.sleeps == []
    assert len(server.requests) == 1
    assert run.error is not None
    assert re.fullmatch(
        r"Toggl had a server error \(HTTP 503 Service Unavailable, request id \w+: Internal "
        r"Server Error\)\. Toggl asked the tap to wait 86400 s before trying again "
        r"\(Retry-After\), longer than max_quota_wait_seconds \(3600\), so it stops instead\. "
        r"Run again after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: the state holds this sync's "
        r"progress, so the next run resumes where this one stopped\.",
        run.error,
    ), run.error


def test_a_short_backoff_says_nothing_more_than_its_retry_line(
    server: TogglServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Fault(status=503))  # no Retry-After: the first backoff, 2 s

    run = sync_on_a_fake_clock(server, caplog)

    assert run.records == 25
    assert run.sleeps == [2]
    assert not [m for _, m in run.log if m.startswith(("Still waiting", "Waited"))]


def test_a_wait_left_is_said_in_whole_seconds_and_minutes() -> None:
    assert [duration(s) for s in (0.5, 2.9999, 59.6, 60, 87.2, 3600)] == [
        "0.5 s",
        "3 s",
        "1 min",
        "1 min",
        "1 min 27 s",
        "60 min",
    ]
