"""The package users install: the sdist and wheel `python -m build` makes, their metadata, and
the wheel on its own in a clean virtualenv, syncing from the local Toggl server.

The version is read from the package's metadata, never written here: pyproject.toml holds it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tomllib
import warnings
import zipfile
from datetime import date
from email.message import Message
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.helpers._compat import SingerSDKPythonEOLWarning, warn_python_eol

from tests.support.environment import clean_environ
from tests.support.processes import run
from tests.support.tap_runs import API_TOKEN, SECRETS
from toggl_standin.server import TogglServer

ROOT = Path(__file__).resolve().parents[2]
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = metadata.version("tap-toggl-tasks")
MODULES = sorted(f"tap_toggl_tasks/{path.name}" for path in (ROOT / "tap_toggl_tasks").glob("*.py"))
PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)$")
# On one pytest-xdist worker, so that the sdist and wheel are built once, not once per worker.
pytestmark = pytest.mark.xdist_group(__name__)


def claimed_pythons() -> list[str]:
    """The Python versions the classifiers claim, which scripts/test runs the suite on."""
    found = (PYTHON_CLASSIFIER.match(c) for c in PROJECT["project"]["classifiers"])
    return [match.group(1) for match in found if match]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as a release would be (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    # No isolation: setuptools comes from pylock.toml like every other tool, not the internet.
    built = run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        timeout=300,
    )
    assert built.returncode == 0, f"python -m build failed:\n{built.stdout[-3000:]}{built.stderr}"
    return out


def only(folder: Path, pattern: str) -> Path:
    [path] = folder.glob(pattern)
    return path


def wheel_metadata(dist: Path) -> Message:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        text = wheel.read(f"tap_toggl_tasks-{VERSION}.dist-info/METADATA").decode()
    return HeaderParser().parsestr(text)


def test_the_sdist_holds_what_builds_the_wheel_and_no_tests(dist: Path) -> None:
    sdist = only(dist, "*.tar.gz")
    assert sdist.name == f"tap_toggl_tasks-{VERSION}.tar.gz"
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        license_text = archive.extractfile(f"tap_toggl_tasks-{VERSION}/LICENSE")
        assert license_text is not None
        assert license_text.read() == (ROOT / "LICENSE").read_bytes()
    top_level = {name.split("/")[0] for name in members}
    assert top_level == {
        "PKG-INFO",
        "setup.cfg",
        "pyproject.toml",
        "MANIFEST.in",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "tap_toggl_tasks",
        "tap_toggl_tasks.egg-info",
    }, "the sdist ships tests without the server they need, or lacks a file"
    assert sorted(name for name in members if name.startswith("tap_toggl_tasks/")) == MODULES


def test_the_wheel_holds_the_package_its_command_and_the_license(dist: Path) -> None:
    wheel_path = only(dist, "*.whl")
    assert wheel_path.name == f"tap_toggl_tasks-{VERSION}-py3-none-any.whl"
    info = f"tap_toggl_tasks-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert sorted(name for name in names if not name.startswith(info)) == MODULES
    assert "tap-toggl-tasks = tap_toggl_tasks.__main__:main" in entry_points


def test_the_wheel_metadata_names_license_and_pythons_and_no_url(dist: Path) -> None:
    meta = wheel_metadata(dist)
    assert meta["Name"] == "tap-toggl-tasks"
    assert meta["Version"] == PROJECT["project"]["version"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == PROJECT["project"]["requires-python"]
    # No project URLs: the tap has no public home yet, and a wheel must not point at one that
    # does not exist.
    assert "urls" not in PROJECT["project"]
    assert meta.get_all("Project-URL") is None
    claimed = {c for c in meta.get_all("Classifier") or [] if PYTHON_CLASSIFIER.match(c)}
    assert claimed == {f"Programming Language :: Python :: {v}" for v in claimed_pythons()}


def test_the_wheel_requires_the_tap_s_dependencies_and_offers_no_extra(dist: Path) -> None:
    meta = wheel_metadata(dist)

    # The test tools are dependency groups (PEP 735), which no wheel publishes.
    assert meta.get_all("Provides-Extra") is None
    assert meta.get_all("Requires-Dist") == PROJECT["project"]["dependencies"]
    assert "optional-dependencies" not in PROJECT["project"]
    assert set(PROJECT["dependency-groups"]) == {"test", "lint", "typing"}


def requirement_name(requirement: str) -> str:
    """The normalised project name a requirement such as `psycopg[binary]>=3.2` names."""
    [name] = re.findall(r"^[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", name).lower()


def test_pylock_pins_every_requirement_of_the_tap_and_its_groups() -> None:
    lock = tomllib.loads((ROOT / "pylock.toml").read_text(encoding="utf-8"))
    locked = {package["name"] for package in lock["packages"]}
    groups = PROJECT["dependency-groups"].values()
    required = [*PROJECT["project"]["dependencies"], *(r for group in groups for r in group)]

    missing = {requirement_name(r) for r in required} - locked
    assert missing == set(), f"pylock.toml lacks {sorted(missing)}: run scripts/lock"
    assert lock["requires-python"] == PROJECT["project"]["requires-python"]


def lock_as_constraints(folder: Path) -> Path:
    """pylock.toml's pins as a pip constraints file: the tap's dependencies at the locked
    versions, without installing the test tools the lock also holds."""
    lock = tomllib.loads((ROOT / "pylock.toml").read_text(encoding="utf-8"))
    lines = [
        f"{package['name']}=={package['version']}"
        + (f" ; {package['marker']}" if "marker" in package else "")
        for package in lock["packages"]
    ]
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return constraints


def test_twine_finds_nothing_to_fix_in_the_sdist_or_the_wheel(dist: Path) -> None:
    files = sorted(str(path) for path in dist.iterdir())
    checked = run([sys.executable, "-m", "twine", "check", "--strict", *files], timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_the_classifiers_claim_the_python_running_the_tests_and_nothing_older() -> None:
    claimed = claimed_pythons()
    running = "{}.{}".format(*sys.version_info[:2])
    assert running in claimed, f"Python {running} runs the tests but no classifier claims it"
    oldest = min(claimed, key=lambda version: tuple(map(int, version.split("."))))
    assert PROJECT["project"]["requires-python"] == f">={oldest}"


# The SDK's end-of-life notice, as it words it (its _today/_version arguments exist for tests);
# pyproject.toml's filterwarnings must let the first through and turn the second into an error.
def test_the_sdk_notice_that_a_python_nears_its_end_of_life_is_shown_not_raised() -> None:
    with warnings.catch_warnings(record=True) as caught:  # keeps pytest's filters in force
        warn_python_eol(_today=date(2027, 9, 1), _version=(3, 11))
    assert [warning.category for warning in caught] == [SingerSDKPythonEOLWarning]
    assert "will reach its end of life" in str(caught[0].message)


def test_a_python_past_its_end_of_life_still_fails_the_run() -> None:
    with pytest.raises(SingerSDKPythonEOLWarning, match="reached its end of life"):
        warn_python_eol(_today=date(2027, 11, 1), _version=(3, 11))


def test_the_changelog_has_a_heading_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(VERSION)}\]", changelog, re.MULTILINE), (
        f"CHANGELOG.md has no '## [{VERSION}]' heading: say what this version changes"
    )


@pytest.mark.slow
def test_the_wheel_alone_in_a_clean_virtualenv_syncs_every_task(
    dist: Path, server: TogglServer, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert made.returncode == 0, made.stderr[-3000:]
    installed = run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--constraint",
            str(lock_as_constraints(tmp_path)),
            str(only(dist, "*.whl")),
        ],
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # Outside the repository, with none of the developer's settings.
    env = clean_environ()

    def run_here(*args: str) -> subprocess.CompletedProcess[str]:
        done = run(args, cwd=tmp_path, env=env, timeout=120)
        for secret in SECRETS:
            assert secret not in done.stdout + done.stderr, "a secret reached the tap's output"
        return done

    where = run_here(
        str(venv / "bin" / "python"), "-c", "import tap_toggl_tasks as t; print(t.__file__)"
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "the tap was imported from elsewhere"
    about = run_here(str(venv / "bin" / "tap-toggl-tasks"), "--about", "--format=json")
    assert json.loads(about.stdout)["version"] == VERSION

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_token": API_TOKEN, "api_url": server.url}))
    synced = run_here(str(venv / "bin" / "tap-toggl-tasks"), "--config", str(config))

    assert synced.returncode == 0, synced.stderr[-3000:]
    messages = [json.loads(line) for line in synced.stdout.splitlines()]
    records = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "tasks"]
    assert sorted(record["id"] for record in records) == sorted(server.tasks)
    final_state = [m for m in messages if m["type"] == "STATE"][-1]["value"]
    assert final_state["bookmarks"]["tasks"]["replication_key"] == "at"
