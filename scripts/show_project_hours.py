"""Print the project_hours mart that dbt built, with a bar of hours per project, and draw it.

Usage: show_project_hours.py WAREHOUSE.duckdb [CHART.svg]
The chart defaults to <warehouse folder>/<warehouse name>-project-hours.svg. It runs in the
dbt-duckdb utility's virtualenv, which has the duckdb that wrote the file and matplotlib.
"""

import sys
import unicodedata
import warnings
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
from matplotlib.figure import Figure

MART = "toggl_analytics.project_hours"
BAR_WIDTH = 30
# Eighths of a block: a bar ends on the right fraction of a column, not on a whole one.
BAR_ENDS = " ▏▎▍▌▋▊▉"


def display_width(text: str) -> int:
    """Columns a terminal gives the text: East Asian wide characters take two, accents none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def fit(text: str, width: int) -> str:
    """The text cut (with …) or padded to exactly `width` terminal columns."""
    if display_width(text) > width:
        while display_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (width - display_width(text))


def bar(value: float, largest: float) -> str:
    eighths = round(BAR_WIDTH * 8 * value / largest) if largest > 0 else 0
    whole, rest = divmod(eighths, 8)
    return ("█" * whole + BAR_ENDS[rest]).rstrip()


def read_mart(warehouse: str) -> list[dict[str, Any]]:
    with duckdb.connect(warehouse, read_only=True) as db:
        cursor = db.execute(f"select * from {MART} order by hours_tracked desc, project_name")  # noqa: S608 - a constant
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def print_table(rows: list[dict[str, Any]]) -> None:
    largest = max((row["hours_tracked"] for row in rows), default=0)
    print(f"    {fit('project', 24)} {fit('client', 14)} {'open':>5} {'done':>5} {'hours':>8}")
    for row in rows:
        print(
            f"    {fit(row['project_name'] or '-', 24)} {fit(row['client_name'] or '-', 14)}"
            f" {row['open_tasks']:>5} {row['done_tasks']:>5} {row['hours_tracked']:>8.1f}"
            f"  {bar(row['hours_tracked'], largest)}"
        )


def draw_chart(rows: list[dict[str, Any]], chart: Path) -> None:
    """Hours tracked against hours estimated, one pair of bars per project, as an SVG."""
    names = [row["project_name"] or "-" for row in reversed(rows)]
    tracked = [row["hours_tracked"] for row in reversed(rows)]
    estimated = [row["hours_estimated"] for row in reversed(rows)]
    positions = range(len(rows))
    figure = Figure(figsize=(9, 1.2 + 0.5 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    axes.barh([p + 0.2 for p in positions], tracked, height=0.4, label="hours tracked")
    axes.barh([p - 0.2 for p in positions], estimated, height=0.4, label="hours estimated")
    axes.set_yticks(list(positions), names)
    axes.set_xlabel("hours (tasks deleted in Toggl left out)")
    axes.set_title("Toggl tasks: hours per project")
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    chart.parent.mkdir(parents=True, exist_ok=True)
    # Text stays text in the SVG, so the browser draws CJK and emoji project names with its own
    # fonts; matplotlib's bundled font lacks them, which it would only warn about here.
    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none"}):
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(chart, format="svg", metadata={"Date": None})


def main(warehouse: str, chart: str | None = None) -> None:
    rows = read_mart(warehouse)
    warehouse_path = Path(warehouse)
    chart_path = (
        Path(chart)
        if chart
        else warehouse_path.with_name(f"{warehouse_path.stem}-project-hours.svg")
    )
    print(f"Hours per project: {MART}, built by dbt in {relative(warehouse_path)}")
    print_table(rows)
    draw_chart(rows, chart_path)
    print(f"  the same as a chart: {relative(chart_path)} (open it in a browser)\n")


def relative(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


if __name__ == "__main__":
    main(*sys.argv[1:3])
