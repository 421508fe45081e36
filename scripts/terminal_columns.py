"""Text in terminal columns, for the demo's reports (scripts/show_*.py) in whichever virtualenv
runs them: the loader's and dbt's have no wcwidth, and Python's own Unicode tables give the same
answer for task and project names."""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    """Columns a terminal gives the text: East Asian wide characters (CJK, most emoji) take two,
    combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def fit(text: str, columns: int, *, cut_mark: str = "") -> str:
    """The text cut to at most `columns` columns (ending in `cut_mark` when cut), then padded to
    exactly that many."""
    if width(text) > columns:
        kept = ""
        for char in text:
            if width(kept + char + cut_mark) > columns:
                break
            kept += char
        text = kept + cut_mark
    return text + " " * (columns - width(text))
