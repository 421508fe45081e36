"""scripts/show_warehouse.py, the demo's report: its table lines up whatever the task names."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support.project import ROOT


def load_report() -> ModuleType:
    # Run as a script, it finds terminal_columns beside it, on sys.path[0].
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
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


def test_the_project_hours_table_cuts_long_names_with_an_ellipsis() -> None:
    fit = load_report().fit  # the one both reports use (scripts/terminal_columns.py)

    assert fit("Søknad & support", 8, cut_mark="…") == "Søknad …"
    assert fit("研究 (research)", 6, cut_mark="…") == "研究 …"
    assert fit("研究 (research)", 5, cut_mark="…") == "研究…"
