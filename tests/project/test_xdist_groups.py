"""tests/support/xdist_groups.py: under `--dist loadgroup`, a module marked as a group runs on one
worker (pytest-xdist 3.8 alone scatters it under pytest 9)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.environment import clean_environ
from tests.support.processes import run
from tests.support.project import ROOT

GROUPED = """
import os, pytest
pytestmark = pytest.mark.xdist_group(__name__)

@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    with open("workers.txt", "a") as f:
        f.write(f"grouped {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("n", range(6))
def test_free(n):
    pass
"""


def test_a_grouped_modules_tests_all_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    done = run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *(
                "-p",
                "tests.support.xdist_groups",
                "-n",
                "3",
                "--dist",
                "loadgroup",
                "test_grouped.py",
            ),
        ],
        cwd=tmp_path,
        env=clean_environ(PYTHONPATH=str(ROOT)),
        timeout=120,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "12 passed" in done.stdout
    workers = (tmp_path / "workers.txt").read_text().splitlines()
    assert len(workers) == 6
    assert len(set(workers)) == 1, f"the group ran on {sorted(set(workers))}"
