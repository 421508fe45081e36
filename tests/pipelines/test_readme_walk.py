"""README.md and docs/, walked: every ```sh block run as written, section by section, on a fresh
clone.

A local Toggl-compatible server stands in for Toggl and a private PostgreSQL server for
db.example.com (see tests/support/readme_walk.py for the conventions). A section fails when one of
its commands fails, when the tap logs a warning, an error or a traceback on the way, when the token
shows in the output, or when a file `git add -A` would commit holds it. Sections run in order
(README.md, then docs/ as readme_walk.documents orders it) in one copy, so each finds what the
sections before it installed and loaded. Then, in that copy, the tests that read the environment and
one pipeline prove that what a user who followed the README has (a `.env`, exported tokens, edits to
meltano.yml) changes no test's outcome.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.environment import clean_environ
from tests.support.postgres import create_database, private_postgres
from tests.support.processes import run
from tests.support.project import ROOT
from tests.support.readme_walk import (
    NOT_RUN,
    POSTGRES_DATABASE,
    TAP_TROUBLE,
    Block,
    StandIns,
    copy_repository,
    documents,
    leaked_into_git,
    readme_blocks,
    run_section,
    sections,
)
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer

DOCUMENTS = {name: (ROOT / name).read_text(encoding="utf-8") for name in documents(ROOT)}
SECTIONS = sections([b for name, text in DOCUMENTS.items() for b in readme_blocks(text, name)])
TOKEN = "tok-walk-never-print-me"
# The sections run in order, in one clone: all of them on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group(__name__)


@dataclass
class Walk:
    """The fresh clone the README is followed in, and its stand-ins."""

    clone: Path
    env: dict[str, str]
    stand_ins: StandIns


def walk_tasks() -> list[dict[str, object]]:
    """Demo tasks as the demo serves them: without a field the schema lacks, whose warning the
    tests of that field want and a user following the docs must not see."""
    return demo_tasks(1200, unknown_field=False)


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
        databases = {db for text in DOCUMENTS.values() for db in POSTGRES_DATABASE.findall(text)}
        for database in sorted(databases):
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

    assert done.returncode == 0, f"Section {section!r} failed:\n{done.output[-8000:]}"
    trouble = [match.group(0) for match in TAP_TROUBLE.finditer(done.output)]
    assert not trouble, f"Section {section!r}: the tap complained:\n" + "\n".join(trouble)
    assert TOKEN not in done.output, f"Section {section!r} printed the token"
    assert not leaked_into_git(walk.clone, TOKEN), "a file git would commit holds the token"


# Settings that would send the tests elsewhere, if they leaked into them.
WRONG_SETTINGS = {
    "TAP_TOGGL_TASKS_API_TOKEN": "wrong-token-in-dotenv",
    "TAP_TOGGL_TASKS_API_URL": "http://127.0.0.1:9/api/v9",
    "TARGET_DUCKDB_FILEPATH": "/nonexistent/warehouse.duckdb",
    "MELTANO_DATABASE_URI": "sqlite:////nonexistent/meltano.db",
}


# What the clone's tests must still pass with: the environment module, and the pipelines the
# README's edits to meltano.yml used to break (one Meltano run into DuckDB, and the accounts).
SETTING_PROOF = (
    "tests/tap/test_environment.py",
    "tests/pipelines/test_duckdb.py::test_every_task_lands_once_and_a_second_run_brings_only_the_changes",
    "tests/pipelines/test_accounts.py",
)


@pytest.mark.slow
def test_after_the_walk_the_users_settings_change_no_test(walk: Walk) -> None:
    """The clone now holds what a user who followed the README has: a `.env` with tokens, extra
    accounts and a stream map in meltano.yml, installed plugins, warehouses and state. No test
    may depend on any of it, nor on a wrong token in `.env` and another one exported.

    Every test's processes get their environment from tests/support/environment.py, the tap its
    config from the test, Meltano a copy of the project as shipped: the tests that prove those three
    mechanisms, and one real pipeline through them, run here; the rest of the suite uses the same
    mechanisms and need not run again."""
    dotenv = walk.clone / ".env"
    kept = [
        line
        for line in dotenv.read_text().splitlines()
        if line.split("=", 1)[0] not in WRONG_SETTINGS
    ]
    dotenv.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in WRONG_SETTINGS.items())]) + "\n")
    env = {**walk.env, "TAP_TOGGL_TASKS_API_TOKEN": "wrong-token-exported"}
    pytest_in_clone = [".venv/bin/pytest", "-q", "-p", "no:cacheprovider"]

    done = run([*pytest_in_clone, *SETTING_PROOF], cwd=walk.clone, env=env, timeout=1800)

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"^6 passed in ", done.stdout, re.MULTILINE), done.stdout[-2000:]


@pytest.mark.parametrize("document", list(DOCUMENTS))
def test_every_not_run_mark_says_why_and_stands_right_above_a_block(document: str) -> None:
    """A mark the walk does not read as one (misspelt, no reason, above prose or a yaml block)
    would leave its block to be run, or be no mark at all."""
    lines = DOCUMENTS[document].splitlines()
    marks = [
        number
        for number, line in enumerate(lines)
        if line.startswith("<!--") and "not run" in line.lower()
    ]
    for number in marks:
        where = f"{document} line {number + 1}"
        mark = NOT_RUN.fullmatch(lines[number].strip())
        assert mark, f"{where}: write <!-- not run by CI: the reason -->"
        assert mark.group("reason").strip(), f"{where}: give the reason"
        after = next(line for line in lines[number + 1 :] if line.strip())
        assert after == "```sh", f"{where}: put the mark right above a ```sh block"
    blocks = readme_blocks(DOCUMENTS[document], document)
    assert len([block for block in blocks if block.not_run_because is not None]) == len(marks)


def test_the_walk_reads_the_readme_and_every_doc() -> None:
    in_docs = sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))
    assert in_docs, "docs/ holds no Markdown file"
    assert next(iter(DOCUMENTS)) == "README.md"
    assert sorted(DOCUMENTS) == sorted(["README.md", *in_docs])
    walked = {block.document for blocks in SECTIONS.values() for block in blocks}
    assert {"README.md", "docs/dbt.md", "docs/airflow-and-many-accounts.md"} <= walked


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
