"""`python -m toggl_standin`, the stand-in users start to try the tap without a Toggl account."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from tests.support.project import ROOT


@contextmanager
def standin(tmp_path: Path, *arguments: str) -> Iterator[str]:
    """The stand-in as a process, as users start it; its API URL once it listens."""
    ready = tmp_path / "toggl-url"
    ready.unlink(missing_ok=True)  # a stand-in started before left its own
    server = subprocess.Popen(
        [sys.executable, "-m", "toggl_standin", "--ready-file", str(ready), *arguments],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if ready.exists() or server.poll() is not None:
                break
            with suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.05)
        assert ready.exists(), "the stand-in did not start"
        yield ready.read_text()
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0, "SIGTERM should stop the stand-in cleanly"


DEMO_TOKEN = "demo-token"  # the stand-in's default: nothing secret


def get_tasks(url: str, token: str = DEMO_TOKEN) -> requests.Response:
    auth = base64.b64encode(f"{token}:api_token".encode()).decode()
    return requests.get(
        f"{url}/me/tasks",
        params={"include_not_active": "true"},
        headers={"Authorization": f"Basic {auth}"},
        timeout=10,
    )


def test_help_names_the_command_and_explains_every_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toggl_standin", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert done.stdout.startswith("usage: python -m toggl_standin ")
    assert "TAP_TOGGL_TASKS_API_URL" in done.stdout
    for option in ("--tasks", "--api-token", "--port", "--quota", "--quota-resets-in", "--fault"):
        explained = done.stdout.split(f"\n  {option} ", 1)
        assert len(explained) == 2, f"{option} is not explained"
        assert explained[1].split("\n  -", 1)[0].strip(), f"{option} has no help"


def test_the_demo_tasks_carry_no_field_the_schema_lacks_unless_asked(tmp_path: Path) -> None:
    with standin(tmp_path, "--tasks", "500") as url:
        plain = get_tasks(url).json()
    with standin(tmp_path, "--tasks", "500", "--unknown-field") as url:
        unknown = get_tasks(url).json()

    assert len(plain) == len(unknown) == 500
    assert not [task for task in plain if "color_hint" in task]
    assert [task for task in unknown if "color_hint" in task]
    # The same tasks otherwise (their times are relative to when each server started).
    same = ("id", "name", "active", "project_id", "tracked_seconds")
    assert [[t[k] for k in same] for t in plain] == [[t[k] for k in same] for t in unknown]


def test_faults_answer_the_requests_they_name_and_the_token_is_checked(tmp_path: Path) -> None:
    with standin(tmp_path, "--tasks", "3", "--fault", "1=503:7", "--fault", "3=429") as url:
        answers = [get_tasks(url) for _ in range(4)]
        wrong_token = get_tasks(url, token="not-the-token")

    assert [answer.status_code for answer in answers] == [503, 200, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert "Retry-After" not in answers[2].headers
    assert len(answers[1].json()) == 3
    assert wrong_token.status_code == 403


def test_a_quota_answers_402_with_toggls_headers_once_used_up(tmp_path: Path) -> None:
    with standin(tmp_path, "--tasks", "3", "--quota", "1", "--quota-resets-in", "900") as url:
        allowed, refused = get_tasks(url), get_tasks(url)

    assert allowed.status_code == 200
    assert refused.status_code == 402
    assert json.loads(refused.text) == "Quota exceeded"
    assert refused.headers["X-Toggl-Quota-Remaining"] == "0"
    assert 0 < int(refused.headers["X-Toggl-Quota-Resets-In"]) <= 900


def test_a_fault_it_cannot_read_is_refused_with_the_forms_it_takes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toggl_standin", "--fault", "503"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "write REQUEST=STATUS, REQUEST=STATUS:RETRY_AFTER or REQUEST=drop" in done.stderr
