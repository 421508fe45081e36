"""How the tap reads Toggl's answers: which errors are retried, which stop, what users are told.

Every message here is one paragraph that says what happened and what to do, carries Toggl's
request id when there is one, and never contains credentials.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import re
from typing import Any

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

REQUEST_ID_HEADER = "X-Toggl-Request-Id"
QUOTA_REMAINING_HEADER = "X-Toggl-Quota-Remaining"
QUOTA_RESETS_IN_HEADER = "X-Toggl-Quota-Resets-In"
MAX_BODY_CHARS = 300
DEFAULT_API_URL = "https://api.track.toggl.com/api/v9"
# A 402 body that speaks of a quota or limit: Toggl's quota answer, even without its headers.
QUOTA_WORDS = re.compile(r"quota|limit", re.IGNORECASE)


class TogglError(Exception):
    """An error whose message already tells the user what to do: shown without a traceback."""


class TogglInputError(TogglError):
    """A --state or --catalog input the tap cannot use."""


class TogglFatalError(TogglError, FatalAPIError):
    """Retrying cannot help: bad credentials, a bad request, a plan without tasks."""


class TogglRetryableError(TogglError, RetriableAPIError):
    """Worth another try, after `wait_seconds` when Toggl said how long (else backing off)."""

    def __init__(
        self,
        message: str,
        response: requests.Response | None = None,
        *,
        wait_seconds: float | None = None,
    ) -> None:
        super().__init__(message, response)
        self.wait_seconds = wait_seconds


class TogglQuotaExhausted(TogglRetryableError):
    """The hourly request quota is used up and resets soon enough to wait for it."""


class TogglGaveUp(TogglError):
    """Retries ran out: the last failure, explained."""


def describe(response: requests.Response) -> str:
    """`HTTP 503 (request id abc)`: how a response is named in every message."""
    request_id = response.headers.get(REQUEST_ID_HEADER)
    suffix = f", request id {request_id}" if request_id else ""
    return f"HTTP {response.status_code} {response.reason or ''}".rstrip() + suffix


def body_text(response: requests.Response) -> str:
    """Toggl's own words: error bodies are usually a JSON string literal, sometimes HTML."""
    text = response.text.strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = text
    if not isinstance(decoded, str):
        decoded = text
    if len(decoded) > MAX_BODY_CHARS:
        decoded = decoded[:MAX_BODY_CHARS] + "..."
    return decoded or "(empty body)"


def seconds_from_header(value: str | None) -> float | None:
    """Seconds from a header that holds either a number or an HTTP date (as Retry-After may)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def error_for(response: requests.Response, *, max_quota_wait: float) -> Exception:
    """The exception for a response that did not bring tasks."""
    status = response.status_code
    what = describe(response)
    if status in {401, 403}:
        return TogglFatalError(
            f"Toggl refused the credentials ({what}: {body_text(response)}). Check the api_token "
            "setting (Toggl Track > Profile settings > API Token), or email and password, and "
            "that this user still belongs to a workspace; then run again."
        )
    if status == 402:
        return _quota_error(response, max_quota_wait=max_quota_wait)
    if status == 429:
        throttled = f"Toggl is throttling requests ({what})."
        return _retry_later(throttled, response, max_quota_wait=max_quota_wait)
    if status >= 500:
        server_error = f"Toggl had a server error ({what}: {body_text(response)})."
        return _retry_later(server_error, response, max_quota_wait=max_quota_wait)
    if status == 400:
        return TogglFatalError(
            f"Toggl rejected the request ({what}: {body_text(response)}). Check the settings "
            "include_not_active, page_size and start_date, and the bookmark in the state you "
            "passed; if they look right, report this message with its request id."
        )
    return TogglFatalError(
        f"Toggl answered {what}: {body_text(response)}. Check the api_url setting "
        "(normally https://api.track.toggl.com/api/v9)."
    )


def _retry_later(what: str, response: requests.Response, *, max_quota_wait: float) -> Exception:
    """Worth another try, after the Retry-After Toggl sent if any; but never a wait longer than
    max_quota_wait_seconds, the longest the user lets the tap sit waiting on Toggl."""
    asked = seconds_from_header(response.headers.get("Retry-After"))
    if asked is None or asked <= max_quota_wait:
        return TogglRetryableError(what, response, wait_seconds=asked)
    return TogglFatalError(
        f"{what} Toggl asked the tap to wait {asked:.0f} s before trying again (Retry-After), "
        f"longer than max_quota_wait_seconds ({max_quota_wait:.0f}), so it stops instead. Run "
        f"again after {_utc_after(asked)}: the state holds this sync's progress, so the next run "
        "resumes where this one stopped."
    )


def _utc_after(seconds: float) -> str:
    """`2026-12-02 17:42:10 UTC`: when a wait of this many seconds from now ends."""
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _quota_error(response: requests.Response, *, max_quota_wait: float) -> Exception:
    # 402 with quota headers, or with a body about a quota or limit, means "come back later";
    # any other 402, "this plan has no tasks".
    resets_in = seconds_from_header(response.headers.get(QUOTA_RESETS_IN_HEADER))
    if resets_in is None:
        resets_in = seconds_from_header(response.headers.get("Retry-After"))
    has_headers = QUOTA_REMAINING_HEADER in response.headers or resets_in is not None
    if not has_headers and not QUOTA_WORDS.search(body_text(response)):
        return TogglFatalError(
            f"Toggl answered {describe(response)} without quota headers: tasks are a paid Toggl "
            "Track feature (Starter plan and up). Upgrade the workspace's plan, or use the "
            "credentials of a user in a paid workspace."
        )
    if resets_in is None:
        # Toggl said the quota is used up but not when it resets: the retry waits grow from a
        # minute, each at most max_quota_wait_seconds (see retrying.py).
        if max_quota_wait <= 0:
            return TogglFatalError(
                f"Toggl's hourly request quota for this user is used up ({describe(response)}: "
                f"{body_text(response)}), and max_quota_wait_seconds is 0, so the tap does not "
                "wait for it. Run again within the hour: the state holds this sync's progress, "
                "so the next run resumes where this one stopped. Other tools using this Toggl "
                "user share the same quota."
            )
        return TogglQuotaExhausted(
            f"Toggl's hourly request quota is used up ({describe(response)}: "
            f"{body_text(response)}); Toggl did not say when it resets.",
            response,
        )
    if resets_in <= max_quota_wait:
        return TogglQuotaExhausted(
            f"Toggl's hourly request quota is used up ({describe(response)}); it resets in "
            f"{resets_in:.0f} s.",
            response,
            wait_seconds=resets_in + 1,  # +1: the reset is announced in whole seconds
        )
    return TogglFatalError(
        f"Toggl's hourly request quota for this user is used up ({describe(response)}). It "
        f"resets in {resets_in:.0f} s, at {_utc_after(resets_in)}, which is longer than "
        f"max_quota_wait_seconds ({max_quota_wait:.0f}). Run again after the reset: the state "
        "holds this sync's progress, so the next run resumes where this one stopped. Other "
        "tools using this Toggl user share the same quota."
    )


def unexpected_body(response: requests.Response, found: Any) -> TogglFatalError:
    """A 200 whose JSON is not a list of tasks."""
    return TogglFatalError(
        f"Toggl answered {describe(response)} with a body that is not a list of tasks (found "
        f"{type(found).__name__}: {str(found)[:MAX_BODY_CHARS]}). Check the api_url setting; if it "
        "is right, Toggl changed its API: report this message with its request id."
    )
