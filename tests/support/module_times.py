"""A pytest plugin: `--module-times=FILE` writes each test module's own time to FILE.

scripts/test puts these under each pytest phase in its table of phase times. A module's time is
the sum of its tests' setup, call and teardown: with pytest-xdist workers side by side, what the
module itself costs, not a share of the phase's wall time. Lines are `module<TAB>seconds`, in
whole seconds, the slowest first.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--module-times",
        metavar="FILE",
        type=Path,
        help="write each test module's summed test time (seconds) to FILE",
    )


def pytest_configure(config: pytest.Config) -> None:
    path: Path | None = config.getoption("module_times")
    # Under pytest-xdist the controller receives every worker's reports: it alone writes.
    if path is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ModuleTimes(path))


class ModuleTimes:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.spent: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.spent[report.nodeid.split("::")[0]] += report.duration

    def pytest_sessionfinish(self) -> None:
        slowest_first = sorted(self.spent.items(), key=lambda item: -item[1])
        lines = (f"{module}\t{seconds:.0f}\n" for module, seconds in slowest_first)
        self.path.write_text("".join(lines), encoding="utf-8")
