"""Print the project_hours mart that dbt built, with a bar of hours per project, and draw it.

Usage: show_project_hours.py WAREHOUSE.duckdb [CHART.svg] [--state STATE.json]
The chart defaults to <warehouse folder>/<warehouse name>-project-hours.svg. With --state (what
`meltano state get` prints), the title says when the last sync began, by Toggl's clock: a sync
that loaded nothing still brings the data up to its moment. Without, it says when the newest row
was loaded. It runs in the dbt-duckdb utility's virtualenv, which has the duckdb that wrote the
file and matplotlib.
"""

import argparse
import datetime
import json
import warnings
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
from matplotlib.figure import Figure
from terminal_columns import fit

MART = "toggl_analytics.project_hours"
LOADED = "toggl.tasks"  # the loader's table, whose _sdc_extracted_at says when a row was read
BAR_WIDTH = 30
# Eighths of a block: a bar ends on the right fraction of a column, not on a whole one.
BAR_ENDS = " ▏▎▍▌▋▊▉"


def cell(text: str, columns: int) -> str:
    """A table cell: the text cut with … or padded to exactly `columns` terminal columns."""
    return fit(text, columns, cut_mark="…")


def bar(value: float, largest: float) -> str:
    eighths = round(BAR_WIDTH * 8 * value / largest) if largest > 0 else 0
    whole, rest = divmod(eighths, 8)
    return ("█" * whole + BAR_ENDS[rest]).rstrip()


def read_mart(warehouse: str) -> tuple[list[dict[str, Any]], datetime.datetime | None]:
    """The mart's rows, and when the newest row was read from Toggl (None: unknown)."""
    with duckdb.connect(warehouse, read_only=True) as db:
        cursor = db.execute(f"select * from {MART} order by hours_tracked desc, project_name")  # noqa: S608 - a constant
        names = [column[0] for column in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        try:
            [(loaded,)] = db.execute(f"select max(_sdc_extracted_at) from {LOADED}").fetchall()  # noqa: S608 - a constant
        except duckdb.Error:
            loaded = None  # a warehouse loaded some other way
        return rows, loaded


def last_sync(state_file: str) -> datetime.datetime | None:
    """When the last complete sync began, by Toggl's clock: the bookmark of the tasks stream."""
    state = json.loads(Path(state_file).read_text(encoding="utf-8") or "{}")
    bookmark = state.get("singer_state", state).get("bookmarks", {}).get("tasks", {})
    value = bookmark.get("replication_key_value")
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else None


def as_of_text(synced: datetime.datetime | None, loaded: datetime.datetime | None) -> str:
    """`as of the sync of 2026-12-02 09:58 UTC`, else when the newest row was loaded."""
    if synced is not None:
        return f"as of the sync of {synced.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    if loaded is not None:  # the loader's UTC, without a zone
        return f"newest row loaded {loaded:%Y-%m-%d %H:%M} UTC"
    return "as of an unknown time"


def print_table(rows: list[dict[str, Any]]) -> None:
    largest = max((row["hours_tracked"] for row in rows), default=0)
    print(f"    {cell('project', 24)} {cell('client', 14)} {'open':>5} {'done':>5} {'hours':>8}")
    for row in rows:
        print(
            f"    {cell(row['project_name'] or '-', 24)} {cell(row['client_name'] or '-', 14)}"
            f" {row['open_tasks']:>5} {row['done_tasks']:>5} {row['hours_tracked']:>8.1f}"
            f"  {bar(row['hours_tracked'], largest)}"
        )


def draw_chart(rows: list[dict[str, Any]], chart: Path, as_of: str) -> None:
    """Hours tracked against hours estimated, one pair of bars per project, as an SVG."""
    names = [row["project_name"] or "-" for row in reversed(rows)]
    tracked = [row["hours_tracked"] for row in reversed(rows)]
    estimated = [row["hours_estimated"] for row in reversed(rows)]
    positions = range(len(rows))
    figure = Figure(figsize=(9, 1.2 + 0.5 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    for offset, values, label in (
        (0.2, tracked, "hours tracked"),
        (-0.2, estimated, "hours estimated"),
    ):
        bars = axes.barh([p + offset for p in positions], values, height=0.4, label=label)
        # The value at the end of each bar: reading it off the axis is guesswork.
        axes.bar_label(bars, fmt="%.1f", padding=3, fontsize="small")
    axes.margins(x=0.12)  # room for the labels of the longest bars
    axes.set_yticks(list(positions), names)
    axes.set_xlabel("hours (tasks deleted in Toggl left out)")
    axes.set_title(f"Toggl tasks: hours per project, {as_of}")
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    chart.parent.mkdir(parents=True, exist_ok=True)
    # Text stays text in the SVG, so the browser draws CJK and emoji project names with its own
    # fonts; matplotlib's bundled font lacks them, which it would only warn about here.
    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none"}):
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(chart, format="svg", metadata={"Date": None})


def main(warehouse: str, chart: str | None, state: str | None) -> None:
    rows, loaded = read_mart(warehouse)
    as_of = as_of_text(last_sync(state) if state else None, loaded)
    warehouse_path = Path(warehouse)
    chart_path = (
        Path(chart)
        if chart
        else warehouse_path.with_name(f"{warehouse_path.stem}-project-hours.svg")
    )
    print(f"Hours per project: {MART}, built by dbt in {relative(warehouse_path)}, {as_of}")
    print_table(rows)
    draw_chart(rows, chart_path, as_of)
    print(f"  the same as a chart: {relative(chart_path)} (open it in a browser)\n")


def relative(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    arguments.add_argument("warehouse", help="the DuckDB file dbt built the mart in")
    arguments.add_argument("chart", nargs="?", help="where to draw the chart (an .svg)")
    arguments.add_argument("--state", help="the state `meltano state get` printed, as a file")
    args = arguments.parse_args()
    main(args.warehouse, args.chart, args.state)
