"""Meltano and the plugins the pipeline tests run, installed once into a cache they share.

Each plugin is installed unless the cache holds it installed from the same `pip_url` and the same
pyproject.toml (its stamp file records both): quick once cached. Installs are serialized by a
file lock, so that test processes running side by side (pytest-xdist workers, two checkouts'
suites) neither install the same plugin twice at once nor use one half installed.

`python -m tests.support.plugins [PLUGIN ...]` installs ahead of the tests (default: all).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from tests.support.environment import clean_environ
from tests.support.processes import run
from tests.support.project import MELTANO_BIN, PLUGIN_CACHE, ROOT, shipped_project

# What this process has installed or found installed already: no need to take the lock again.
_installed: set[str] = set()


def install_plugins(*plugins: str) -> None:
    """Install Meltano (the project's own script) and these plugins into the shared cache."""
    wanted = {"meltano", *plugins}
    if wanted <= _installed:
        return
    with _install_lock():
        if "meltano" not in _installed:
            meltano = run(
                ["bash", "-c", "set -euo pipefail; source scripts/setup-meltano"],
                cwd=ROOT,
                env=clean_environ(),
                timeout=1800,
            )
            if meltano.returncode != 0:
                pytest.fail(f"installing Meltano failed:\n{meltano.stderr[-3000:]}")
            _installed.add("meltano")
        project = shipped_project()
        stale = [
            plugin
            for plugin in plugins
            if plugin not in _installed and _stamp(plugin) != fingerprint(plugin, project)
        ]
        if stale:
            _meltano_install(stale, project)
    _installed.update(wanted)


def every_plugin() -> list[str]:
    """The plugins of meltano.yml as shipped."""
    return [plugin["name"] for kind in shipped_project()["plugins"].values() for plugin in kind]


def fingerprint(plugin: str, project: Mapping[str, Any]) -> str:
    """What an installed plugin was installed from: its pip_url, and the tap's dependencies."""
    pip_urls = {p["name"]: p.get("pip_url") for kind in project["plugins"].values() for p in kind}
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps({"pip_url": pip_urls.get(plugin), "pyproject": pyproject})


def _stamp(plugin: str) -> str | None:
    path = PLUGIN_CACHE / ".meltano" / f".installed-{plugin}"
    return path.read_text() if path.exists() else None


def _meltano_install(plugins: list[str], project: Mapping[str, Any]) -> None:
    (PLUGIN_CACHE / "meltano.yml").write_text(yaml.safe_dump(dict(project), sort_keys=False))
    env = clean_environ(
        PATH=f"{MELTANO_BIN}{os.pathsep}{os.environ['PATH']}",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    done = run(
        [str(MELTANO_BIN / "meltano"), "install", *plugins], cwd=PLUGIN_CACHE, env=env, timeout=1800
    )
    if done.returncode != 0:
        pytest.fail(f"installing {plugins} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    for plugin in plugins:
        (PLUGIN_CACHE / ".meltano" / f".installed-{plugin}").write_text(
            fingerprint(plugin, project)
        )


@contextmanager
def _install_lock() -> Iterator[None]:
    (PLUGIN_CACHE / ".meltano").mkdir(parents=True, exist_ok=True)
    with (PLUGIN_CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


if __name__ == "__main__":
    install_plugins(*(sys.argv[1:] or every_plugin()))
