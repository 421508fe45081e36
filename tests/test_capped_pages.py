"""Toggl sending fewer tasks than asked is noticed, said, and costs nothing when nothing changed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer


def test_a_page_cap_is_found_named_and_paged_through(tmp_path: Path) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)], max_per_page=7) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        first_requests = len(toggl.requests)
        quiet = run_tap(config, tmp_path, state=first.final_state)

    assert first.returncode == 0, first.stderr
    assert sorted(r["id"] for r in first.records) == list(range(1, 26))
    # page 1 has 7 rows: one more request finds it was a cap, and paging goes on by 7
    offsets = [r.params["offset"] for r in toggl.requests[:first_requests]]
    assert offsets == ["0", "6", "12", "18", "24"]
    warnings = [line for line in first.stderr.splitlines() if "WARNING" in line]
    assert any(
        "Toggl returned at most 7 tasks per request although page_size asks for 10" in line
        for line in warnings
    )
    assert first.final_state["bookmarks"]["tasks"]["largest_page"] == 7
    # nothing changed: one request, its page smaller than the largest Toggl ever sent
    assert quiet.returncode == 0, quiet.stderr
    assert len(toggl.requests) == first_requests + 1
    assert "caps its pages" not in quiet.stderr
