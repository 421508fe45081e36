"""Secrets stay out of git: where the README has users put a token, `git add -A` does not reach."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.environment import clean_environ
from tests.support.plugins import install_plugins
from tests.support.processes import run
from tests.support.project import MELTANO_BIN, ROOT
from tests.support.readme_walk import copy_repository, leaked_into_git

# A module runs start to end on one pytest-xdist worker (--dist loadgroup), with its fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
TOKEN = "tok-secret-never-commit-me"


def test_meltano_config_set_and_the_config_file_keep_the_token_out_of_git(tmp_path: Path) -> None:
    install_plugins()  # Meltano itself
    clone = copy_repository(ROOT, tmp_path)
    env = clean_environ(PATH=f"{MELTANO_BIN}{os.pathsep}{os.environ['PATH']}")

    config_set = run(
        ["meltano", "config", "set", "tap-toggl-tasks", "api_token", TOKEN],
        cwd=clone,
        env=env,
        timeout=300,
    )
    assert config_set.returncode == 0, config_set.stderr[-3000:]
    # The README's "Running it" config file.
    (clone / "config.json").write_text(json.dumps({"api_token": TOKEN}))

    assert TOKEN in (clone / ".env").read_text(), "meltano config set stores the token in .env"
    assert leaked_into_git(clone, TOKEN) == []
    ignored = subprocess.run(
        ["git", "check-ignore", ".env", "config.json"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ignored.stdout.split() == [".env", "config.json"]
