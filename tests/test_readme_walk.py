"""README.md, walked: every ```sh block run as written, section by section, on a fresh clone.

A local Toggl-compatible server stands in for Toggl and a private PostgreSQL server for
db.example.com (see tests/readme_walk.py for the conventions). A section fails when one of its
commands fails, when the tap logs a warning, an error or a traceback on the way, when the token
shows in the output, or when a file `git add -A` would commit holds it. Sections run in README
order in one copy, so each finds what the sections before it installed and loaded.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.meltano_project import ROOT, create_database, private_postgres
from tests.readme_walk import (
    POSTGRES_DATABASE,
    TAP_TROUBLE,
    Block,
    StandIns,
    clean_environ,
    copy_repository,
    leaked_into_git,
    readme_blocks,
    run_section,
    sections,
)
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTIONS = sections(readme_blocks(README))
TOKEN = "tok-walk-never-print-me"


@dataclass
class Walk:
    """The fresh clone the README is followed in, and its stand-ins."""

    clone: Path
    env: dict[str, str]
    stand_ins: StandIns


def walk_tasks() -> list[dict[str, object]]:
    """Demo tasks without the demo's unknown field, whose warning is by design."""
    tasks = demo_tasks(1200)
    for task in tasks:
        task.pop("color_hint", None)
    return tasks


def path_outside(root: Path) -> str:
    """PATH without this checkout's virtualenvs: the clone must make its own."""
    return os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if not Path(entry).resolve().is_relative_to(root)
    )


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    clone = copy_repository(ROOT, tmp_path_factory.mktemp("clone"))
    with TogglServer(walk_tasks(), api_token=TOKEN) as toggl, private_postgres() as postgres:
        for database in sorted(set(POSTGRES_DATABASE.findall(README))):
            create_database(postgres, database)
        env = clean_environ(
            PATH=path_outside(ROOT),
            # Toggl itself, for every command that reads the environment (Meltano, --config ENV).
            TAP_TOGGL_TASKS_API_URL=toggl.url,
        )
        stand_ins = StandIns(TOKEN, toggl.url, postgres.removeprefix("postgresql://"))
        yield Walk(clone, env, stand_ins)


@pytest.mark.slow
@pytest.mark.parametrize("section", list(SECTIONS))
def test_readme_section_runs_as_written(walk: Walk, section: str) -> None:
    blocks = SECTIONS[section]
    if all(block.not_run_because for block in blocks):
        pytest.skip("; ".join(f"line {b.line}: {b.not_run_because}" for b in blocks))

    done = run_section(blocks, walk.clone, walk.env, walk.stand_ins)

    assert done.returncode == 0, f"README section {section!r} failed:\n{done.output[-8000:]}"
    trouble = [match.group(0) for match in TAP_TROUBLE.finditer(done.output)]
    assert not trouble, f"README section {section!r}: the tap complained:\n" + "\n".join(trouble)
    assert TOKEN not in done.output, f"README section {section!r} printed the token"
    assert not leaked_into_git(walk.clone, TOKEN), "a file git would commit holds the token"


# Settings that would send the tests elsewhere, if they leaked into them.
WRONG_SETTINGS = {
    "TAP_TOGGL_TASKS_API_TOKEN": "wrong-token-in-dotenv",
    "TAP_TOGGL_TASKS_API_URL": "http://127.0.0.1:9/api/v9",
    "TARGET_DUCKDB_FILEPATH": "/nonexistent/warehouse.duckdb",
    "MELTANO_DATABASE_URI": "sqlite:////nonexistent/meltano.db",
}


@pytest.mark.slow
def test_after_the_walk_the_tests_pass_whatever_the_user_set(walk: Walk) -> None:
    """The clone now holds what a user who followed the README has: a `.env` with tokens, extra
    accounts and a stream map in meltano.yml, installed plugins, warehouses and state. The tests
    must not depend on any of it, nor on a wrong token in `.env` and another one exported."""
    dotenv = walk.clone / ".env"
    kept = [
        line
        for line in dotenv.read_text().splitlines()
        if line.split("=", 1)[0] not in WRONG_SETTINGS
    ]
    dotenv.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in WRONG_SETTINGS.items())]) + "\n")
    env = {**walk.env, "TAP_TOGGL_TASKS_API_TOKEN": "wrong-token-exported"}
    pytest_in_clone = [".venv/bin/pytest", "-q", "-p", "no:cacheprovider"]

    for selection in (
        ["-m", "not slow"],
        # The pipelines the README's edits to meltano.yml used to break.
        ["tests/test_pipeline_duckdb.py", "tests/test_pipeline_accounts.py"],
    ):
        done = subprocess.run(
            [*pytest_in_clone, *selection],
            cwd=walk.clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_every_block_that_is_not_run_says_why() -> None:
    blocks = readme_blocks(README)
    assert blocks, "the README has no sh blocks"
    for block in blocks:
        assert block.not_run_because is None or block.not_run_because.strip(), block


def test_a_failing_command_fails_its_section(tmp_path: Path) -> None:
    blocks = [
        Block("S", 1, "echo first", None),
        Block("S", 5, "false | cat\necho after the failure", None),
        Block("S", 9, "echo never", None),
    ]
    stand_ins = StandIns(TOKEN, "http://127.0.0.1:9", "nobody@127.0.0.1:9")

    done = run_section(blocks, tmp_path, clean_environ(), stand_ins)

    assert done.returncode != 0
    assert "first" in done.output
    assert "after the failure" not in done.output
    assert "never" not in done.output
