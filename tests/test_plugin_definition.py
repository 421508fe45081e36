"""The plugin definition other Meltano projects add (plugin/tap-toggl-tasks.yml) and this
project's own extractor in meltano.yml, checked against what the tap says of itself (`--about`),
and the definition added to a brand-new Meltano project for real.

The comparisons are generic: a setting added to the tap fails them until both files declare it.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import about_json
from tests.pipelines.changes import run_after_changes
from tests.pipelines.meltano import API_TOKEN, Meltano, meltano_env
from tests.pipelines.plugins import install_plugins
from toggl_standin.demo_data import make_task, parse_at
from toggl_standin.server import TogglServer

ROOT = Path(__file__).resolve().parent.parent
DEFINITION_FILE = ROOT / "plugin" / "tap-toggl-tasks.yml"
VERSION = metadata.version("tap-toggl-tasks")
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def definition() -> dict[str, Any]:
    value: dict[str, Any] = load_yaml(DEFINITION_FILE)
    return value


def project_extractor() -> dict[str, Any]:
    """This repository's own tap-toggl-tasks entry in meltano.yml."""
    extractors = load_yaml(ROOT / "meltano.yml")["plugins"]["extractors"]
    [extractor] = [plugin for plugin in extractors if plugin["name"] == "tap-toggl-tasks"]
    return dict(extractor)


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    return about_json()


def meltano_kind(prop: dict[str, Any]) -> str:
    """The Meltano setting kind for a JSON-schema property of the tap's settings."""
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    [json_type] = [name for name in types if name != "null"]
    if "enum" in prop:
        return "options"
    if json_type == "string" and prop.get("format") in ("date-time", "date"):
        return "date_iso8601"
    return str({"number": "decimal"}.get(json_type, json_type))


def check_setting(setting: dict[str, Any], prop: dict[str, Any], where: str) -> None:
    name = setting["name"]
    assert setting.get("kind") == meltano_kind(prop), f"{where}: kind of {name}"
    assert bool(setting.get("sensitive")) == bool(prop.get("secret")), f"{where}: {name} sensitive"
    if "enum" in prop:
        assert [option["value"] for option in setting["options"]] == prop["enum"], name


def test_the_definition_describes_the_tap_as_about_does(about: dict[str, Any]) -> None:
    plugin = definition()
    assert plugin["name"] == about["name"] == "tap-toggl-tasks"
    assert plugin["namespace"] == "tap_toggl_tasks"
    assert plugin["executable"] in PROJECT["project"]["scripts"]
    assert plugin["variant"]
    assert plugin["label"]
    assert plugin["description"]
    assert sorted(plugin["capabilities"]) == sorted(about["capabilities"])

    properties = about["settings"]["properties"]
    listed = [setting["name"] for setting in plugin["settings"]]
    assert sorted(listed) == sorted(properties), (
        "plugin/tap-toggl-tasks.yml must list every setting of `--about` (and no other): "
        f"missing {sorted(set(properties) - set(listed))}, "
        f"unknown {sorted(set(listed) - set(properties))}"
    )
    for setting in plugin["settings"]:
        prop = properties[setting["name"]]
        check_setting(setting, prop, "plugin/tap-toggl-tasks.yml")
        assert setting["label"], f"{setting['name']} has no label"
        assert setting["description"] == prop["description"], f"{setting['name']}: description"
        assert "sensitive" in setting, f"{setting['name']}: say whether it is sensitive"
        # A default written here would be copied into users' projects and stay there after
        # an upgrade changed the tap's own.
        assert "value" not in setting, f"{setting['name']}: leave the default to the tap"

    names = set(properties)
    assert plugin["settings_group_validation"] == [["api_token"], ["email", "password"]]
    assert all(set(group) <= names for group in plugin["settings_group_validation"])
    # Both streams: tasks_listings is how a warehouse whose loader ignores ACTIVATE_VERSION
    # (target-duckdb) finds the rows of deleted tasks (stg_tasks).
    assert plugin["select"] == ["tasks.*", "tasks_listings.*"]


