"""Why a request did not even get an answer (refused, unknown host, timeout), in one sentence.

What a failed connection is called in the retry lines and in the tap's last word; answers
Toggl did give are errors.py's.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from tap_toggl_tasks.errors import DEFAULT_API_URL, TogglGaveUp, TogglRetryableError


def failure(error: BaseException) -> str:
    """What went wrong with one attempt, in one sentence, for the retry line and the last word."""
    if isinstance(error, TogglRetryableError):
        return str(error)
    if (reason := unreachable_reason(error)) is not None:
        return f"Cannot connect to {_host_of(error)} ({reason})."
    if isinstance(error, requests.Timeout):
        return "Toggl did not answer within request_timeout."
    return f"The connection to Toggl failed ({_root_cause(error)})."


def unreachable_reason(error: BaseException | None) -> str | None:
    """Why no connection could be opened at all (refused, unknown host); None for other errors.

    These end the sync after one quick retry: they say the address is wrong far more often than
    that Toggl is down. Timeouts and answers (5xx) are outages, and keep their retries.
    """
    if not isinstance(error, requests.ConnectionError) or isinstance(error, requests.Timeout):
        return None
    causes = _causes(error)
    unknown_host = (urllib3.exceptions.NameResolutionError, socket.gaierror)
    if any(isinstance(cause, unknown_host) for cause in causes):
        return "unknown host"
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    for cause in causes:
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return f"no connection: {_root_cause(cause)}"
    return None


def unreachable(error: BaseException, *, api_url: str, attempts: int) -> TogglGaveUp:
    """The last word when the api_url's host cannot be reached at all."""
    shown = _without_userinfo(api_url)
    if shown.rstrip("/") == DEFAULT_API_URL:
        # Toggl's own address: the way to it is what is wrong, not the setting.
        advice = "Check that this machine reaches that host (network, proxy, firewall, DNS)"
    else:
        advice = (
            f"Check api_url (now {shown}; Toggl's is {DEFAULT_API_URL}) and that this machine "
            "reaches that host (network, proxy, firewall, DNS)"
        )
    return TogglGaveUp(
        f"Cannot connect to {_host_of(error)}, the host of the api_url setting "
        f"({unreachable_reason(error)}; {attempts} attempts). {advice}; then run again."
    )


def _causes(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps: requests and urllib3 nest the socket's error."""
    found: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is f for f in found):
            continue
        found.append(current)
        todo += [*current.args, getattr(current, "reason", None)]
        todo += [current.__cause__, current.__context__]
    return found


def _root_cause(error: BaseException) -> str:
    """`RemoteDisconnected: Remote end closed connection`: the socket's words, not the wrappers'."""
    current = error
    for _ in range(10):  # wrappers nest a few levels; the bound only guards against cycles
        inner = (
            current.__cause__
            or getattr(current, "reason", None)
            or next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        )
        if not isinstance(inner, BaseException):
            break
        current = inner
    text = str(current)
    return f"{type(current).__name__}: {text}" if text else type(current).__name__


def _host_of(error: BaseException) -> str:
    request = getattr(error, "request", None)
    parts = urlsplit(str(getattr(request, "url", "") or ""))
    if parts.hostname is None:
        return "Toggl's host"
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def gave_up(error: BaseException, attempts: int) -> TogglGaveUp:
    """The final word after the last retry failed."""
    advice = (
        "raise request_timeout if Toggl is slow to answer"
        if isinstance(error, requests.Timeout)
        else "check the api_url setting if it is not Toggl's"
    )
    return TogglGaveUp(
        f"{failure(error)} Gave up after {attempts} attempts. Toggl or the network may be down: "
        f"check https://status.toggl.com and run again later; {advice}. The state holds this "
        "sync's progress: the next run resumes, nothing lost."
    )
