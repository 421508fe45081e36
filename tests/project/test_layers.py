"""The package's modules in layers: each imports only from the layers below it, so a module can
be read (and tested) knowing only what lies under it; and none outgrows a ten-minute read.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tap_toggl_tasks"
# Lowest first. A new module goes where what it imports allows, and is named here.
LAYERS = [
    {"errors", "schema", "sdk_internals", "state", "values"},
    {"bodies", "conformance", "connection", "protocol"},
    {"retrying"},
    {"ending", "settings"},
    {"sync"},
    {"streams"},
    {"listings"},
    {"cli"},
    {"tap"},
    {"__main__"},
]
MAX_LINES = 300
# Over the limit until their rewrite (issue 24, points 1 and 7) lands; the test fails as soon
# as one of them is within it, so that it leaves this list.
OVER_MAX_LINES_FOR_NOW: set[str] = set()


def layer_of(module: str) -> int:
    [layer] = [number for number, names in enumerate(LAYERS) if module in names]
    return layer


def modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def package_imports(module: str) -> set[str]:
    return imported_modules((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def imported_modules(source: str) -> set[str]:
    """The modules of tap_toggl_tasks that `source` imports, anywhere in its code."""
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "tap_toggl_tasks":
                names = [f"tap_toggl_tasks.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("tap_toggl_tasks.")}
    return found


def test_every_module_has_a_layer() -> None:
    placed = set().union(*LAYERS)
    assert set(modules()) == placed, (
        f"tests/project/test_layers.py LAYERS: place {sorted(set(modules()) - placed)}, "
        f"drop {sorted(placed - set(modules()))}"
    )


def test_no_module_imports_from_its_own_layer_or_above() -> None:
    upward = {
        f"{module} imports {imported}"
        for module in modules()
        for imported in package_imports(module)
        if layer_of(imported) >= layer_of(module)
    }
    assert upward == set()


def test_no_module_is_over_300_lines() -> None:
    lines = {
        module: len((PACKAGE / f"{module}.py").read_text(encoding="utf-8").splitlines())
        for module in modules()
    }
    over = {module for module, count in lines.items() if count > MAX_LINES}
    assert over == OVER_MAX_LINES_FOR_NOW, {module: lines[module] for module in over}


def test_the_layer_check_sees_every_form_of_import() -> None:
    source = """
import json
import tap_toggl_tasks.errors
from tap_toggl_tasks import cli, settings as s
from tap_toggl_tasks.tap import TapTogglTasks
from singer_sdk.tap_base import Tap

def later():
    from tap_toggl_tasks.streams import TasksStream
"""
    assert imported_modules(source) == {"errors", "cli", "settings", "tap", "streams"}
