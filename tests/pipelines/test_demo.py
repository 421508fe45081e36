"""`scripts/demo`, the README's main job, run the ways a new user would, on a fresh clone:
without a token (the demo tasks, and the project hours dbt builds from them, as a table and a
chart), then with a token in the environment, then in `.env`; and the README's queries on every
warehouse file it made, with the loader's DuckDB and a current one."""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.changes import change_the_account
from tests.support.environment import clean_environ
from tests.support.meltano import API_TOKEN
from tests.support.plugins import install_plugins
from tests.support.processes import run
from tests.support.project import MELTANO_BIN, ROOT
from tests.support.project_hours import expected_project_hours
from tests.support.readme_walk import copy_repository
from tests.support.warehouse import assert_warehouse_matches, awkward_tasks, duckdb_rows
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
# Every SQL the README and docs/ feed DuckDB, as `duckdb ... <<'SQL'` here-documents in their sh
# blocks (not the dbt models docs/dbt.md writes with `cat > ... <<'SQL'`, which only dbt compiles).
README_QUERIES = [
    query
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for query in re.findall(
        r"^duckdb [^\n]*<<'SQL'\n(.*?)\nSQL\n",
        doc.read_text(encoding="utf-8"),
        re.DOTALL | re.MULTILINE,
    )
]
RUN_QUERY = """
import sys, duckdb
with duckdb.connect(sys.argv[1], read_only=True) as db:
    print(duckdb.__version__, len(db.sql(sys.argv[2]).fetchall()))
"""
# What ends a row of the project-hours table after its hours: a bar of eighths of a block.
BAR_CHARACTERS = "█▏▎▍▌▋▊▉ "


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone, sharing only the checkout's Meltano installation (not its plugins)."""
    install_plugins()  # Meltano itself, in .meltano-venv
    clone = copy_repository(ROOT, tmp_path_factory.mktemp("clone"))
    (clone / ".meltano-venv").symlink_to(MELTANO_BIN.parent)
    return clone


@pytest.fixture(scope="module")
def toggl() -> Iterator[TogglServer]:
    """The user's Toggl account, for the runs with a token."""
    with TogglServer(demo_tasks(300) + awkward_tasks(), api_token=API_TOKEN) as server:
        yield server


