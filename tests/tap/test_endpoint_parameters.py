"""The endpoint's filters: what is sent, and what a change of filter does to the bookmark."""

from __future__ import annotations

from pathlib import Path

from tests.support.tap_runs import config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer


def test_hidden_tasks_are_asked_for_and_inbox_logic_is_not(
    server: TogglServer, tmp_path: Path
) -> None:
    run_tap(config_for(server), tmp_path)
    run_tap(config_for(server, include_hidden=False), tmp_path)

    # each run: its page, the empty page after it, the whole list
    first, _, _, second, _, _ = (request.params for request in server.requests)
    assert first["include_hidden"] == "true"
    assert second["include_hidden"] == "false"
    assert "inbox" not in first
    assert "search" not in first


def test_search_loads_only_matching_tasks(tmp_path: Path) -> None:
    tasks = [make_task(1, name="Invoice run"), make_task(2, name="Design review")]
    tasks.append(make_task(3, name="Other", project_name="Invoices 2026"))
    with TogglServer(tasks, api_token="tok") as toggl:
        run = run_tap({"api_token": "tok", "api_url": toggl.url, "search": "invoice"}, tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(record["id"] for record in run.records) == [1, 3]
    assert toggl.requests[0].params["search"] == "invoice"


def test_a_changed_search_syncs_everything_once_then_incrementally(
    server: TogglServer, tmp_path: Path
) -> None:
    server.modify(3, name="Invoice run")
    server.modify(4, name="Invoice check")
    first = run_tap(config_for(server, search="run"), tmp_path)
    assert [record["id"] for record in first.records] == [3]

    changed = run_tap(config_for(server, search="invoice"), tmp_path, state=first.final_state)
    again = run_tap(config_for(server, search="invoice"), tmp_path, state=changed.final_state)

    assert changed.returncode == 0, changed.stderr
    # Task 4 is older than the bookmark: only a sync without `since` can bring it.
    assert sorted(record["id"] for record in changed.records) == [3, 4]
    # each run of three requests: a page, the empty page after it, the whole list
    assert not any("since" in r.params for r in server.requests[3:6])
    assert any(
        "The filters changed since the bookmark" in line for line in changed.stderr.splitlines()
    )
    assert all("since" in r.params for r in server.requests[6:])
    assert changed.final_state["bookmarks"]["tasks"]["filters"]["search"] == "invoice"
    assert again.records == [] or {record["id"] for record in again.records} <= {3, 4}


def test_an_ordinary_sync_logs_no_warning(server: TogglServer, tmp_path: Path) -> None:
    first = run_tap(config_for(server), tmp_path)
    second = run_tap(config_for(server), tmp_path, state=first.final_state)

    for run in (first, second):
        assert run.returncode == 0, run.stderr
        assert [line for line in run.stderr.splitlines() if "WARNING" in line] == []
