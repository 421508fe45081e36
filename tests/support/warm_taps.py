"""Tap processes forked from one that has already imported the tap.

A fresh interpreter spends ~0.4 s of CPU importing the SDK before the tap does anything, and the
tests start hundreds of taps: on two cores that import was most of the fast suite. Here one
process per test worker (the fork server) imports the tap once; each run is a child forked from
it, which then becomes what `python -c TAP_PROGRAM ARGS` (the command's `main()`) is under
subprocess: a process of its own (pid, signals, exit status), with the working directory,
environment, stdin, stdout and stderr it is given, `-c`'s `sys.argv[0]` and `sys.path` (so
python-dotenv searches from the working directory), its own random seed. What it shares with the
other runs is what was imported before the fork, and nothing else.

    fork server ──fork──▶ waiter ──fork──▶ the tap (pid sent back; the waiter sends its status)

Runs whose environment decides how an interpreter starts or what C libraries see (PYTHON*,
LD_PRELOAD, FAKETIME, locale, TZ) are not forked: the caller starts those cold, as it does every
run off Linux (the server's socket is a Linux AF_UNIX SOCK_SEQPACKET one).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, NoReturn

from tap_toggl_tasks.__main__ import main
from tap_toggl_tasks.tap import TapTogglTasks  # noqa: F401 - imported once, before any fork
from tests.support.environment import clean_environ
from tests.support.project import ROOT

# Variables read when an interpreter or the C library starts: a forked run could not honour them.
STARTUP_VARIABLES = ("PYTHON", "LD_", "FAKETIME", "LANG", "LC_", "TZ")

SERVER_PROGRAM = "from tests.support.warm_taps import serve; serve()"


def forkable(env: dict[str, str]) -> bool:
    """Whether a run with this environment behaves forked as it would started cold."""
    if sys.platform != "linux":
        return False
    base = clean_environ()
    changed = {k for k in env.keys() | base.keys() if env.get(k) != base.get(k)}
    return not any(name.startswith(STARTUP_VARIABLES) for name in changed)


def serve() -> None:
    """The fork server: `python -c SERVER_PROGRAM`, its socket's path on stdin's first line.

    It stops when stdin closes (the test worker that started it is gone)."""
    path = sys.stdin.readline().strip()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    gc.freeze()  # as the command does (tap_toggl_tasks/__main__.py); each fork shares them
    os.write(1, b"ready\n")
    while True:
        _reap_waiters()  # so that their runs' CPU time counts in the test worker's
        readable, _, _ = select.select([listener.fileno(), 0], [], [], 1.0)
        if 0 in readable:
            return  # EOF: nobody will ask again
        if not readable:
            continue
        connection, _ = listener.accept()
        request, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        if os.fork() == 0:
            listener.close()
            _run_and_report(connection, json.loads(request), fds)
        connection.close()
        for fd in fds:
            os.close(fd)


def _run_and_report(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> NoReturn:
    """The waiter: forks the tap, sends back its pid, then its exit status, and ends."""
    pid = os.fork()
    if pid == 0:
        connection.close()
        _become_the_tap(request, fds)
        main()  # the command's own; its SystemExit ends this process as a cold one's
        raise SystemExit(0)
    for fd in fds:
        os.close(fd)
    connection.send(str(pid).encode())
    _, status = os.waitpid(pid, 0)
    connection.send(str(os.waitstatus_to_exitcode(status)).encode())
    os._exit(0)


def _reap_waiters() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass  # none left


def _become_the_tap(request: dict[str, Any], fds: list[int]) -> None:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-c", *request["args"]]
    random.seed()


class ForkedTap:
    """One forked run, as much of `subprocess.Popen` as the tests use."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.pid = int(connection.recv(64))
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._connection.settimeout(timeout)
            try:
                answer = self._connection.recv(64)
            except TimeoutError:
                raise subprocess.TimeoutExpired("tap-toggl-tasks", timeout or 0) from None
            self.returncode = int(answer)
            self._connection.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """This test worker's fork server, started on first use and stopped when the worker ends."""

    def __init__(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="warm-taps-")
        self._path = str(Path(self._folder) / "socket")
        self._log = Path(self._folder, "server.log").open("wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-c", SERVER_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # a pipe, as under capture_output: stdout block-buffered
            stderr=self._log,
            cwd=ROOT,
            env=clean_environ(),
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"{self._path}\n".encode())
        self._process.stdin.flush()
        if self._process.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the fork server did not start: see {self._log.name}")
        atexit.register(self.stop)

    def start(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        stdin: IO[Any],
        stdout: IO[Any],
        stderr: IO[Any],
    ) -> ForkedTap:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.connect(self._path)
        request = json.dumps({"args": args, "cwd": str(cwd), "env": env}).encode()
        socket.send_fds(connection, [request], [f.fileno() for f in (stdin, stdout, stderr)])
        return ForkedTap(connection)

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)
        self._log.close()
        for name in ("socket", "server.log"):
            Path(self._folder, name).unlink(missing_ok=True)
        Path(self._folder).rmdir()


_server: ForkServer | None = None


def fork_server() -> ForkServer:
    global _server  # noqa: PLW0603 - one per test worker, for as long as it lives
    if _server is None:
        _server = ForkServer()
    return _server
