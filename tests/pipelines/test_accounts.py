"""The README's Meltano recipes, as written there: several accounts, and the seconds stream map."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_toggl_tasks.settings import LOOKBACK_SECONDS
from tests.support.meltano import Meltano, meltano_env
from tests.support.plugins import install_plugins
from tests.support.project import ROOT, make_project
from tests.support.warehouse import duckdb_rows
from toggl_standin.demo_data import make_task, parse_at
from toggl_standin.server import TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
ACME_TOKEN = "tok-acme-never-print-me"
GLOBEX_TOKEN = "tok-globex-never-print-me"


def readme_yaml(section: str) -> dict[str, Any]:
    """The first yaml block under the heading that starts with `section`, in README or docs/."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(doc.read_text(encoding="utf-8") for doc in docs)
    body = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", body, re.DOTALL)
    assert block, f"the README's section {section!r} has no yaml block"
    parsed: dict[str, Any] = yaml.safe_load(block.group(1))
    return parsed


def test_two_accounts_keep_their_own_state_and_tracked_seconds_become_seconds(
    tmp_path: Path,
) -> None:
    install_plugins("tap-toggl-tasks", "target-duckdb")  # Meltano itself, and a warm cache
    folder = make_project(
        tmp_path / "project",
        readme_yaml("Several Toggl accounts"),
        readme_yaml("`tracked_seconds` in seconds"),
    )
    acme_tasks = [make_task(i, tracked_seconds=1_234_567 * i) for i in range(1, 31)]
    globex_tasks = [make_task(i, tracked_seconds=None if i % 2 else 999) for i in range(31, 71)]
    with (
        TogglServer(acme_tasks, api_token=ACME_TOKEN) as acme,
        TogglServer(globex_tasks, api_token=GLOBEX_TOKEN) as globex,
    ):
        env = meltano_env(
            acme,
            TAP_TOGGL_TASKS__ACME_API_URL=acme.url,
            TAP_TOGGL_TASKS__ACME_API_TOKEN=ACME_TOKEN,
            TAP_TOGGL_TASKS__GLOBEX_API_URL=globex.url,
            TAP_TOGGL_TASKS__GLOBEX_API_TOKEN=GLOBEX_TOKEN,
        )
        # Only the accounts' own settings: the parent's would be a fallback for both.
        del env["TAP_TOGGL_TASKS_API_TOKEN"], env["TAP_TOGGL_TASKS_API_URL"]
        meltano = Meltano(env, cwd=folder, secrets=(ACME_TOKEN, GLOBEX_TOKEN))
        meltano("install", "tap-toggl-tasks--acme", "tap-toggl-tasks--globex", "target-duckdb")
        run = (
            "run",
            *("tap-toggl-tasks--acme", "target-duckdb"),
            *("tap-toggl-tasks--globex", "target-duckdb"),
        )

        meltano(*run)

        rows = {row["id"]: row for row in duckdb_rows(folder / "output" / "warehouse.duckdb")}
        servers = {**acme.tasks, **globex.tasks}
        assert sorted(rows) == sorted(servers)
        for task_id, task in servers.items():
            ms = task["tracked_seconds"]
            assert rows[task_id]["tracked_seconds"] == (None if ms is None else ms // 1000)
        assert sorted(meltano("state", "list").split()) == [
            "dev:tap-toggl-tasks--acme-to-target-duckdb",
            "dev:tap-toggl-tasks--globex-to-target-duckdb",
        ]

        acme.modify(3, name="acme changed")
        acme_before, globex_before = len(acme.requests), len(globex.requests)
        meltano(*run)

        # Each account resumed from its own bookmark (when its own first sync began, later than
        # its newest task), in whole seconds less the lookback: acme's a page of its one changed
        # task, the empty page after it and the changes without per_page; globex's one, empty.
        for server, requests in ((acme, 3), (globex, 1)):
            before = acme_before if server is acme else globex_before
            newest = max(
                parse_at(task["at"])
                for task in server.tasks.values()
                if task["id"] != 3 and parse_at(task["at"]) < datetime.now(UTC)
            )
            since = {r.params.get("since") for r in server.requests[before:]}
            assert len(server.requests) - before == requests
            assert len(since) == 1
            assert int(since.pop() or 0) >= math.floor(newest.timestamp()) - LOOKBACK_SECONDS
        landed = {row["id"]: row for row in duckdb_rows(folder / "output" / "warehouse.duckdb")}
        assert landed[3]["name"] == "acme changed"
