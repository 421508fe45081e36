"""A local stand-in for Toggl Track's `GET /api/v9/me/tasks`, with its quirks and scriptable faults.

Tests and the README demo talk to it over real HTTP on loopback, so the tap's whole network
stack (sessions, timeouts, retries, body decoding) is exercised, not a mock of it.

Run it by hand with `python -m tests.toggl_server --tasks 500 --port 0 --api-token demo-token`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TASKS_PATH = "/api/v9/me/tasks"
META_FIELDS = ("project_name", "project_color", "project_billable", "client_name")
JSON = "application/json"
DEFAULT_API_TOKEN = "test-token"
DEFAULT_PASSWORD = "test-password"
PROXY_429_PAGE = "<html><body><h1>429 Too Many Requests</h1></body></html>"
# Toggl rejects "1.5" or " 7"; int() alone would accept " 7", "1_000" and non-ASCII digits.
_DIGITS = re.compile(r"[0-9]+")


@dataclass
class RecordedRequest:
    """One request to /me/tasks as the server saw it; credentials are deliberately not kept."""

    method: str
    path: str
    params: dict[str, str]
    status: int  # 0 when the connection was dropped without an answer
    user_agent: str | None
    authorized: bool
    request_id: str  # the X-Toggl-Request-Id sent back, so tests can look for it in error messages


@dataclass
class Fault:
    """How to misbehave on one request, instead of (or on top of) the normal answer."""

    status: int = 200
    body: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    before: Callable[[TogglServer], None] | None = None


@dataclass
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def format_at(moment: datetime) -> str:
    """Toggl's own form of `at`: UTC, microseconds, `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_at(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_response(status: int, value: object, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(value, ensure_ascii=False).encode()
    return _Response(status, body, {"Content-Type": JSON, **(headers or {})})


def _fault_response(fault: Fault) -> _Response:
    if fault.body is not None:
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return _Response(fault.status, body, {"Content-Type": JSON})
    if fault.status == 429:
        # Toggl's front proxy throttles before the API sees the request, hence HTML.
        return _Response(429, PROXY_429_PAGE.encode(), {"Content-Type": "text/html"})
    if fault.status == 401:
        return _Response(401, b"")  # Toggl's 401 has no body at all
    if fault.status >= 500:
        return _json_response(fault.status, "Internal Server Error")
    return _json_response(fault.status, responses.get(fault.status, "Unknown Status"))


