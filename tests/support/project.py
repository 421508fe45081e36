"""This repository's Meltano project as it ships, copied into a test's folder.

Each test runs in a copy of its own: its own meltano.yml (without the README's recipes a user may
have applied), `.meltano/` (state database, logs) and `output/` (warehouse), and no `.env`, so
nothing a developer did in the checkout changes an outcome. Only the plugin virtualenvs are
shared, from the cache `tests.support.plugins` installs them into.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Meltano, in its own virtualenv (scripts/setup-meltano).
MELTANO_BIN = ROOT / ".meltano-venv" / "bin"
# A Meltano project of its own whose `.meltano/` holds the plugin virtualenvs the tests share.
PLUGIN_CACHE = ROOT / ".cache" / "meltano-test-plugins"
AIRFLOW_PYTHON = PLUGIN_CACHE / ".meltano" / "utilities" / "airflow" / "venv" / "bin" / "python"
PLUGIN_KINDS = ("extractors", "loaders", "utilities")
# What a Meltano project holds besides meltano.yml, copied when present.
PROJECT_FOLDERS = ("orchestrate", "transform", "analyze")


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
    # A copy has no tap source, nor loader wrapper, of its own: the checkout's.
    for plugin in (plugin for kind in PLUGIN_KINDS for plugin in plugins.get(kind) or []):
        if plugin.get("pip_url"):
            plugin["pip_url"] = " ".join(
                str(ROOT / part) if part == "." or part.startswith("./") else part
                for part in plugin["pip_url"].split()
            )
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
