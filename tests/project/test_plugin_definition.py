"""The plugin definition other Meltano projects add (plugin/tap-toggl-tasks.yml) and this
project's own extractor in meltano.yml: their capabilities and settings generated from what the
tap says of itself (`--about`) by scripts/plugin_settings.py, the definition held to Meltano Hub's
extractor schema, and added to a brand-new Meltano project for real.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.changes import run_after_changes
from tests.support.meltano import API_TOKEN, Meltano, meltano_env
from tests.support.plugins import install_plugins
from tests.support.tap_runs import about_json
from toggl_standin.demo_data import make_task, parse_at
from toggl_standin.server import TogglServer

ROOT = Path(__file__).resolve().parents[2]
DEFINITION_FILE = ROOT / "plugin" / "tap-toggl-tasks.yml"
GENERATOR = ROOT / "scripts" / "plugin_settings.py"
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# What Meltano Hub's extractor schema (schemas/plugin_definitions/extractors.schema.json in the
# meltano/hub repository, with the schemas/common/ files it refers to) requires and allows.
HUB_REQUIRED = {"name", "namespace", "variant", "quality"}
HUB_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable", "settings",
    "docs", "repo", "logo_url", "hidden", "python", "settings_group_validation", "commands",
    "capabilities", "metadata", "schema", "select", "maintenance_status", "quality", "domain_url",
    "keywords", "requires", "definition", "next_steps", "settings_preamble", "usage", "prereq",
    "supported_python_versions", "log_parser",
}  # fmt: skip
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options", "docs",
    "hidden", "sensitive",
}  # fmt: skip
HUB_SETTING_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options", "object",
    "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_MAINTENANCE_STATUSES = {"active", "beta", "development", "inactive", "unknown"}
HUB_QUALITIES = {"gold", "silver", "bronze", "unknown"}
HUB_STRING_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable", "docs",
    "repo", "python", "definition", "next_steps", "settings_preamble", "usage", "prereq",
    "log_parser",
}  # fmt: skip


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def definition() -> dict[str, Any]:
    value: dict[str, Any] = load_yaml(DEFINITION_FILE)
    return value


def project_extractor(root: Path = ROOT) -> dict[str, Any]:
    """This repository's own tap-toggl-tasks entry in meltano.yml."""
    extractors = load_yaml(root / "meltano.yml")["plugins"]["extractors"]
    [extractor] = [plugin for plugin in extractors if plugin["name"] == "tap-toggl-tasks"]
    return dict(extractor)


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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


def test_the_definition_and_meltano_yml_are_as_the_generator_writes_them() -> None:
    checked = generate("--check")

    assert checked.returncode == 0, (
        f"{checked.stdout}{checked.stderr}\nRun: .venv/bin/python scripts/plugin_settings.py"
    )


def test_the_generator_rewrites_stale_settings_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "plugin").mkdir()
    plugin, meltano_yml = tmp_path / DEFINITION_FILE.relative_to(ROOT), tmp_path / "meltano.yml"
    shutil.copy(DEFINITION_FILE, plugin)
    shutil.copy(ROOT / "meltano.yml", meltano_yml)
    # Stale settings in both files, and edits elsewhere (someone else's) the generator keeps.
    plugin.write_text(
        plugin.read_text()
        .replace("label: Page size", "label: Old label")
        .replace("label: Toggl Track tasks", "label: Toggl tasks (edited)")
    )
    meltano_text = meltano_yml.read_text()
    assert meltano_text.count("  - state\n") == 1
    meltano_yml.write_text(
        meltano_text.replace("  - state\n", "")
        .replace("apache-airflow[postgres]==", "apache-airflow[postgres,edited]==")
        .replace(
            "      namespace: tap_toggl_tasks\n", "      namespace: tap_toggl_tasks  # edited\n"
        )
    )

    stale = generate("--check", "--root", str(tmp_path))
    assert stale.returncode == 1
    assert stale.stderr.startswith("plugin/tap-toggl-tasks.yml and meltano.yml: settings or ")
    assert "-    label: Old label\n+    label: Page size" in stale.stdout

    assert generate("--root", str(tmp_path)).returncode == 0
    assert plugin.read_text() == DEFINITION_FILE.read_text().replace(
        "label: Toggl Track tasks", "label: Toggl tasks (edited)"
    )
    assert meltano_yml.read_text() == (
        (ROOT / "meltano.yml")
        .read_text()
        .replace("apache-airflow[postgres]==", "apache-airflow[postgres,edited]==")
        .replace(
            "      namespace: tap_toggl_tasks\n", "      namespace: tap_toggl_tasks  # edited\n"
        )
    )
    assert generate("--check", "--root", str(tmp_path)).returncode == 0


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("plugin_settings", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "description",
    [
        "Plain words (and a [link](https://example.com)), `code` too.",
        "yes",
        "Null",
        "a: b",
        "ends with a colon:",
        "a #hash",
        "'quoted' at the start",
        "`code` at the start",
        "2024-01-31",
        "12",
        "- a dash",
        "trailing space ",
        "ünïcode",
    ],
)
def test_the_generated_yaml_reads_back_as_the_settings_it_declares(description: str) -> None:
    about: dict[str, Any] = {
        "capabilities": ["about"],
        "settings": {
            "properties": {
                "colour": {
                    "type": ["string", "null"],
                    "enum": ["red", "green"],
                    "description": description,
                },
                "note": {"type": "string", "description": description, "title": "Note"},
            }
        },
    }
    text = "\n".join(generator().settings_block(about, "  "))

    assert yaml.safe_load(text) == {
        "settings": [
            {
                "name": "colour",
                "kind": "options",
                "label": "Colour",
                "description": description,
                "sensitive": False,
                "options": [{"label": "red", "value": "red"}, {"label": "green", "value": "green"}],
            },
            {
                "name": "note",
                "kind": "string",
                "label": "Note",
                "description": description,
                "sensitive": False,
            },
        ]
    }