class TogglServer:
    """Toggl's /me/tasks on 127.0.0.1; `tasks` is the truth it serves, `requests` what it got."""

    def __init__(
        self,
        tasks: Iterable[dict[str, Any]] = (),
        *,
        api_token: str = DEFAULT_API_TOKEN,
        email: str = "ada@example.com",
        password: str = DEFAULT_PASSWORD,
        quota: int | None = None,
        order: str = "id",
        port: int = 0,
    ) -> None:
        if order not in ("id", "at"):
            raise ValueError(f"order must be 'id' or 'at', not {order!r}")
        self.tasks: dict[int, dict[str, Any]] = {int(t["id"]): dict(t) for t in tasks}
        self.requests: list[RecordedRequest] = []
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.quota_remaining = quota
        self.quota_resets_in = 3600
        self.order = order
        self.api_token = api_token
        self.email = email
        self.password = password
        self._port = port
        # A plain Lock: `before` callbacks run outside it, so add()/modify() never re-enter it.
        self._lock = threading.Lock()
        self._script: deque[Fault | None] = deque()
        self._faults_at: dict[int, Fault] = {}
        self._httpd: _TogglHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TogglServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> TogglServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self._httpd = _TogglHTTPServer(("127.0.0.1", self._port), self)
        # A short poll interval keeps stop() fast; the default 0.5 s adds up over a test suite.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = None
        self._thread = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/api/v9"

    def script(self, *faults: Fault | None) -> None:
        """Replace the queue: the Nth /me/tasks request from now meets faults[N] (None: normal)."""
        with self._lock:
            self._script = deque(faults)

    def fault_at(self, request_number: int, fault: Fault) -> None:
        """Fault the request with this 1-based number, counted over all since start."""
        if request_number < 1:
            raise ValueError("request numbers start at 1")
        with self._lock:
            self._faults_at[request_number] = fault

    def add(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            task_id = int(fields.pop("id", max(self.tasks, default=0) + 1))
            if task_id in self.tasks:
                raise ValueError(f"task {task_id} already exists")
            task = make_task(task_id, **{"at": format_at(self.clock()), **fields})
            self.tasks[task_id] = task
            return dict(task)

    def modify(self, task_id: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            task = self.tasks[task_id]
            task.update(fields)
            task["at"] = format_at(self.clock())
            return dict(task)

    def mark_done(self, task_id: int) -> dict[str, Any]:
        return self.modify(task_id, active=False)

    def delete(self, task_id: int) -> None:
        # Toggl keeps a deleted task as a tombstone, so a `since` sync can learn of the deletion.
        with self._lock:
            now = format_at(self.clock())
            self.tasks[task_id].update(server_deleted_at=now, at=now)

    def _arrive(self, request: RecordedRequest) -> Fault | None:
        """Log a request as it arrives and pick its fault, so `requests[n - 1]` is request n."""
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
            return scripted if scripted is not None else self._faults_at.get(len(self.requests))

    def _authorized(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        by_token = user == self.api_token and password == "api_token"
        return by_token or (user == self.email and password == self.password)

    def _quota_headers(self) -> dict[str, str]:
        return {
            "X-Toggl-Quota-Remaining": str(self.quota_remaining),
            "X-Toggl-Quota-Resets-In": str(self.quota_resets_in),
        }

    def _respond(self, authorization: str | None, params: dict[str, str]) -> _Response:
        """The answer Toggl would give when nothing goes wrong on the way."""
        if authorization is None:
            return _Response(401, b"")
        if not self._authorized(authorization):
            return _json_response(403, "Incorrect username and/or password")
        with self._lock:
            quota: dict[str, str] = {}
            if self.quota_remaining is not None:
                if self.quota_remaining <= 0:
                    return _json_response(402, "Quota exceeded", self._quota_headers())
                self.quota_remaining -= 1
                quota = self._quota_headers()
            try:
                rows = self._select(params)
            except ValueError as invalid:
                return _json_response(400, str(invalid), quota)
        if not rows:
            return _Response(200, b"null", {"Content-Type": JSON, **quota})
        return _json_response(200, rows, quota)

    def _select(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Toggl's filtering and paging; a ValueError names the parameter Toggl would reject."""
        include_not_active = params.get("include_not_active", "false")
        if include_not_active not in ("true", "false"):
            raise ValueError("Invalid include_not_active")
        since = params.get("since")
        if since is not None and not _DIGITS.fullmatch(since.removeprefix("-")):
            raise ValueError("Invalid since")
        offset = params.get("offset", "0")
        if not _DIGITS.fullmatch(offset):
            raise ValueError("Invalid offset")
        per_page = params.get("per_page")
        if per_page is not None and (not _DIGITS.fullmatch(per_page) or int(per_page) == 0):
            raise ValueError("Invalid per_page")

        def wanted(task: dict[str, Any]) -> bool:
            if include_not_active == "false" and not task.get("active", True):
                return False
            if since is None:
                return task.get("server_deleted_at") is None
            return parse_at(task["at"]).timestamp() >= int(since)

        search = params.get("search", "").casefold()

        def found(task: dict[str, Any]) -> bool:
            # Toggl searches the task's name, its project's name and its client's name.
            fields = (task.get("name"), task.get("project_name"), task.get("client_name"))
            return not search or any(search in str(value).casefold() for value in fields)

        rows = [task for task in self.tasks.values() if wanted(task) and found(task)]
        if self.order == "at":
            rows.sort(key=lambda task: (parse_at(task["at"]), task["id"]))
        else:
            rows.sort(key=lambda task: int(task["id"]))
        start = int(offset)
        end = None if per_page is None else start + int(per_page)
        meta = params.get("meta") == "true"
        return [
            {key: value for key, value in task.items() if meta or key not in META_FIELDS}
            for task in rows[start:end]
        ]


class _TogglHTTPServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], toggl: TogglServer) -> None:
        self.toggl = toggl
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up is a scenario under test, not a server bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the tap's requests.Session expects

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean; the access log would also be a place credentials could leak."""

    def do_GET(self) -> None:
        assert isinstance(self.server, _TogglHTTPServer)
        toggl = self.server.toggl
        url = urlsplit(self.path)
        request_id = uuid.uuid4().hex
        if url.path != TASKS_PATH:
            self._send(_json_response(404, "Not Found"), request_id)
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        authorization = self.headers.get("Authorization")

        # Logged on arrival, not when answered: a delayed request must count at once, as it does
        # against Toggl's quota; its status stays 0 until (unless) an answer goes out.
        recorded = RecordedRequest(
            method=self.command,
            path=url.path,
            params=params,
            status=0,
            user_agent=self.headers.get("User-Agent"),
            authorized=authorization is not None and toggl._authorized(authorization),
            request_id=request_id,
        )
        fault = toggl._arrive(recorded) or Fault()
        if fault.before is not None:
            fault.before(toggl)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            self.close_connection = True
            return
        if fault.status != 200 or fault.body is not None:
            response = _fault_response(fault)
        else:
            response = toggl._respond(authorization, params)
        response.headers.update(fault.headers)
        recorded.status = response.status  # set before the bytes go out: no client sees it unset
        self._send(response, request_id, truncate=fault.truncate)

    def _send(self, response: _Response, request_id: str, *, truncate: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("X-Toggl-Request-Id", request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if truncate:
            # The promised length is never reached: the client must notice the short read.
            self.wfile.write(response.body[: len(response.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(response.body)


_PROJECT_FIELDS = (
    "workspace_id",
    "project_id",
    "project_name",
    "project_color",
    "project_billable",
    "project_is_private",
    "client_id",
    "client_name",
)
_PROJECTS = tuple(
    dict(zip(_PROJECT_FIELDS, project, strict=True))
    for project in (
        (4_100_001, 201_001, "Website relaunch", "#2da608", True, False, 301, "Acme Corp"),
        (4_100_001, 201_002, "Internal tooling", "#06aaf5", False, True, None, None),
        (4_100_002, 201_003, "Mobile app", "#c9806b", True, False, 302, "Globex GmbH"),
        (4_100_002, 201_004, "Søknad & support", "#9e5bd9", True, False, 303, "Nordlys AS"),
        (4_100_003, 201_005, "研究 (research)", "#d94182", False, False, 304, "東京ラボ"),
        (4_100_003, 201_006, 'The "big" migration', "#525266", True, True, 301, "Acme Corp"),
    )
)
# (user_id, toggl_accounts_id, user_name)
_USERS = ((9_001, "a1c4e5f0b2", "Ada Lovelace"), (9_002, "b7d2f9a4c1", "Grace Hopper"))
_MAKE_TASK_START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def make_task(task_id: int, **overrides: Any) -> dict[str, Any]:
    """A full, realistic task, the same every time for the same id; overrides replace or add."""
    user_id, accounts_id, user_name = _USERS[task_id % 2]
    # A week apart, so a start_date or since in 2024 splits a small fixture into before/after.
    at = _MAKE_TASK_START + timedelta(
        weeks=task_id, seconds=task_id, microseconds=task_id * 34_497 % 1_000_000
    )
    task: dict[str, Any] = {
        "id": task_id,
        "name": f"Task {task_id}",
        "active": True,
        "at": format_at(at),
        **_PROJECTS[task_id % 3],
        "user_id": user_id,
        "toggl_accounts_id": accounts_id,
        "user_name": user_name,
        "avatar_url": f"https://assets.track.toggl.com/avatars/{accounts_id}.png",
        "estimated_seconds": 3600 * (task_id % 4 + 1),
        "tracked_seconds": 90_000 * task_id,  # milliseconds, as Toggl sends them
        "rate": 85.0,
        "rate_last_updated": None,
        "recurring": False,
        # Both documented forms are live: every fixture meets the 2024 string and the 2026 list.
        "permissions": "owner" if task_id % 2 else ["owner"],
        "integration_ext_id": None,
        "integration_ext_type": None,
        "integration_provider": None,
        "due_date": None,
        "external_reference": None,
        "server_deleted_at": None,
    }
    task.update(overrides)
    return task


_DEMO_NAMES = (
    'Café ☕ "launch" prep',
    "Quarterly report",
    "Überprüfung der Verträge",
    "O'Brien's onboarding",
    "Fix <script> & ampersand escaping",
    "日本語ドキュメントの翻訳",
    "Emoji 🚀 rollout",
    "Backlog grooming",
    "Invoice run",
    "Design review",
)
_PROVIDERS = (("jira", "issue", "PROJ-"), ("asana", "task", "12040"), ("salesforce", "case", "500"))


def demo_tasks(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Varied tasks over the past two years, in every shape Toggl is known to send."""
    rng = random.Random(seed)  # demo data, reproducible on purpose
    now = datetime.now(UTC)
    tasks = []
    for task_id in range(1, count + 1):
        moment = now - timedelta(seconds=rng.uniform(60, 2 * 365 * 86_400))
        form = rng.random()
        if form < 0.7:
            at = format_at(moment)
        elif form < 0.9:
            at = moment.isoformat()  # "+00:00", as Toggl writes its other timestamps
        else:
            at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assigned = rng.random() < 0.85
        user_id, accounts_id, user_name = rng.choice(_USERS)
        task = make_task(
            task_id,
            name=f"{rng.choice(_DEMO_NAMES)} #{task_id}",
            active=rng.random() < 0.8,
            at=at,
            **rng.choice(_PROJECTS),
            user_id=user_id if assigned else None,
            toggl_accounts_id=accounts_id if assigned else None,
            user_name=user_name if assigned else None,
            avatar_url=None,
            estimated_seconds=rng.choice((None, 1800, 3600, 7200, 28_800)),
            tracked_seconds=rng.randrange(0, 40 * 3_600_000, 1000),
            rate=rng.choice((0.0, 60.0, 85.5, 120.0)),
            rate_last_updated=rng.choice((None, format_at(now - timedelta(days=400)))),
            recurring=rng.random() < 0.1,
            permissions=rng.choice(("owner", ["owner"], ["edit", "view"])),
            due_date=rng.choice((None, None, (now + timedelta(days=30)).strftime("%Y-%m-%d"))),
        )
        if rng.random() < 0.15:
            provider, kind, prefix = rng.choice(_PROVIDERS)
            task.update(
                integration_provider=provider,
                integration_ext_type=kind,
                integration_ext_id=f"{prefix}{rng.randrange(100, 9999)}",
                external_reference=f"https://{provider}.example.com/{prefix}{task_id}",
            )
        if rng.random() < 0.05:
            task["color_hint"] = "x"  # a field no schema knows yet
        tasks.append(task)
    return tasks


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
