"""Toggl sending fewer tasks than asked: a short page is not taken for the end by itself."""

from __future__ import annotations

from pathlib import Path

from tests.support.tap_runs import config_for, run_tap
from toggl_standin.demo_data import make_task
from toggl_standin.server import TogglServer


def test_a_page_cap_is_paged_through_and_costs_nothing_when_nothing_changed(
    tmp_path: Path,
) -> None:
    with TogglServer([make_task(i) for i in range(1, 26)], max_per_page=7) as toggl:
        config = config_for(toggl, api_token=toggl.api_token, page_size=10)
        first = run_tap(config, tmp_path)
        first_requests = len(toggl.requests)
        quiet = run_tap(config, tmp_path, state=first.final_state)

    assert first.returncode == 0, first.stderr
    assert sorted(r["id"] for r in first.records) == list(range(1, 26))
    # 7 rows where 10 were asked: maybe a cap, so paging goes on, by 7, to an empty page;
    # then the answer without per_page (which the cap does not touch here).
    offsets = [r.params.get("offset") for r in toggl.requests[:first_requests]]
    assert offsets == ["0", "7", "14", "21", "25", None]
    assert "WARNING" not in first.stderr
    # nothing changed: one request, an empty page
    assert quiet.returncode == 0, quiet.stderr
    assert len(toggl.requests) == first_requests + 1
