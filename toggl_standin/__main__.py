"""`python -m toggl_standin`: demo tasks on loopback, served the way Toggl does (scripts/demo)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve demo tasks the way Toggl's API does.")
    parser.add_argument("--tasks", type=int, default=500, help="how many demo tasks to serve")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-token", default="demo-token")
    parser.add_argument("--quota", type=int, default=None, help="requests allowed (default: any)")
    parser.add_argument("--ready-file", type=Path, help="also write the API URL to this file")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stopping.set())
    server = TogglServer(
        demo_tasks(args.tasks), api_token=args.api_token, quota=args.quota, port=args.port
    )
    with server:
        print(f"TOGGL_API_URL={server.url}", flush=True)
        if args.ready_file:
            # Written whole then renamed, so a script polling for the file never reads half a URL.
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            partial.write_text(server.url)
            partial.replace(args.ready_file)
        stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