def test_the_definition_installs_the_release_of_this_version() -> None:
    plugin = definition()
    repository = PROJECT["project"]["urls"]["Repository"]
    assert plugin["repo"] == repository
    assert plugin["pip_url"] == f"git+{repository}.git@v{VERSION}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pins = re.findall(r"(?:\.git@v|tap-toggl-tasks==)([0-9][^\s`\"']*)", readme)
    assert pins, "the README shows no pinned pip_url"
    for pinned in pins:
        assert pinned == VERSION, f"the README pins {pinned}, not this version"


def test_meltano_yml_declares_the_tap_as_about_does(about: dict[str, Any]) -> None:
    extractor = project_extractor()
    assert sorted(extractor["capabilities"]) == sorted(about["capabilities"])
    properties = about["settings"]["properties"]
    declared = [setting["name"] for setting in extractor["settings"]]
    assert sorted(declared) == sorted(properties), (
        "meltano.yml must declare every setting of `--about` (and no other): "
        f"missing {sorted(set(properties) - set(declared))}, "
        f"unknown {sorted(set(declared) - set(properties))}"
    )
    for setting in extractor["settings"]:
        prop = properties[setting["name"]]
        check_setting(setting, prop, "meltano.yml")
        if "value" in setting:
            assert setting["value"] == prop.get("default"), (
                f"meltano.yml's default for {setting['name']} differs from the tap's"
            )
    plugin = definition()
    assert extractor["settings_group_validation"] == plugin["settings_group_validation"]
    assert extractor["select"] == plugin["select"]


# A loader for the new project: Meltano Hub is not reachable, so it comes from a definition too.
TARGET_JSONL = {
    "name": "target-jsonl",
    "namespace": "target_jsonl",
    "variant": "andyh1203",
    "label": "JSON Lines",
    "pip_url": "target-jsonl==0.1.4",
    "executable": "target-jsonl",
    "settings": [
        {"name": "destination_path", "kind": "string"},
        {"name": "do_timestamp_file", "kind": "boolean", "value": False},
    ],
}


def jsonl_records(folder: Path) -> dict[int, dict[str, Any]]:
    lines = (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records), "a task was written twice in one run"
    return by_id


@pytest.mark.slow
def test_a_new_meltano_project_adds_the_definition_and_syncs_incrementally(tmp_path: Path) -> None:
    install_plugins()  # Meltano itself, in .meltano-venv
    tasks = [make_task(i, active=i % 5 != 0) for i in range(1, 31)]
    with TogglServer(tasks, api_token=API_TOKEN) as toggl:
        env = meltano_env(toggl)
        Meltano(env, cwd=tmp_path)("init", "project", "--no-usage-stats")
        project = tmp_path / "project"
        meltano = Meltano(env, cwd=project)

        meltano(
            "add", "--plugin-type", "extractor", "tap-toggl-tasks",
            "--from-ref", str(DEFINITION_FILE), "--no-install",
        )  # fmt: skip
        plugins = load_yaml(project / "meltano.yml")["plugins"]
        assert list(plugins) == ["extractors"], "meltano add added more than the extractor"
        [extractor] = plugins["extractors"]
        assert extractor["capabilities"] == definition()["capabilities"]
        assert "state" in extractor["capabilities"], "without it Meltano never passes the bookmark"

        # The local-path form of pip_url (README): this checkout instead of the released tag.
        meltano_yml = project / "meltano.yml"
        text = meltano_yml.read_text(encoding="utf-8")
        assert text.count(f"pip_url: {definition()['pip_url']}") == 1
        meltano_yml.write_text(text.replace(definition()["pip_url"], str(ROOT)), encoding="utf-8")
        loader_file = tmp_path / "target-jsonl.yml"
        loader_file.write_text(yaml.safe_dump(TARGET_JSONL), encoding="utf-8")
        meltano(
            "add", "--plugin-type", "loader", "target-jsonl",
            "--from-ref", str(loader_file), "--no-install",
        )  # fmt: skip
        meltano("install", timeout=1200)

        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        meltano.env["TARGET_JSONL_DESTINATION_PATH"] = str(first)
        meltano("run", "tap-toggl-tasks", "target-jsonl")

        assert sorted(jsonl_records(first)) == sorted(toggl.tasks)
        bookmark = meltano.bookmark("dev:tap-toggl-tasks-to-target-jsonl")

        meltano.env["TARGET_JSONL_DESTINATION_PATH"] = str(second)
        run_after_changes(meltano, toggl, bookmark, "target-jsonl")

        since = int(toggl.requests[-1].params["since"])
        changed = {i for i, t in toggl.tasks.items() if parse_at(t["at"]).timestamp() >= since}
        records = jsonl_records(second)
        assert set(records) == changed, "the second run did not bring exactly the changes"
        assert records[5]["name"] == toggl.tasks[5]["name"]
        assert records[9]["server_deleted_at"] is not None