@pytest.mark.parametrize("where", ["plugin/tap-toggl-tasks.yml", "meltano.yml"])
def test_each_setting_is_declared_as_about_describes_it(about: dict[str, Any], where: str) -> None:
    plugin = definition() if where.startswith("plugin") else project_extractor()
    properties = about["settings"]["properties"]

    assert plugin["capabilities"] == about["capabilities"]
    assert [setting["name"] for setting in plugin["settings"]] == list(properties)
    for setting in plugin["settings"]:
        name, prop = setting["name"], properties[setting["name"]]
        assert setting["kind"] == meltano_kind(prop), f"{where}: kind of {name}"
        assert setting["sensitive"] is bool(prop.get("secret")), f"{where}: {name} sensitive"
        assert setting["description"] == prop["description"], f"{where}: {name} description"
        assert setting["label"] == prop["title"], f"{where}: {name} label"
        # A default written here would be copied into users' projects and stay there after
        # an upgrade changed the tap's own.
        assert "value" not in setting, f"{where}: {name}: leave the default to the tap"
        if "enum" in prop:
            assert [option["value"] for option in setting["options"]] == prop["enum"], name
    assert {"api_token", "password"} == {s["name"] for s in plugin["settings"] if s["sensitive"]}


def test_both_ask_for_one_way_to_log_in_and_select_both_streams() -> None:
    for plugin in (definition(), project_extractor()):
        assert plugin["settings_group_validation"] == [["api_token"], ["email", "password"]]
        # tasks_listings is how a warehouse whose loader ignores ACTIVATE_VERSION
        # (target-duckdb) finds the rows of deleted tasks (stg_tasks).
        assert plugin["select"] == ["tasks.*", "tasks_listings.*"]


def test_the_definition_meets_meltano_hubs_extractor_schema(about: dict[str, Any]) -> None:
    plugin = definition()

    assert set(plugin) >= HUB_REQUIRED, f"missing {sorted(HUB_REQUIRED - set(plugin))}"
    assert set(plugin) <= HUB_KEYS, f"not in the Hub's schema: {sorted(set(plugin) - HUB_KEYS)}"
    for key in HUB_STRING_KEYS & set(plugin):
        assert isinstance(plugin[key], str), key
    for key in ("logo_url", "domain_url"):
        assert plugin.get(key) is None or isinstance(plugin[key], str), key
    assert re.fullmatch(r"https://[^\s/]+(/\S*)?", plugin["domain_url"])
    assert plugin["maintenance_status"] in HUB_MAINTENANCE_STATUSES
    assert plugin["quality"] in HUB_QUALITIES
    assert all(isinstance(keyword, str) for keyword in plugin["keywords"])
    assert set(plugin["capabilities"]) <= HUB_CAPABILITIES
    assert all(isinstance(rule, str) for rule in plugin["select"])
    for group in plugin["settings_group_validation"]:
        assert isinstance(group, list)
        assert all(isinstance(name, str) for name in group)
    for setting in plugin["settings"]:
        assert isinstance(setting["name"], str)
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_SETTING_KINDS, setting["name"]
        assert isinstance(setting["label"], str)
        assert isinstance(setting["description"], str)
        assert isinstance(setting["sensitive"], bool)
        for option in setting.get("options", []):
            assert isinstance(option["label"], str)
            assert isinstance(option["value"], str)
    # And the tap's own facts, which the schema cannot know.
    assert plugin["name"] == about["name"]
    assert plugin["namespace"] == "tap_toggl_tasks"
    assert plugin["executable"] in PROJECT["project"]["scripts"]


def test_the_definition_points_at_nothing_that_does_not_exist() -> None:
    plugin = definition()

    # The tap is published nowhere: the user names their copy (the README says how).
    assert plugin["pip_url"] == "/path/to/tap-toggl-tasks"
    assert "repo" not in plugin
    assert "docs" not in plugin
    for path in (DEFINITION_FILE, ROOT / "pyproject.toml", ROOT / "meltano.yml"):
        assert "github.com/tap-toggl-tasks" not in path.read_text(encoding="utf-8"), path


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

        # The local-path form of pip_url, as the definition asks: this checkout.
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
