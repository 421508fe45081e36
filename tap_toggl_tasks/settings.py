"""The tap's settings: their JSON schema (what `--about` lists) and the checks the schema
cannot make alone, worded as the one paragraph a user reads when settings are wrong."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_toggl_tasks.errors import DEFAULT_API_URL
from tap_toggl_tasks.state import is_timestamp

VERSION = metadata.version("tap-toggl-tasks")
# One request fetches up to 5000 tasks (about 4 MB): most accounts sync in a first run of three
# requests, and 100,000 tasks in 22, inside one hour of Toggl's 30 requests.
DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 10000
# What the SDK puts in a batch when batch_config gives no batch_size.
SDK_BATCH_SIZE = 10000
# A write Toggl commits (or shows) a little after stamping its `at`, or during the time it
# answers the sync's first request, would fall just below the bookmark: a minute re-reads it.
LOOKBACK_SECONDS = 60

SETTINGS = th.PropertiesList(
    th.Property(
        "api_token",
        th.StringType,
        title="API token",
        secret=True,
        description="Toggl Track API token (Profile settings > API Token). Use this, or "
        "email and password.",
    ),
    th.Property(
        "email",
        th.StringType,
        title="Email",
        description="Toggl login email, with password.",
    ),
    th.Property(
        "password",
        th.StringType,
        title="Password",
        secret=True,
        description="Toggl login password, with email.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        title="API URL",
        default=DEFAULT_API_URL,
        description="Toggl Track API v9 base URL. Plain http:// is refused except on loopback.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description="Earliest `at` (task created or modified) to sync on the first run; "
        "absent means all history.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=2, maximum=MAX_PAGE_SIZE),
        title="Page size",
        default=DEFAULT_PAGE_SIZE,
        description=f"Tasks per request (`per_page`), 2 to {MAX_PAGE_SIZE}. Large pages save "
        "requests, the scarcest thing under Toggl's hourly quota.",
    ),
    th.Property(
        "include_not_active",
        th.BooleanType,
        title="Include done tasks",
        default=True,
        description="Include tasks marked done. Keep it true: otherwise a task done after "
        "one sync never reaches the warehouse as done.",
    ),
    th.Property(
        "include_hidden",
        th.BooleanType,
        title="Include hidden tasks",
        default=True,
        description="Include tasks Toggl hides (`include_hidden`). Keep it true: Toggl does not "
        "say what it hides, and a warehouse should hold every task.",
    ),
    th.Property(
        "search",
        th.StringType,
        title="Search",
        description="Only tasks whose name, project or client contains this text (`search`). "
        "Changing it makes the next run a full sync, since the bookmark covered the old filter.",
    ),
    th.Property(
        "meta",
        th.BooleanType,
        title="Meta fields",
        default=True,
        description="Ask for the meta fields: project_name, project_color, project_billable, "
        "client_name.",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        title="User agent",
        default=f"tap-toggl-tasks/{VERSION}",
        description="User-Agent header sent to Toggl.",
    ),
    th.Property(
        "request_timeout",
        th.IntegerType(minimum=1, maximum=3600),
        title="Request timeout",
        default=300,
        description="Seconds to wait for one response before retrying it.",
    ),
    th.Property(
        "request_interval_seconds",
        # Whole seconds: the SDK reads only integer (not number) settings from the environment.
        th.IntegerType(minimum=0, maximum=3600),
        title="Request interval",
        default=1,
        description="Least time in seconds between the starts of two requests, retries "
        "included. Toggl asks for at most one request a second per API token; 0 turns pacing "
        "off (benchmarks, tests).",
    ),
    th.Property(
        "max_quota_wait_seconds",
        th.IntegerType(minimum=0, maximum=86400),
        title="Longest quota wait",
        default=3600,
        description="Longest wait for Toggl's hourly request quota to reset before stopping "
        "(the next run resumes where it stopped). 3600, the longest reset, always waits: an "
        "unattended run finishes rather than fails; 0 never waits.",
    ),
    th.Property(
        "lookback_seconds",
        th.IntegerType(minimum=0, maximum=86400),
        title="Lookback",
        default=LOOKBACK_SECONDS,
        description="Seconds before the bookmark that each incremental run reads again, for "
        "writes Toggl shows later than their `at` and the time Toggl takes to answer.",
    ),
).to_dict()

_LOOPBACK_NAMES = {"localhost"}


def settings_errors(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with settings the JSON schema cannot judge alone; empty when all is well."""
    errors = []
    has_login = bool(config.get("email")) or bool(config.get("password"))
    if config.get("api_token") and has_login:
        errors.append("Set either api_token, or email and password, not both.")
    elif not config.get("api_token") and not has_login:
        errors.append(
            "No credentials: set api_token (Toggl Track > Profile settings > API Token), or "
            "email and password: in the file given with --config, or as "
            "TAP_TOGGL_TASKS_API_TOKEN in the environment with --config ENV."
        )
    elif has_login and not (config.get("email") and config.get("password")):
        errors.append("email and password go together: set both, or use api_token instead.")
    if problem := _api_url_problem(str(config.get("api_url", ""))):
        errors.append(problem)
    if (start := config.get("start_date")) and not is_timestamp(start):
        errors.append(
            f"start_date {start!r} is not a date: use ISO 8601, e.g. 2024-01-31 or "
            "2024-01-31T00:00:00Z."
        )
    if problem := _batch_size_problem(config):
        errors.append(problem)
    return errors