def run_demo(clone: Path, **env: str) -> str:
    done = run([str(clone / "scripts" / "demo")], cwd=clone, env=clean_environ(**env), timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for token in ("demo-token", API_TOKEN):
        assert token not in done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def no_token_report(clone: Path) -> str:
    """What the demo prints the first time a new user runs it, with no token anywhere."""
    return run_demo(clone)


def loaded(report: str) -> int:
    found = re.search(r"this run loaded (\d+) new or changed tasks", report)
    assert found, report
    return int(found.group(1))


def test_without_a_token_the_demo_loads_the_demo_tasks_then_only_what_changed(
    clone: Path, no_token_report: str
) -> None:
    served = demo_tasks(500)
    active = sum(1 for task in served if task["active"])

    first = no_token_report

    assert first.startswith(
        "Using the local Toggl stand-in with 500 demo tasks: no token in the environment or in "
        ".env.\n"
    )
    assert "Warehouse: output/demo.duckdb, table toggl.tasks" in first
    assert loaded(first) == 500
    assert f"it holds 500 tasks: {active} active, {500 - active} done, 0 deleted" in first
    assert '"replication_key":"at"' in first
    assert len(duckdb_rows(clone / "output" / "demo.duckdb")) == 500
    # The tap warns of nothing on a healthy run: the stand-in sends no field the schema lacks.
    # (Meltano's own `No state was found, complete import.` is a warning on every first run.)
    log = (clone / "output" / "meltano-run.log").read_text(encoding="utf-8")
    assert not re.findall(r".*\[(?:warning|error)\s*\] (?!meltano ).*", log)
    assert "No state was found" in log

    second = run_demo(clone)

    # The stand-in's newest task is a day old, older than the bookmark: nothing changed.
    assert loaded(second) == 0, "the second run was not incremental"
    assert "it holds 500 tasks" in second


def shape(report: str) -> list[str]:
    """The report's lines with what changes from run to run masked: numbers, the opaque ids."""
    lines = [line for line in report.splitlines() if not line.startswith("Installing ")]
    lines = [re.sub(r'"known_ids":"[^"]*"', '"known_ids":"..."', line) for line in lines]
    return [re.sub(r"\d+", "0", line).rstrip() for line in lines]


def test_the_readme_shows_what_the_first_demo_run_prints(no_token_report: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = re.search(r"the first run prints:\n\n```text\n(.*?)\n```", readme, re.DOTALL)
    assert sample, "the README shows no output of the demo's first run"

    assert shape(sample.group(1)) == shape(no_token_report.strip("\n"))


def terminal_columns(text: str) -> int:
    """Columns a terminal gives the text: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def test_without_a_token_the_demo_shows_project_hours_aligned_and_draws_a_chart(
    clone: Path, no_token_report: str
) -> None:
    shown = no_token_report.split("Hours per project:", 1)[1]
    served = demo_tasks(500)
    expected = expected_project_hours({task["id"]: task for task in served})
    lines = []
    for project in expected.values():
        line = next(line for line in shown.splitlines() if project["project_name"] in line)
        numbers = line.split(project["client_name"] or "-", 1)[1].split()
        assert numbers[:3] == [
            str(project["open_tasks"]),
            str(project["done_tasks"]),
            f"{project['hours_tracked']:.1f}",
        ], line
        lines.append(line)
    # Every row's hours end in the same terminal column, wide CJK names included.
    assert len({terminal_columns(line.rstrip(BAR_CHARACTERS)) for line in lines}) == 1, shown
    assert "the same as a chart: output/demo-project-hours.svg (open it in a browser)" in shown
    svg = html.unescape((clone / "output" / "demo-project-hours.svg").read_text(encoding="utf-8"))
    assert all(project["project_name"] in svg for project in expected.values())


def test_with_a_token_in_the_environment_the_demo_loads_the_account(
    clone: Path, toggl: TogglServer
) -> None:
    report = run_demo(clone, TAP_TOGGL_TASKS_API_TOKEN=API_TOKEN, TAP_TOGGL_TASKS_API_URL=toggl.url)

    assert report.startswith(
        f"Using your Toggl account at {toggl.url}: TAP_TOGGL_TASKS_API_TOKEN is set in the "
        "environment.\n"
    )
    assert "Warehouse: output/warehouse.duckdb, table toggl.tasks" in report
    assert loaded(report) == len(toggl.tasks)
    assert_warehouse_matches(duckdb_rows(clone / "output" / "warehouse.duckdb"), toggl.tasks)


def test_with_a_token_in_dotenv_the_demo_loads_what_changed(
    clone: Path, toggl: TogglServer
) -> None:
    """After the run with the token exported: the same account, now with its token in .env."""
    (clone / ".env").write_text(f"TAP_TOGGL_TASKS_API_TOKEN={API_TOKEN}\n")
    change_the_account(toggl)

    report = run_demo(clone, TAP_TOGGL_TASKS_API_URL=toggl.url)

    assert report.startswith(
        f"Using your Toggl account at {toggl.url}: .env sets its token (meltano config set puts "
        "it there).\n"
    )
    assert "Warehouse: output/warehouse.duckdb, table toggl.tasks" in report
    # The four changes, and the few tasks at or after the bookmark: not the whole account.
    assert 4 <= loaded(report) < len(toggl.tasks) // 10, "the run did not resume from the bookmark"
    assert_warehouse_matches(duckdb_rows(clone / "output" / "warehouse.duckdb"), toggl.tasks)


@pytest.mark.parametrize("warehouse", ["demo.duckdb", "warehouse.duckdb"])
@pytest.mark.parametrize("duckdb_of", ["the loader", "a current DuckDB"])
def test_the_readme_queries_work_on_every_warehouse_file(
    clone: Path, warehouse: str, duckdb_of: str
) -> None:
    path = clone / "output" / warehouse
    if not path.exists():
        pytest.fail(f"{warehouse} is made by the demo tests above; run them too")
    python = {
        # The duckdb pinned in target-duckdb's pip_url, which wrote the file.
        "the loader": clone / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python",
        # The tests' own duckdb (`duckdb>=1.2.2`): the newest release when it was installed.
        "a current DuckDB": Path(sys.executable),
    }[duckdb_of]
    assert README_QUERIES, "neither the README nor docs/ shows a DuckDB query"
    for query in README_QUERIES:
        done = run([str(python), "-c", RUN_QUERY, str(path), query], timeout=120)
        assert done.returncode == 0, f"{query}\n{done.stderr[-2000:]}"
        version, rows = done.stdout.split()
        assert int(rows) > 0, f"duckdb {version}: no rows from\n{query}"
