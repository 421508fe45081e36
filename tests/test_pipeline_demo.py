"""`scripts/demo`, the README's main job, run twice the way a new user would."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.meltano_project import ROOT, duckdb_rows
from tests.toggl_server import demo_tasks

pytestmark = pytest.mark.slow


def run_demo(env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo-token" not in done.stdout + done.stderr
    return done.stdout


def test_demo_loads_the_demo_tasks_then_only_what_changed(tmp_path: Path) -> None:
    if re.search(r"^TAP_TOGGL_TASKS_(API_TOKEN|EMAIL)=", _dotenv(), re.MULTILINE):
        pytest.skip(".env holds a real Toggl token: the demo would read that account")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_TOGGL_", "TARGET_"))}
    # The demo's own state and warehouse, so the test never touches a developer's.
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{tmp_path / 'meltano.db'}"
    env["TARGET_DUCKDB_FILEPATH"] = str(tmp_path / "demo.duckdb")
    served = demo_tasks(500)
    active = sum(1 for task in served if task["active"])

    first = run_demo(env)

    assert "this run loaded 500 new or changed tasks" in first
    assert f"it holds 500 tasks: {active} active, {500 - active} done, 0 deleted" in first
    assert '"replication_key":"at"' in first
    assert len(duckdb_rows(tmp_path / "demo.duckdb")) == 500

    second = run_demo(env)

    loaded = re.search(r"this run loaded (\d+) new or changed tasks", second)
    assert loaded, second
    assert 1 <= int(loaded.group(1)) < 50, "the second run was not incremental"
    assert "it holds 500 tasks" in second


def _dotenv() -> str:
    dotenv = ROOT / ".env"
    return dotenv.read_text(encoding="utf-8") if dotenv.exists() else ""
