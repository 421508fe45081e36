"""How the tasks stream retries: which waits, how many attempts, the final word on giving up."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Generator
from typing import Any

import requests
from singer_sdk import RESTStream
from typing_extensions import override

from tap_toggl_tasks.errors import TogglRetryableError, gave_up

MAX_ATTEMPTS = 5
BACKOFF_FIRST_WAIT = 2.0  # seconds; doubles on each retry: 2, 4, 8, 16


class TogglRetries(RESTStream[Any]):
    """The SDK's retry hooks, set for Toggl: its own waits first (quota reset, Retry-After)."""

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        return _retry_waits()

    @override
    def backoff_max_tries(self) -> int:
        return MAX_ATTEMPTS

    @override
    def request_decorator(self, func: Callable[..., requests.Response]) -> Callable[..., Any]:
        retrying = super().request_decorator(func)

        @functools.wraps(func)
        def request_or_explain(*args: Any, **kwargs: Any) -> requests.Response:
            try:
                return retrying(*args, **kwargs)
            except (TogglRetryableError, requests.RequestException, ConnectionError) as exc:
                raise gave_up(exc, MAX_ATTEMPTS) from exc

        return request_or_explain


def _retry_waits() -> Generator[float, BaseException | None, None]:
    """Seconds before each retry: what Toggl asked for (quota reset, Retry-After), else 2, 4, 8."""
    error = yield 0.0  # backoff primes the generator before the first failure
    for attempt in itertools.count():
        asked = getattr(error, "wait_seconds", None)
        error = yield asked if asked is not None else BACKOFF_FIRST_WAIT * 2**attempt
