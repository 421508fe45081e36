"""scripts/show_warehouse.py, the demo's report: its table lines up whatever the task names."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.pipelines.project import ROOT


def load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "show_warehouse", ROOT / "scripts" / "show_warehouse.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wide_characters_take_two_columns_and_marks_none() -> None:
    fit = load_report().fit

    assert fit("日本語", 8) == "日本語  "
    assert fit("Emoji 🚀", 9) == "Emoji 🚀 "
    assert fit("Cafe\u0301", 6) == "Cafe\u0301  "


def test_a_long_name_is_cut_where_the_next_character_would_not_fit() -> None:
    fit = load_report().fit

    assert fit("日本語ドキュメント", 7) == "日本語 "
    assert fit("Quarterly report", 9) == "Quarterly"
