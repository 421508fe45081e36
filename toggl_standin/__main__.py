"""`python -m toggl_standin`: a Toggl stand-in on loopback, to try the tap without an account.

It serves demo tasks on `GET /api/v9/me/tasks` as Toggl does (Basic auth, paging, `since`,
quota headers), and can answer chosen requests with the failures Toggl sends. scripts/demo starts
it when no token is configured; docs/development.md shows how to point the tap, Meltano and the
Airflow trial at it.
"""

from __future__ import annotations

import argparse
import math
import signal
import threading
import time
from pathlib import Path

from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import Fault, TogglServer

DESCRIPTION = """\
Serve demo Toggl Track tasks on 127.0.0.1 the way Toggl's API v9 does, so the tap, Meltano and
Airflow can be tried without a Toggl account. It prints TOGGL_API_URL=<url>: give that URL to
the tap as api_url (Meltano: TAP_TOGGL_TASKS_API_URL) and the --api-token value as api_token.
It runs until Ctrl-C or SIGTERM."""

EPILOG = """\
examples:
  python -m toggl_standin --tasks 2000 --port 8099
  python -m toggl_standin --quota 3 --quota-resets-in 90    # the tap waits, then resumes
  python -m toggl_standin --fault 1=503 --fault 2=429:5     # a server error, then throttling
"""


def fault(text: str) -> tuple[int, Fault]:
    """`3=503`, `2=429:30` or `1=drop`: which request, and how it fails."""
    number, _, how = text.partition("=")
    status, _, retry_after = how.partition(":")
    try:
        request = int(number)
        if status == "drop":
            return request, Fault(drop=True)
        headers = {"Retry-After": retry_after} if retry_after else {}
        if retry_after:
            float(retry_after)
        return request, Fault(status=int(status), headers=headers)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write REQUEST=STATUS, REQUEST=STATUS:RETRY_AFTER or REQUEST=drop, "
            "e.g. 3=503 or 2=429:30"
        ) from None


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(
        prog="python -m toggl_standin",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arguments.add_argument(
        "--tasks",
        type=int,
        default=500,
        metavar="N",
        help="how many demo tasks to serve (default 500): the same ones every time, dated over "
        "the two years before the server starts; about 80%% active, some with unicode names",
    )
    arguments.add_argument(
        "--api-token",
        default="demo-token",
        metavar="TOKEN",
        help="the only API token the server accepts (default demo-token); any other gets "
        "Toggl's 403",
    )
    arguments.add_argument(
        "--port", type=int, default=0, help="the port on 127.0.0.1 (default 0: a free one)"
    )
    arguments.add_argument(
        "--quota",
        type=int,
        metavar="N",
        help="requests allowed per quota window, as Toggl's hourly quota (default: no limit); "
        "once used up, it answers HTTP 402 with X-Toggl-Quota-* headers",
    )
    arguments.add_argument(
        "--quota-resets-in",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long a quota window lasts, as its 402 says (default 3600, Toggl's hour); the "
        "quota comes back after that",
    )
    arguments.add_argument(
        "--fault",
        type=fault,
        action="append",
        default=[],
        metavar="REQUEST=HOW",
        help="answer the REQUEST-th request (counted from 1) with a failure instead: an HTTP "
        "status (503, 429, 402, 401, 400...), with Retry-After seconds after a colon (429:30), "
        "or 'drop' to close the connection without an answer; repeat for several",
    )
    arguments.add_argument(
        "--max-per-page",
        type=int,
        metavar="N",
        help="send at most N tasks a page whatever per_page asks, as a cap of Toggl's would "
        "(default: none)",
    )
    arguments.add_argument(
        "--unknown-field",
        action="store_true",
        help="give some tasks a field Toggl's schema lacks (color_hint), to see the tap warn "
        "about it and drop it",
    )
    arguments.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="also write the API URL to this file once the server listens (for scripts)",
    )
    return arguments


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    tasks = demo_tasks(args.tasks, unknown_field=args.unknown_field)
    server = TogglServer(
        tasks,
        api_token=args.api_token,
        quota=args.quota,
        port=args.port,
        max_per_page=args.max_per_page,
    )
    server.quota_resets_in = args.quota_resets_in
    for request, failure in args.fault:
        server.fault_at(request, failure)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stopping.set())
    with server:
        print(f"TOGGL_API_URL={server.url}", flush=True)
        if args.ready_file:
            # Written whole then renamed, so a script polling for the file never reads half a URL.
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            partial.write_text(server.url)
            partial.replace(args.ready_file)
        window_ends = time.monotonic() + args.quota_resets_in
        while not stopping.wait(1 if args.quota is not None else None):
            # The quota headers count down, and the quota comes back when its window ends, as
            # Toggl's hour does.
            left = window_ends - time.monotonic()
            if left <= 0:
                server.quota_remaining = args.quota
                window_ends += args.quota_resets_in
                left += args.quota_resets_in
            server.quota_resets_in = math.ceil(left)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
