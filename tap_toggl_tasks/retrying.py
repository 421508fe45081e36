"""How the tasks stream retries and paces its requests, and what it says while it does.

- At most one request per `request_interval_seconds` (Toggl asks for one a second per token);
  a retry is a request too.
- Up to MAX_ATTEMPTS attempts, waiting what Toggl asked (quota reset, Retry-After), else 2, 4,
  8, 16 s; a quota answer without a reset time waits 1, 4, 16, 64 minutes (each at most
  max_quota_wait_seconds): together they outlast Toggl's hourly window.
- A host that refuses the connection or does not exist gets one quick retry, then the sync
  ends naming the api_url setting: that is a wrong address far more often than an outage.
- Each retry is one log line: what failed, attempt n of MAX_ATTEMPTS, the wait. The last failure
  becomes one TogglGaveUp paragraph, which the tap logs as its one ERROR.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import backoff
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from typing_extensions import override

from tap_toggl_tasks.errors import (
    TogglQuotaExhausted,
    failure,
    gave_up,
    unreachable,
    unreachable_reason,
)

if TYPE_CHECKING:
    from backoff.types import Details

MAX_ATTEMPTS = 5
UNREACHABLE_ATTEMPTS = 2  # for a host that refuses connections or does not exist
BACKOFF_FIRST_WAIT = 2.0  # seconds; doubles on each retry: 2, 4, 8, 16
UNREACHABLE_RETRY_WAIT = 1.0  # one quick retry, for a blip of the network or of DNS
UNKNOWN_QUOTA_FIRST_WAIT = 60.0  # seconds; grows fourfold: 60, 240, 960, 3840
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
    """The SDK's retry hooks, set for Toggl: its own waits first (quota reset, Retry-After)."""

    _last_request_started: float | None = None
    _attempts_made = 0

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        return retry_waits(max_quota_wait=float(self.config["max_quota_wait_seconds"]))

    @override
    def backoff_max_tries(self) -> int:
        return MAX_ATTEMPTS

    @override
    def backoff_handler(self, details: Details) -> None:
        """One line per retry; a quota wait is the plan working, so it is INFO, not a WARNING."""
        error = details.get("exception")
        wait = float(details.get("wait") or 0.0)
        level = logging.INFO if isinstance(error, TogglQuotaExhausted) else logging.WARNING
        attempts = UNREACHABLE_ATTEMPTS if unreachable_reason(error) else MAX_ATTEMPTS
        self.logger.log(
            level,
            "%s Attempt %d of %d; waiting %s s before the next.",
            failure(error) if error is not None else "The request failed.",
            details["tries"],
            attempts,
            seconds(wait),
        )

    @override
    def request_decorator(self, func: Callable[..., requests.Response]) -> Callable[..., Any]:
        # Not the SDK's decorator: it passes its logger to backoff, which then logs every retry
        # again (with the request function's repr) and an ERROR on giving up, before the tap's
        # own paragraph. Jitter is off: Toggl's waits are exact, and the log tells the true wait.
        retrying = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIED,
            max_tries=self.backoff_max_tries,
            jitter=None,
            on_try=self._pace,
            on_backoff=self.backoff_handler,
            logger=None,
        )(func)

        @functools.wraps(func)
        def request_or_explain(*args: Any, **kwargs: Any) -> requests.Response:
            self._attempts_made = 0
            try:
                return retrying(*args, **kwargs)
            except RETRIED as exc:
                if unreachable_reason(exc) is not None:
                    api_url = str(self.config["api_url"])
                    raise unreachable(exc, api_url=api_url, attempts=self._attempts_made) from exc
                raise gave_up(exc, self._attempts_made) from exc

        return request_or_explain

    def _pace(self, details: Details) -> None:
        """Start a request no sooner than request_interval_seconds after the previous one."""
        self._attempts_made = details["tries"]
        interval = float(self.config["request_interval_seconds"])
        if self._last_request_started is not None:
            remaining = self._last_request_started + interval - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        self._last_request_started = time.monotonic()


def retry_waits(*, max_quota_wait: float) -> Generator[float, BaseException | None, None]:
    """Seconds before each retry, given each failure; it ends (backoff gives up) when it must."""
    error = yield 0.0  # backoff primes the generator before the first failure
    backoffs = quota_waits = unreachables = 0
    while True:
        asked = getattr(error, "wait_seconds", None)
        if unreachable_reason(error) is not None:
            unreachables += 1
            if unreachables >= UNREACHABLE_ATTEMPTS:
                return
            wait = UNREACHABLE_RETRY_WAIT
        elif asked is not None:
            wait = float(asked)
        elif isinstance(error, TogglQuotaExhausted):
            wait = min(max_quota_wait, UNKNOWN_QUOTA_FIRST_WAIT * 4**quota_waits)
            quota_waits += 1
        else:
            wait = BACKOFF_FIRST_WAIT * 2**backoffs
            backoffs += 1
        error = yield wait


def seconds(value: float) -> str:
    """`2`, `0.5`: a wait as people write it."""
    return f"{value:.0f}" if value >= 10 or float(value).is_integer() else f"{value:.1f}"
