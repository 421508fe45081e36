"""Every fault at every page: the sync either loads every task as on the server, or stops
promptly with its documented message — and never emits a STATE that lets a later run skip one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tap_runs import SECRETS, bookmarks_in, config_for, run_tap
from tests.support.warehouse_model import as_emitted, newest_by_id
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer

NO_WAIT = {"Retry-After": "0"}
QUOTA_NOW = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "0"}

# fault, and the message the run must stop with (None: it must recover and load everything)
FAULTS: dict[str, tuple[Fault, str | None]] = {
    "429-retry-after": (Fault(status=429, headers=NO_WAIT), None),
    "429-html-no-retry-after": (Fault(status=429), None),
    "402-quota": (Fault(status=402, headers=QUOTA_NOW), None),
    "500": (Fault(status=500, headers=NO_WAIT), None),
    "502-html": (Fault(status=502, headers=NO_WAIT, body="<html>Bad gateway</html>"), None),
    "503": (Fault(status=503, headers=NO_WAIT), None),
    "dropped-connection": (Fault(drop=True), None),
    "truncated-body": (Fault(truncate=True), None),
    "garbled-json": (Fault(body="[{"), None),
    "slower-than-timeout": (Fault(delay=2.5), None),
    "401": (Fault(status=401), "Toggl refused the credentials"),
    "403": (Fault(status=403), "Toggl refused the credentials"),
    "400": (Fault(status=400, body='"Invalid include_not_active"'), "Toggl rejected the request"),
    "402-no-quota-headers": (Fault(status=402), "paid Toggl Track feature"),
    "404": (Fault(status=404), "Check the api_url setting"),
    "not-a-task-list": (Fault(body='{"error": "nope"}'), "not a list of tasks"),
}


@pytest.mark.parametrize("page", [1, 2, 3])
@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_on_any_page_loads_everything_or_stops_cleanly(
    tmp_path: Path, name: str, page: int
) -> None:
    fault, message = FAULTS[name]
    with TogglServer([make_task(i) for i in range(1, 26)]) as toggl:
        toggl.fault_at(page, fault)
        config = config_for(toggl, api_token=toggl.api_token, page_size=10, request_timeout=1)
        config["max_quota_wait_seconds"] = 60
        run = run_tap(config, tmp_path, env={"TAP_TOGGL_TASKS_LOGLEVEL": "DEBUG"})
        truth = {task_id: as_emitted(task) for task_id, task in toggl.tasks.items()}

    if message is None:
        assert run.returncode == 0, run.stderr
        assert newest_by_id(run.records) == truth
        assert len(run.records) == 25  # nothing fetched twice
        # the bookmark is when the sync began, by Toggl's clock: after every `at` it read
        assert run.bookmark is not None
        assert run.bookmark >= max(r["at"] for r in run.records)
    else:
        assert run.returncode == 1
        assert message in run.error
        assert len(toggl.requests) == page  # nothing retried that cannot succeed...
        assert "waiting" not in run.stderr  # ...nor waited for
        assert bookmarks_in(run) <= {None}
    assert "Authorization" not in run.stderr
    assert all(secret not in run.stdout + run.stderr for secret in SECRETS)


CHANGES = {
    "insert": lambda s: s.add(name="inserted"),
    "modify-read-task": lambda s: s.modify(2, name="modified"),
    "modify-unread-task": lambda s: s.modify(24, name="modified"),
    "mark-done": lambda s: s.mark_done(3),
    "delete-read-task": lambda s: s.delete(4),
    "delete-unread-task": lambda s: s.delete(23),
}


@pytest.mark.parametrize("page", [2, 3])
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_between_pages_reaches_the_warehouse_by_the_next_run(
    tmp_path: Path, change: str, page: int
) -> None:
    # 35 tasks, 10 a page: pages at offsets 0, 9, 18 and 27, so page 3 is not the last
    with TogglServer([make_task(i) for i in range(1, 36)]) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        fired: list[int] = []

        def changing(server: TogglServer) -> None:
            fired.append(len(server.requests))
            CHANGES[change](server)

        toggl.fault_at(page, Fault(before=changing))
        during = run_tap(config, tmp_path)  # the change lands between its pages
        made_during = len(toggl.requests)
        after = run_tap(config, tmp_path, state=during.final_state)
        truth = {task_id: as_emitted(task) for task_id, task in toggl.tasks.items()}

    assert fired == [page]
    assert made_during > page  # ...and the run under test went on reading after it
    assert during.returncode == after.returncode == 0
    assert newest_by_id(during.records + after.records) == truth
