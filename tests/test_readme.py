"""The README's promises that can drift from the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def test_settings_table_matches_about_output() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_toggl_tasks", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    settings_table = about.split("## Settings", 1)[1]

    readme = (ROOT / "README.md").read_text()

    assert table_rows(settings_table)
    for row in table_rows(settings_table):
        assert row in readme, f"README's settings table lacks or differs on: {row}"
