"""A sync loads every task, correctly, in as few requests as the data allows."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.tap_runs import EMAIL, PASSWORD, bookmarks_in, config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import Fault, TogglServer


def test_a_first_sync_pages_until_nothing_new_then_checks_the_whole_list(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in run.records) == list(range(1, 26))
    # No `since` (a first sync lists every task). A short page may be a cap of Toggl's: the
    # next page, empty, ends the pages; then one answer without per_page, whole, confirms.
    params = {"include_not_active": "true", "include_hidden": "true", "meta": "true"}
    assert [r.params for r in server.requests] == [
        {**params, "per_page": "5000", "offset": "0"},
        {**params, "per_page": "5000", "offset": "25"},
        params,
    ]


def test_records_keep_toggl_values_in_one_form(tmp_path: Path) -> None:
    task = make_task(
        7,
        name='Café ☕ "launch" prep',
        at="2024-12-16T03:38:02.034497+02:00",
        rate_last_updated="2024-01-02T03:04:05Z",
        permissions="owner",
        tracked_seconds=5_400_000,
        user_id=None,
        client_name=None,
        color_hint="a field this tap does not know yet",
    )
    with TogglServer([task, make_task(8, permissions=["edit", "view"])]) as toggl:
        run = run_tap(config_for(toggl, api_token=toggl.api_token), tmp_path)

    assert run.returncode == 0, run.stderr
    first, second = sorted(run.records, key=lambda r: r["id"])
    assert first["name"] == 'Café ☕ "launch" prep'
    assert first["at"] == "2024-12-16T01:38:02.034497+00:00"
    assert first["rate_last_updated"] == "2024-01-02T03:04:05.000000+00:00"
    assert first["permissions"] == ["owner"]
    assert second["permissions"] == ["edit", "view"]
    assert first["tracked_seconds"] == 5_400_000
    assert first["user_id"] is None
    assert first["client_name"] is None
    assert "color_hint" not in first


def test_schema_says_tracked_seconds_is_milliseconds(server: TogglServer, tmp_path: Path) -> None:
    run = run_tap(config_for(server), tmp_path)

    properties = run.schema["properties"]
    assert "MILLISECONDS" in properties["tracked_seconds"]["description"]
    assert properties["permissions"]["type"] == ["array", "null"]
    assert properties["at"]["format"] == "date-time"
    assert run.messages[0]["type"] == "SCHEMA"
    assert run.messages[0]["key_properties"] == ["id"]
    assert run.messages[0]["bookmark_properties"] == ["at"]


def test_email_and_password_work_too(server: TogglServer, tmp_path: Path) -> None:
    config = config_for(server, api_token=None, email=EMAIL, password=PASSWORD)

    run = run_tap(config, tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 25
    assert server.requests[0].authorized


def test_settings_shape_the_request(server: TogglServer, tmp_path: Path) -> None:
    config = config_for(
        server, include_not_active=False, meta=False, user_agent="acme-elt/2.0", page_size=50
    )

    run = run_tap(config, tmp_path)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == 20  # the five done tasks stay on the server
    assert all("project_name" not in r for r in run.records)
    request = server.requests[0]
    assert request.params["include_not_active"] == "false"
    assert request.params["meta"] == "false"
    assert request.params["per_page"] == "50"
    assert request.user_agent == "acme-elt/2.0"


def test_default_user_agent_names_the_tap(server: TogglServer, tmp_path: Path) -> None:
    run_tap(config_for(server), tmp_path)

    version = metadata.version("tap-toggl-tasks")  # pyproject.toml's, never written in tests
    assert server.requests[0].user_agent == f"tap-toggl-tasks/{version}"


@pytest.mark.parametrize(
    ("task_count", "page_size", "expected_offsets"),
    [
        (25, 10, ["0", "10", "20", "25"]),  # the short page (5 rows) still brought new tasks
        (20, 10, ["0", "10", "20"]),  # an exact fit: the empty page ends them
        (9, 10, ["0", "9"]),  # a short first page may be a cap: one more request
        (0, 10, ["0"]),  # Toggl answers `null` when there is nothing
    ],
)
def test_pages_go_on_until_one_brings_nothing_new(
    tmp_path: Path, task_count: int, page_size: int, expected_offsets: list[str]
) -> None:
    with TogglServer([make_task(i) for i in range(1, task_count + 1)]) as toggl:
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=page_size), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in run.records) == list(range(1, task_count + 1))
    *pages, whole = toggl.requests
    assert [r.params["offset"] for r in pages] == expected_offsets
    assert {r.params["per_page"] for r in pages} == {str(page_size)}
    assert "per_page" not in whole.params  # the check of the whole list
    assert "offset" not in whole.params


@pytest.mark.parametrize("wrapper", ["items", "data"])
def test_a_wrapped_list_is_read_like_a_bare_one(
    server: TogglServer, tmp_path: Path, wrapper: str
) -> None:
    body = json.dumps({wrapper: [{"id": 1, "name": "wrapped", "at": "2025-01-01T00:00:00Z"}]})
    with TogglServer() as toggl:
        toggl.script(Fault(body=body), None, Fault(body=body))  # a page, the end, the whole
        run = run_tap(config_for(toggl, api_token=toggl.api_token), tmp_path)

    assert run.returncode == 0, run.stderr
    assert [r["name"] for r in run.records] == ["wrapped"]
    assert "WARNING" not in run.stderr


def test_a_body_that_is_not_a_task_list_stops_with_the_request_id(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(Fault(body='{"message": "hello"}'))

    run = run_tap(config_for(server), tmp_path)

    assert run.returncode == 1
    assert run.records == []
    assert "not a list of tasks" in run.error
    assert "request id" in run.error


def test_a_server_ignoring_offset_is_read_whole_not_looped(tmp_path: Path) -> None:
    page = '[{"id": 1, "at": "2025-01-01T00:00:00Z"}, {"id": 2, "at": "2025-01-01T00:00:00Z"}]'
    with TogglServer([make_task(i) for i in range(1, 6)]) as toggl:
        toggl.script(*[Fault(body=page)] * 4)  # the first page, whatever the offset
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=2), tmp_path)

    assert run.returncode == 0, run.stderr
    # three full pages with nothing new end the pages; the answers without per_page have all
    assert [r.params.get("offset") for r in toggl.requests] == ["0", "2", "4", "6", None, None]
    assert sorted({r["id"] for r in run.records}) == [1, 2, 3, 4, 5]


def test_a_task_inserted_before_the_offset_is_not_taken_for_a_broken_server(
    tmp_path: Path,
) -> None:
    # page_size 2: page 1 is [2, 3]; a task inserted before it makes page 2 (offset 2) [3, 4]:
    # a shift, not a server ignoring offset. The inserted task comes with the whole list.
    with TogglServer([make_task(i) for i in range(2, 7)]) as toggl:

        def insert(server: TogglServer) -> None:
            server.add(id=1, name="inserted")

        toggl.script(None, Fault(before=insert))
        run = run_tap(config_for(toggl, api_token=toggl.api_token, page_size=2), tmp_path)

    assert run.returncode == 0, run.stderr
    assert sorted(r["id"] for r in run.records) == [1, 2, 3, 4, 5, 6]
    assert [r.params.get("offset") for r in toggl.requests] == ["0", "2", "4", "6", None]


def test_deleted_tasks_reach_the_target_marked_deleted(server: TogglServer, tmp_path: Path) -> None:
    first = run_tap(config_for(server), tmp_path)
    server.delete(3)

    second = run_tap(config_for(server), tmp_path, state=first.final_state)

    assert second.returncode == 0, second.stderr
    deleted = [r for r in second.records if r["id"] == 3]
    assert len(deleted) == 1
    assert deleted[0]["server_deleted_at"] is not None
    assert deleted[0]["server_deleted_at"].endswith("+00:00")


def test_a_task_without_a_readable_timestamp_stops_the_sync(
    server: TogglServer, tmp_path: Path
) -> None:
    server.script(Fault(body='[{"id": 9, "at": "last tuesday"}]'))

    run = run_tap(config_for(server), tmp_path)

    assert run.returncode == 1
    assert "Task 9: its at 'last tuesday' is not a timestamp" in run.error
    assert bookmarks_in(run) <= {None}


def test_test_mode_makes_one_request_and_writes_no_singer_message(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server), tmp_path, args=("--test",))

    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert [r.params["per_page"] for r in server.requests] == ["1"]


def test_test_mode_says_it_passed_without_an_error_line(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server), tmp_path, args=("--test",))

    assert run.returncode == 0, run.stderr
    assert run.errors == []
    assert "Connection test passed" in run.stderr


def test_test_mode_with_a_bad_token_explains_in_one_line(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server, api_token="wrong"), tmp_path, args=("--test",))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.errors == [run.error]
    assert run.error.startswith("Connection test failed. Toggl refused the credentials (HTTP 403")


def test_test_mode_without_credentials_says_what_is_missing(
    server: TogglServer, tmp_path: Path
) -> None:
    run = run_tap(config_for(server, api_token=None), tmp_path, args=("--test",))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.errors == [run.error]
    assert "No credentials: set api_token" in run.error
    assert run.error.endswith("The connection was not tested.")
    assert server.requests == []
