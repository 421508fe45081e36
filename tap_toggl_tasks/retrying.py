"""How the tasks stream retries and paces its requests, and what it says while it does.

- At most one request per `request_interval_seconds` (Toggl asks for one a second per token);
  a retry is a request too.
- Up to MAX_ATTEMPTS attempts, waiting what Toggl asked (quota reset, Retry-After), else 2, 4,
  8, 16 s; a quota answer without a reset time waits 1, 4, 16, 64 minutes (each at most
  max_quota_wait_seconds): together they outlast Toggl's hourly window. Toggl never makes the
  tap wait longer than max_quota_wait_seconds: a longer reset or Retry-After stops the sync
  (errors.py), and the next run resumes.
- A host that refuses the connection or does not exist gets one quick retry, then the sync
  ends naming the api_url setting: that is a wrong address far more often than an outage.
- Each retry is one log line: what failed, attempt n of MAX_ATTEMPTS, the wait. A wait longer
  than a minute says every minute what it waits for and how long is left, and a quota or
  Retry-After wait says when it is over: under Meltano or Airflow, an hour's silence looks hung.
  The last failure becomes one TogglGaveUp paragraph, which the tap logs as its one ERROR.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from typing_extensions import override

from tap_toggl_tasks.connection import failure, gave_up, unreachable, unreachable_reason
from tap_toggl_tasks.errors import TogglQuotaExhausted

MAX_ATTEMPTS = 5
UNREACHABLE_ATTEMPTS = 2  # for a host that refuses connections or does not exist
BACKOFF_FIRST_WAIT = 2.0  # seconds; doubles on each retry: 2, 4, 8, 16
UNREACHABLE_RETRY_WAIT = 1.0  # one quick retry, for a blip of the network or of DNS
UNKNOWN_QUOTA_FIRST_WAIT = 60.0  # seconds; grows fourfold: 60, 240, 960, 3840
SPEAK_EVERY = 60.0  # seconds: the longest a wait stays silent
# What the SDK's own request_decorator retries (singer_sdk/streams/rest.py), kept equal.
RETRIED: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class TogglRetries(RESTStream[Any]):
    """The SDK's request hook, set for Toggl: its own waits first (quota reset, Retry-After)."""

    _last_request_started: float | None = None

    def monotonic(self) -> float:
        """The clock waits and pacing are measured on (tests replace it, with `sleep`)."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @override
    def request_decorator(self, func: Callable[..., requests.Response]) -> Callable[..., Any]:
        # Not the SDK's decorator (backoff.on_exception): backoff sleeps a wait out in one
        # silent call, and logs every retry again (with the request function's repr) and an
        # ERROR on giving up, before the tap's own paragraph. No jitter: Toggl's waits are exact.
        @functools.wraps(func)
        def request_with_retries(*args: Any, **kwargs: Any) -> requests.Response:
            waits = retry_waits(max_quota_wait=float(self.config["max_quota_wait_seconds"]))
            next(waits)
            attempt = 1
            while True:
                self._pace()
                try:
                    return func(*args, **kwargs)
                except RETRIED as exc:
                    attempts = UNREACHABLE_ATTEMPTS if unreachable_reason(exc) else MAX_ATTEMPTS
                    wait = next_wait(waits, exc) if attempt < attempts else None
                    if wait is None and unreachable_reason(exc) is not None:
                        api_url = str(self.config["api_url"])
                        raise unreachable(exc, api_url=api_url, attempts=attempt) from exc
                    if wait is None:
                        raise gave_up(exc, attempt) from exc
                    self._wait_to_retry(exc, wait, attempt=attempt, attempts=attempts)
                    attempt += 1

        return request_with_retries

    def _wait_to_retry(
        self, error: BaseException, wait: float, *, attempt: int, attempts: int
    ) -> None:
        """Say why and how long, wait (speaking every minute of a long wait), say it is over."""
        # A quota wait is the plan working, so it is INFO, not a WARNING.
        level = logging.INFO if isinstance(error, TogglQuotaExhausted) else logging.WARNING
        self.logger.log(
            level,
            "%s Attempt %d of %d; waiting %s s before the next.",
            failure(error),
            attempt,
            attempts,
            seconds(wait),
        )
        waiting_for = what_it_waits_for(error)
        then = f"attempt {attempt + 1} of {attempts}"
        ends = self.monotonic() + wait
        while (left := ends - self.monotonic()) > 0:
            self.sleep(min(left, SPEAK_EVERY))
            left = ends - self.monotonic()
            if left > 0:
                self.logger.info(
                    "Still waiting for %s: %s left, then %s.", waiting_for, duration(left), then
                )
        toggls_wait = isinstance(error, TogglQuotaExhausted) or asked_wait(error) is not None
        if wait > SPEAK_EVERY or (wait > 0 and toggls_wait):
            self.logger.info("Waited %s for %s; now %s.", duration(wait), waiting_for, then)

    def _pace(self) -> None:
        """Start a request no sooner than request_interval_seconds after the previous one."""
        interval = float(self.config["request_interval_seconds"])
        if self._last_request_started is not None:
            remaining = self._last_request_started + interval - self.monotonic()
            if remaining > 0:
                self.sleep(remaining)
        self._last_request_started = self.monotonic()


def retry_waits(*, max_quota_wait: float) -> Generator[float, BaseException | None, None]:
    """Seconds before each retry, given each failure; it ends (the tap gives up) when it must."""
    error = yield 0.0  # primed before the first failure
    backoffs = quota_waits = unreachables = 0
    while True:
        asked = asked_wait(error)
        if unreachable_reason(error) is not None:
            unreachables += 1
            if unreachables >= UNREACHABLE_ATTEMPTS:
                return
            wait = UNREACHABLE_RETRY_WAIT
        elif asked is not None:
            wait = asked
        elif isinstance(error, TogglQuotaExhausted):
            wait = min(max_quota_wait, UNKNOWN_QUOTA_FIRST_WAIT * 4**quota_waits)
            quota_waits += 1
        else:
            wait = BACKOFF_FIRST_WAIT * 2**backoffs
            backoffs += 1
        error = yield wait


def next_wait(
    waits: Generator[float, BaseException | None, None], error: Exception
) -> float | None:
    """The wait before the next attempt; None when the schedule says to give up."""
    try:
        return waits.send(error)
    except StopIteration:
        return None


def asked_wait(error: BaseException | None) -> float | None:
    """The wait Toggl asked for (a quota reset, Retry-After), if it asked."""
    asked = getattr(error, "wait_seconds", None)
    return None if asked is None else float(asked)


def what_it_waits_for(error: BaseException) -> str:
    if isinstance(error, TogglQuotaExhausted):
        return "Toggl's hourly request quota to reset"
    if asked_wait(error) is not None:
        return "the time Toggl asked for (Retry-After)"
    return "the next attempt"


def seconds(value: float) -> str:
    """`2`, `0.5`: a wait as people write it."""
    return f"{value:.0f}" if value >= 10 or float(value).is_integer() else f"{value:.1f}"


def duration(value: float) -> str:
    """`59 min 30 s`, `45 s`: a long wait as people say it."""
    whole = round(value)  # the clock's fractions say nothing to a reader of the log
    if whole < 1:
        return f"{seconds(value)} s"
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
