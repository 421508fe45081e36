"""A local stand-in for Toggl Track's `GET /api/v9/me/tasks`, with its quirks and scriptable faults.

Tests and the README demo talk to it over real HTTP on loopback, so the tap's whole network
stack (sessions, timeouts, retries, body decoding) is exercised, not a mock of it.

Run it by hand with `python -m toggl_standin --tasks 500 --port 0 --api-token demo-token`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import random
import re
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
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from toggl_standin.demo_data import format_at, make_task, parse_at

TASKS_PATH = "/api/v9/me/tasks"
META_FIELDS = ("project_name", "project_color", "project_billable", "client_name")
JSON = "application/json"
DEFAULT_API_TOKEN = "test-token"
DEFAULT_PASSWORD = "test-password"
# How far back Toggl accepts `since`: "API will fail when asking for >3 months ago" (Toggl staff).
SINCE_WINDOW = timedelta(days=90)
# How the list is sorted: Toggl documents no order, so the tests try several.
ORDERS = ("id", "at", "at_desc", "name", "ties")
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
    # When it arrived, by this process's monotonic clock: tests measure the tap's waits as the gaps
    # between its requests, as Toggl would see them.
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """How to misbehave on one request, instead of (or on top of) the normal answer."""

    status: int = 200
    body: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    before: Callable[[TogglServer], object] | None = None


@dataclass
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


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
        clock_offset: timedelta = timedelta(0),
        max_per_page: int | None = None,
        since_window: timedelta | None = SINCE_WINDOW,
        old_since: str = "refuse",
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        self.tasks: dict[int, dict[str, Any]] = {int(t["id"]): dict(t) for t in tasks}
        self.requests: list[RecordedRequest] = []
        # Toggl's clock: `at` of every write and the `Date` header; it may run ahead or behind.
        self.clock_offset = clock_offset
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC) + self.clock_offset
        # Toggl's own page size limit, if any: it then sends fewer rows than per_page asks.
        self.max_per_page = max_per_page
        # A cap on every answer, those without per_page too (Toggl documents "default is all").
        self.max_answer: int | None = None
        # Toggl fails a `since` older than about three months (by its own clock): with a 400,
        # or, as it has answered out-of-range dates elsewhere, with an empty list.
        if old_since not in ("refuse", "empty"):
            raise ValueError(f"old_since must be 'refuse' or 'empty', not {old_since!r}")
        self.since_window = since_window
        self.old_since = old_since
        # writes stamped already but not yet shown: (requests answered before they show, id, task)
        self._late: list[tuple[int, int, dict[str, Any]]] = []
        self.quota_remaining = quota
        self.quota_resets_in = 3600
        self.order = order
        # Ties (order "ties") come back in another order on every request, as SQL's ORDER BY on
        # a key many rows share does; seeded, so that a test can be rerun.
        self._shuffle = random.Random(0)
        # What the page goes through after LIMIT, if anything: (request number, rows) -> rows.
        # Rows filtered out after LIMIT, a row listed twice by a join that fans out, a cap that
        # changes from page to page...
        self.after_limit: Callable[[int, list[dict[str, Any]]], list[dict[str, Any]]] | None = None
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

    def modify_late(self, task_id: int, after_requests: int, **fields: Any) -> dict[str, Any]:
        """An edit stamped now that Toggl shows only from the `after_requests`-th request on
        (counting the one being answered as 0)."""
        with self._lock:
            task = {**self.tasks[task_id], **fields, "at": format_at(self.clock())}
            self._late.append((len(self.requests) + after_requests, task_id, task))
            return dict(task)

    def show_late_writes(self) -> None:
        """Show every write still hidden, as Toggl eventually does."""
        with self._lock:
            self._show_late(until=None)

    def _show_late(self, until: int | None) -> None:
        waiting = []
        for shows_at, task_id, task in self._late:
            if until is None or shows_at <= until:
                self.tasks[task_id] = task
            else:
                waiting.append((shows_at, task_id, task))
        self._late = waiting

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
            self._show_late(until=len(self.requests))
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

    def _too_old(self, since: int) -> bool:
        if self.since_window is None:
            return False
        return since < (self.clock() - self.since_window).timestamp()

    def _sort(self, rows: list[dict[str, Any]]) -> None:
        if self.order == "ties":
            # ORDER BY the minute of `at`: tasks of one minute tie, in any order.
            self._shuffle.shuffle(rows)
            rows.sort(key=lambda task: parse_at(task["at"]).replace(second=0, microsecond=0))
        elif self.order in ("at", "at_desc"):
            rows.sort(
                key=lambda task: (parse_at(task["at"]), task["id"]), reverse=self.order != "at"
            )
        elif self.order == "name":
            rows.sort(key=lambda task: (str(task.get("name")), task["id"]))
        else:
            rows.sort(key=lambda task: int(task["id"]))

    def _select(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Toggl's filtering and paging; a ValueError names the parameter Toggl would reject."""
        include_not_active = params.get("include_not_active", "false")
        if include_not_active not in ("true", "false"):
            raise ValueError("Invalid include_not_active")
        since = params.get("since")
        if since is not None and not _DIGITS.fullmatch(since.removeprefix("-")):
            raise ValueError("Invalid since")
        if since is not None and self._too_old(int(since)):
            if self.old_since == "empty":
                return []
            raise ValueError("Invalid since: too far in the past")
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
        self._sort(rows)
        start = int(offset)
        limit = None if per_page is None else int(per_page)
        if self.max_per_page is not None and limit is not None:
            limit = min(limit, self.max_per_page)
        if self.max_answer is not None:
            limit = self.max_answer if limit is None else min(limit, self.max_answer)
        end = None if limit is None else start + limit
        meta = params.get("meta") == "true"
        page = rows[start:end]
        if self.after_limit is not None and limit is not None:
            page = self.after_limit(len(self.requests), page)
        return [
            {key: value for key, value in task.items() if meta or key not in META_FIELDS}
            for task in page
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

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header, from Toggl's clock (which may differ from this host's)."""
        assert isinstance(self.server, _TogglHTTPServer)
        return email.utils.format_datetime(self.server.toggl.clock(), usegmt=True)

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
