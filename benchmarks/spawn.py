"""Run one command, its stdout to a file, and print its wall time and peak RSS as JSON.

A child's ru_maxrss includes the memory of the process it was forked from (Linux keeps the
high-water mark across exec), so a process forked by the benchmark, which holds every task the
server serves, would report the benchmark's size. Started from this small process instead, a
child reports its own peak.

    python -m benchmarks.spawn OUTPUT COMMAND...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    output, *command = argv
    with open(output, "wb") as out:  # noqa: PTH123 (pathlib: one more import in a process kept small)
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out)
        # wait4: this child's own rusage; RUSAGE_CHILDREN would be the largest of all children.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "wall": wall,
                "peak_rss": usage.ru_maxrss * 1024,  # KiB on Linux
                "exit_code": os.waitstatus_to_exitcode(status),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
