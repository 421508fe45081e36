"""This repository's Meltano project, run for real by the pipeline tests, and what they compare.

Meltano itself is installed by `scripts/setup-meltano`, the same script `scripts/demo` uses. Each
test runs in a project of its own, a copy of this one in a temporary folder: its own meltano.yml
(as the repository ships it), `.meltano/` (state database, logs) and `output/` (warehouse), and
no `.env`, so nothing a developer did in the checkout (the quick start's `.env`, the README's
edits to meltano.yml, exported `TAP_*`, `TARGET_*`, `MELTANO_*` variables) changes an outcome.
Only the installed plugin virtualenvs are shared, from a cache of their own, so that each is
installed once rather than once per test.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_toggl_tasks.schema import TASK_SCHEMA, TIMESTAMP_FIELDS
from tap_toggl_tasks.tap import LOOKBACK_SECONDS
from toggl_standin.demo_data import make_task, parse_at
from toggl_standin.server import TogglServer

ROOT = Path(__file__).resolve().parent.parent
MELTANO_BIN = ROOT / ".meltano-venv" / "bin"
# A Meltano project of its own whose `.meltano/` holds the plugin virtualenvs the tests share.
PLUGIN_CACHE = ROOT / ".cache" / "meltano-test-plugins"
AIRFLOW_PYTHON = PLUGIN_CACHE / ".meltano" / "utilities" / "airflow" / "venv" / "bin" / "python"
PLUGIN_KINDS = ("extractors", "loaders", "utilities")
# What a Meltano project holds besides meltano.yml, copied when present.
PROJECT_FOLDERS = ("orchestrate", "transform", "analyze")
API_TOKEN = "tok-pipeline-never-print-me"
TASK_FIELDS = tuple(TASK_SCHEMA["properties"])
# Variables of a developer's shell that would point the runs at other settings or databases.
_FOREIGN_PREFIXES = ("TAP_TOGGL_TASKS_", "TARGET_", "MELTANO_", "AIRFLOW")

_installed: set[str] = set()


def shipped_project() -> dict[str, Any]:
    """meltano.yml without the README's recipes that a user may have applied to it.

    The README tells users to add extractors inheriting from tap-toggl-tasks (several accounts)
    and to set a stream map on it (seconds); the tests check the project as shipped, and apply
    those recipes themselves where they test them.
    """
    project: dict[str, Any] = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    plugins = project["plugins"]
    # The README's recipes add inheriting plugins (an extractor per account, a loader per schema).
    for kind in PLUGIN_KINDS:
        plugins[kind] = [p for p in plugins.get(kind) or [] if "inherit_from" not in p]
    # `meltano config set` writes into the active environment's copy of the plugin.
    in_environments = [
        plugin
        for environment in project.get("environments") or []
        for plugin in ((environment.get("config") or {}).get("plugins") or {}).get("extractors", [])
    ]
    for plugin in plugins["extractors"] + in_environments:
        for recipe_setting in ("stream_maps", "stream_map_config"):
            (plugin.get("config") or {}).pop(recipe_setting, None)
    for plugin in plugins["extractors"]:
        if plugin.get("pip_url") == "-e .":
            plugin["pip_url"] = f"-e {ROOT}"  # a copy has no tap source of its own
    return project


def make_project(folder: Path, *snippets: dict[str, Any]) -> Path:
    """A copy of this Meltano project in `folder`, with README snippets merged in as a user would
    paste them, sharing the cached plugin virtualenvs."""
    project = shipped_project()
    extractors = project["plugins"]["extractors"]
    for snippet in snippets:
        for plugin in snippet["plugins"]["extractors"]:
            known = next((p for p in extractors if p["name"] == plugin["name"]), None)
            if known is None:
                extractors.append(plugin)
            else:
                known.setdefault("config", {}).update(plugin.get("config") or {})
    folder.mkdir(parents=True)
    (folder / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    for name in PROJECT_FOLDERS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    # What a clone has of output/: its .gitignore, which makes the folder exist in every clone
    # (target-duckdb does not create it).
    (folder / "output").mkdir()
    shutil.copy2(ROOT / "output" / ".gitignore", folder / "output")
    system_dir = folder / ".meltano"
    system_dir.mkdir()
    for kind in PLUGIN_KINDS:
        (PLUGIN_CACHE / ".meltano" / kind).mkdir(parents=True, exist_ok=True)
        (system_dir / kind).symlink_to(PLUGIN_CACHE / ".meltano" / kind)
    return folder


def _fingerprint(plugin: str, project: Mapping[str, Any]) -> str:
    """What an installed plugin was installed from: its pip_url, and the tap's dependencies."""
    pip_urls = {p["name"]: p.get("pip_url") for kind in project["plugins"].values() for p in kind}
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps({"pip_url": pip_urls.get(plugin), "pyproject": pyproject})


