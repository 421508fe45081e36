"""How fast the tap syncs, next to a plain-Python baseline doing the same work.

For each size it serves that many demo tasks from the local Toggl-compatible server and runs,
alternately, the tap (`tap-toggl-tasks --config ...`, as users run it) and the baseline
(`python -m benchmarks.baseline`), each a process writing its messages to a file. It prints
records/s, requests, peak RSS and wall time of both, their ratio, and how long `--about` takes
next to a minimal SDK tap.

    .venv/bin/python -m benchmarks.run                       # 1k, 10k and 100k tasks, 3 runs each
    .venv/bin/python -m benchmarks.run --sizes 10000 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import override

from tap_toggl_tasks.schema import TOGGL_FIELDS
from tap_toggl_tasks.settings import DEFAULT_PAGE_SIZE
from toggl_standin.demo_data import demo_tasks
from toggl_standin.server import TogglServer, _Response

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
API_TOKEN = "bench-token"
PAGE_SIZE = DEFAULT_PAGE_SIZE  # the tap's default; the baseline asks for the same


class PagedTogglServer(TogglServer):
    """The test server, answering a query it has seen before from memory.

    Filtering and serialising 100k tasks for every page would make the server the slowest
    part of the run and hide the difference between tap and baseline; a warm-up run fills
    the cache, then both clients read pre-serialised pages.
    """

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        super().__init__(tasks, api_token=API_TOKEN)
        self._answers: dict[tuple[str | None, tuple[tuple[str, str], ...]], _Response] = {}

    @override
    def _respond(self, authorization: str | None, params: dict[str, str]) -> _Response:
        key = (authorization, tuple(sorted(params.items())))
        if (answer := self._answers.get(key)) is None:
            answer = self._answers[key] = super()._respond(authorization, params)
        # A copy: the handler adds fault headers to the response it is given.
        return _Response(answer.status, answer.body, dict(answer.headers))


@dataclass
class Run:
    """One process: how long it took, its own peak RSS, what it sent and wrote."""

    wall: float
    peak_rss: int  # bytes
    requests: int
    records: int

    @property
    def records_per_second(self) -> float:
        return self.records / self.wall


def run_process(command: list[str], output: Path) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one process, its stdout going to `output`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_TOGGL_TASKS_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.spawn", str(output), *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    result = json.loads(done.stdout.splitlines()[-1]) if done.stdout else {"exit_code": -1}
    if done.returncode != 0 or result["exit_code"] != 0:
        raise RuntimeError(f"{command} failed:\n{done.stderr.decode()[-2000:]}")
    return float(result["wall"]), int(result["peak_rss"])


def count_records(output: Path) -> int:
    with output.open("rb") as lines:
        return sum(1 for line in lines if line.startswith(b'{"type":"RECORD","stream":"tasks"'))


def records_in(output: Path) -> dict[int, dict[str, Any]]:
    """The task records of a run by id, Toggl's fields only (the tap adds _sdc_table_version)."""
    records = {}
    with output.open("rb") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD" and message["stream"] == "tasks":
                record = message["record"]
                records[record["id"]] = {name: record.get(name) for name in TOGGL_FIELDS}
    return records


def tap_command(workdir: Path, url: str) -> list[str]:
    config = workdir / "config.json"
    # Pacing off: the figures compare records per second, not Toggl's one request a second.
    config.write_text(
        json.dumps({"api_token": API_TOKEN, "api_url": url, "request_interval_seconds": 0})
    )
    return [str(BIN / "tap-toggl-tasks"), "--config", str(config)]


def baseline_command(url: str) -> list[str]:
    fields = ",".join(TOGGL_FIELDS)
    return [
        sys.executable,
        "-m",
        "benchmarks.baseline",
        *("--api-url", url, "--api-token", API_TOKEN),
        *("--page-size", str(PAGE_SIZE), "--fields", fields),
    ]


def measure(server: TogglServer, command: list[str], output: Path) -> Run:
    before = len(server.requests)
    wall, peak_rss = run_process(command, output)
    return Run(wall, peak_rss, len(server.requests) - before, count_records(output))


def bench_size(size: int, repeat: int, workdir: Path) -> tuple[list[Run], list[Run]]:
    """Runs of tap and baseline on `size` tasks, alternating, the first of each pair swapping."""
    with PagedTogglServer(demo_tasks(size)) as server:
        tap, baseline = tap_command(workdir, server.url), baseline_command(server.url)
        tap_out, baseline_out = workdir / "tap.jsonl", workdir / "baseline.jsonl"
        measure(server, baseline, baseline_out)  # warm-up: fills the server's page cache
        taps: list[Run] = []
        baselines: list[Run] = []
        for attempt in range(repeat):
            pair = [(tap, tap_out, taps), (baseline, baseline_out, baselines)]
            for command, output, runs in pair if attempt % 2 == 0 else pair[::-1]:
                runs.append(measure(server, command, output))
        if records_in(tap_out) != records_in(baseline_out):
            raise RuntimeError(f"{size} tasks: the tap and the baseline wrote different records")
        if taps[-1].records != size:
            raise RuntimeError(f"{size} tasks: the tap wrote {taps[-1].records} records")
        if taps[-1].requests != baselines[-1].requests:
            raise RuntimeError(
                f"{size} tasks: the tap sent {taps[-1].requests} requests, the baseline "
                f"{baselines[-1].requests}: they no longer do the same work"
            )
    return taps, baselines


def about_seconds(commands: list[list[str]], repeat: int) -> list[float]:
    """The median wall time of each `command --about`, run in turns so that drift hits all."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for command, spent in zip(commands, times, strict=True):
            started = time.perf_counter()
            subprocess.run([*command, "--about"], cwd=ROOT, capture_output=True, check=True)
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {ram:.0f} GiB RAM, {platform.system()}, "
        f"Python {platform.python_version()}"
    )


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="task counts"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, per size")
    parser.add_argument("--about-repeat", type=int, default=11, help="runs of each --about")
    args = parser.parse_args(argv)
    sizes: list[int] = args.sizes

    print(f"Machine: {machine()}")
    print(f"Median of {args.repeat} runs each; peak RSS is the largest; page size {PAGE_SIZE}.\n")
    print(
        "| tasks | records/s tap | records/s baseline | tap/baseline | requests tap/baseline "
        "| peak RSS tap/baseline | wall tap/baseline |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="tap-toggl-tasks-bench-") as tmp:
        for size in sizes:
            taps, baselines = bench_size(size, args.repeat, Path(tmp))
            tap_rate = statistics.median(run.records_per_second for run in taps)
            baseline_rate = statistics.median(run.records_per_second for run in baselines)
            print(
                f"| {size:,} | {tap_rate:,.0f} | {baseline_rate:,.0f} "
                f"| {tap_rate / baseline_rate:.2f} "
                f"| {taps[-1].requests} / {baselines[-1].requests} "
                f"| {mib(max(r.peak_rss for r in taps))} / "
                f"{mib(max(r.peak_rss for r in baselines))} "
                f"| {statistics.median(r.wall for r in taps):.2f} s / "
                f"{statistics.median(r.wall for r in baselines):.2f} s |",
                flush=True,
            )

    ours, plain = about_seconds(
        [[str(BIN / "tap-toggl-tasks")], [sys.executable, "-m", "benchmarks.plain_tap"]],
        args.about_repeat,
    )
    print(
        f"\n--about (median of {args.about_repeat}): tap-toggl-tasks {ours * 1000:.0f} ms, "
        f"minimal SDK tap {plain * 1000:.0f} ms ({ours / plain:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