def _batch_size_problem(config: Mapping[str, Any]) -> str | None:
    # In BATCH mode the SDK writes the state only after a batch: a batch must end where a page
    # ends, or a run stopped before its batch keeps no progress and repeats itself forever.
    batch_config = config.get("batch_config")
    if not isinstance(batch_config, Mapping):
        return None
    size = batch_config.get("batch_size") or SDK_BATCH_SIZE
    page_size = int(config.get("page_size") or DEFAULT_PAGE_SIZE)
    if isinstance(size, int) and page_size % size == 0:
        return None
    return (
        f"batch_config.batch_size {size} does not divide page_size {page_size}: in BATCH mode "
        "the state moves on only when a batch is written, so a batch must end where a page "
        "ends, or a run stopped by the quota or a failure keeps none of its progress. Set "
        f"batch_config.batch_size to {page_size} or a number that divides it."
    )


def config_failure(errors: list[str]) -> str:
    """One paragraph: every problem with the settings, and where to fix them."""
    problems = [error if error.endswith(".") else f"{error}." for error in errors]
    if len(problems) > 1:
        problems = [f"({number}) {problem}" for number, problem in enumerate(problems, 1)]
        fix = "Fix them where they are set"
    else:
        fix = "Fix it where it is set"
    return (
        f"Config validation failed, so nothing was requested from Toggl: {' '.join(problems)} "
        f"{fix} (the --config file, TAP_TOGGL_TASKS_<SETTING> variables "
        "with --config ENV, or `meltano config set tap-toggl-tasks <setting> <value>`); "
        "`tap-toggl-tasks --about` lists every setting."
    )


def unknown_settings(config: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """A warning for each setting not in `known`: a misspelt one is otherwise silently unset."""
    known = sorted(known)
    warnings = []
    for key in sorted(set(config) - set(known)):
        if close := difflib.get_close_matches(key, known, n=1):
            hint = f"did you mean {close[0]}?"
        else:
            hint = "the tap ignores it (`tap-toggl-tasks --about` lists the settings)."
        warnings.append(f"Unknown setting {key}: {hint}")
    return warnings


def _api_url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return None
    return (
        f"api_url {url!r} must be an https:// URL such as {DEFAULT_API_URL} (plain http:// "
        "only for a server on this machine: localhost, 127.0.0.1, ::1), so that credentials "
        "never cross a network unencrypted."
    )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