def install_plugins(*plugins: str) -> None:
    """Install Meltano (the project's own script) and these plugins into the shared cache,
    unless they were installed from the same pip_url before: quick once cached."""
    if "meltano" not in _installed:
        meltano = subprocess.run(
            ["bash", "-c", "set -euo pipefail; source scripts/setup-meltano"],
            cwd=ROOT,
            env=_clean_environ(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if meltano.returncode != 0:
            pytest.fail(f"installing Meltano failed:\n{meltano.stderr[-3000:]}")
        _installed.add("meltano")
    missing = [plugin for plugin in plugins if plugin not in _installed]
    if not missing:
        return
    project = shipped_project()
    stamps = {plugin: PLUGIN_CACHE / ".meltano" / f".installed-{plugin}" for plugin in missing}
    stale = [
        plugin
        for plugin, stamp in stamps.items()
        if not stamp.exists() or stamp.read_text() != _fingerprint(plugin, project)
    ]
    if stale:
        PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
        (PLUGIN_CACHE / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
        env = {**_clean_environ(), "PATH": f"{MELTANO_BIN}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(
            [str(MELTANO_BIN / "meltano"), "install", *stale],
            cwd=PLUGIN_CACHE,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"installing {stale} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        for plugin in stale:
            stamps[plugin].write_text(_fingerprint(plugin, project))
    _installed.update(missing)


def _clean_environ() -> dict[str, str]:
    """The test process's environment without the developer's tap, loader or Meltano settings,
    with the download caches the scripts use."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    return {
        **base,
        "UV_CACHE_DIR": base.get("UV_CACHE_DIR", str(ROOT / ".cache" / "uv")),
        "PIP_CACHE_DIR": base.get("PIP_CACHE_DIR", str(ROOT / ".cache" / "pip")),
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


@dataclass
class Meltano:
    """`meltano` in a project of its own, with an environment of its own (Toggl, databases)."""

    env: dict[str, str]
    cwd: Path
    secrets: tuple[str, ...] = (API_TOKEN,)

    @property
    def warehouse(self) -> Path:
        """The DuckDB file target-duckdb writes by default."""
        return self.cwd / "output" / "warehouse.duckdb"

    def __call__(self, *args: str, timeout: float = 600) -> str:
        """Run one Meltano command; fail the test with the end of its log when it fails."""
        done = subprocess.run(
            [str(MELTANO_BIN / "meltano"), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        for secret in self.secrets:
            assert secret not in output, "an API token reached Meltano's output"
        if done.returncode != 0:
            pytest.fail(f"meltano {' '.join(args)} exited {done.returncode}:\n{output[-6000:]}")
        return done.stdout

    def state(self, state_id: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self("state", "get", state_id))
        return value

    def bookmark(self, state_id: str) -> datetime:
        stream = self.state(state_id)["singer_state"]["bookmarks"]["tasks"]
        return parse_at(stream["replication_key_value"])


def meltano_env(toggl: TogglServer, **extra: str) -> dict[str, str]:
    """A user's shell environment, with Meltano on PATH and this Toggl server's URL and token."""
    base = _clean_environ()
    return {
        **base,
        "PATH": f"{MELTANO_BIN}{os.pathsep}{base.get('PATH', '')}",
        "TAP_TOGGL_TASKS_API_URL": toggl.url,
        "TAP_TOGGL_TASKS_API_TOKEN": API_TOKEN,
        **extra,
    }


def meltano_project(tmp_path: Path, toggl: TogglServer, **extra: str) -> Meltano:
    """Meltano in a fresh copy of this project under tmp_path, reading this Toggl server."""
    return Meltano(meltano_env(toggl, **extra), cwd=make_project(tmp_path / "project"))


def awkward_tasks() -> list[dict[str, Any]]:
    """Tasks that loaders get wrong: quotes, unicode, line breaks, nulls, offsets, huge numbers."""
    nullable = [name for name in TASK_FIELDS if name not in ("id", "at")]
    return [
        make_task(9001, name="She said \"ship it\", then 'wait' \\ back,slash;semi|pipe"),
        make_task(9002, name="Ünïcödé · 日本語 · 🚀 · עברית · \u00a0nbsp", permissions=[]),
        make_task(9003, name="line one\nline two\r\nline three"),
        make_task(9004, **dict.fromkeys(nullable)),
        make_task(
            9005,
            at="2024-12-16T02:38:02.034497+01:00",
            rate_last_updated="2024-12-16T01:38:02Z",
            permissions=["edit", "view"],
        ),
        # 2**53 + 1: survives only if no stage turns integers into floats.
        make_task(9006, tracked_seconds=9_007_199_254_740_993, estimated_seconds=0, rate=0.1),
    ]


def expected_row(task: Mapping[str, Any]) -> dict[str, Any]:
    """The row a server task should become: timestamps as instants, permissions as a list."""
    row: dict[str, Any] = {name: task.get(name) for name in TASK_FIELDS}
    for name in TIMESTAMP_FIELDS:
        if row[name] is not None:
            row[name] = parse_at(row[name])
    if isinstance(row["permissions"], str):
        row["permissions"] = [row["permissions"]]
    return row


def _comparable(value: Any) -> Any:
    # Warehouses hand back timestamps without a zone (stored as UTC) and numerics as Decimal.
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_warehouse_matches(
    rows: list[dict[str, Any]], tasks: Mapping[int, dict[str, Any]]
) -> None:
    """Every server task is in the warehouse exactly once, with every field equal."""
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "a task landed more than once"
    assert sorted(ids) == sorted(tasks), "the warehouse and the server hold different tasks"
    assert set(TASK_FIELDS) <= set(rows[0]), "the warehouse lacks columns"
    for row in rows:
        landed = {name: _comparable(row[name]) for name in TASK_FIELDS}
        if isinstance(landed["permissions"], str):
            landed["permissions"] = json.loads(landed["permissions"])  # DuckDB's JSON type
        assert landed == expected_row(tasks[row["id"]]), f"task {row['id']} differs"


def duckdb_rows(path: Path) -> list[dict[str, Any]]:
    import duckdb  # noqa: PLC0415 - only the pipeline tests need it

    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute("select * from toggl.tasks")
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def postgres_rows(url: str) -> list[dict[str, Any]]:
    import psycopg  # noqa: PLC0415 - only the pipeline tests need it
    from psycopg.rows import dict_row  # noqa: PLC0415

    with psycopg.connect(url, row_factory=dict_row) as db:
        return db.execute("select * from toggl.tasks").fetchall()


@contextmanager
def private_postgres() -> Iterator[str]:
    """A PostgreSQL server of our own (scripts/private-postgres), stopped whatever happens."""
    started = subprocess.run(
        [str(ROOT / "scripts" / "private-postgres"), "start"],
        capture_output=True,
        text=True,
        timeout=900,  # may first install Debian's postgresql package
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start:\n{started.stderr[-3000:]}")
    folder, url = started.stdout.split()
    try:
        yield url
    finally:
        subprocess.run(
            [str(ROOT / "scripts" / "private-postgres"), "stop", folder], timeout=120, check=True
        )


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as db:
        db.execute(f'create database "{name}"')  # a name of our own, not user input
    return f"{server_url}/{name}"


def requests_since(toggl: TogglServer, first: int) -> list[dict[str, str]]:
    """The params of the /me/tasks requests from number `first` (0-based) on."""
    return [request.params for request in toggl.requests[first:]]


def change_the_account(toggl: TogglServer) -> None:
    """What happens in Toggl between two runs: a rename, a task done, a new task, a deletion."""
    toggl.modify(5, name='Renamed: "v2" ✓')
    toggl.mark_done(next(i for i, task in sorted(toggl.tasks.items()) if task["active"]))
    toggl.add(name="Brand new 新しい task", permissions=["owner"])
    toggl.delete(9)


def run_after_changes(
    meltano: Meltano, toggl: TogglServer, bookmark: datetime, target: str
) -> None:
    """Change the account, run the pipeline again, and check that it made one request, asking
    Toggl only for what changed since the bookmark."""
    change_the_account(toggl)
    before = len(toggl.requests)
    meltano("run", "tap-toggl-tasks", target)
    since = [params.get("since") for params in requests_since(toggl, before)]
    expected = math.floor(bookmark.timestamp()) - LOOKBACK_SECONDS
    assert since == [str(expected)], "the run did not resume incrementally"
