#!/usr/bin/env python3
"""A trial run of an Airflow DAG of this project that ends with what went wrong.

Usage, in the Meltano project (after `source scripts/setup-meltano`):

    scripts/airflow_trial.py DAG_ID [ARGS OF airflow dags test ...]

It runs `meltano invoke airflow dags test DAG_ID`, passing its whole log through as it comes
(Airflow's lines on stdout, Meltano's on stderr). When the run fails, Airflow and Meltano end
their log with verdicts that do not say why ("Bash command failed", "DagRun failed"), so what
went wrong follows them, on stderr under a one-line heading: the tap's ERROR paragraph, or the
DAG's own message such as "Account initech: tap-toggl-tasks: Toggl refused the credentials (HTTP
403 ...". The exit code is the run's. A run that succeeds prints what `dags test` prints, and
exits 0. Two warnings Airflow prints on every trial, about nothing in it, are left out.

Standard library only: any Python 3.11 runs it, Meltano's included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import IO

# A Meltano console line inside an Airflow log line: the task relays each line `meltano run`
# prints as a message of its own, so the line holds two timestamps. The second one's level and
# plugin are Meltano's; what follows the message is Airflow's logger and its key=value fields.
_RELAYED = re.compile(
    r"^\S+ \[\s*\w+\s*\] \d{4}-\d\d-\d\dT\S+ \[(?P<level>\w+)\s*\] (?P<plugin>\S+)\s+"
    r"(?P<message>.*?)(?: \[[\w.]+\](?: \w+=\S*)*)?$"
)
# The last line of a traceback Airflow prints for a failed task: `package.module.Type: message`.
_EXCEPTION = re.compile(r"^(?:\w+\.)*(?P<type>\w+): (?P<message>.+)$")
# What BashOperator raises whatever the command said: the plugin's own lines say why.
_BASH_FAILED = "Bash command failed."
# Exceptions whose message is written for a person, shown without the exception's name.
_PLAIN = frozenset({"RuntimeError", "AccountsError"})
# Two warnings every `dags test` of Airflow 3.3 prints that say nothing about the DAG: graphviz
# is only for drawing DAGs (`dags show`), and the other is Airflow's own in-process API client.
# Each is silenced by the start of its message (PYTHONWARNINGS matches a literal prefix).
_NOISE = (
    "ignore:Could not import graphviz:UserWarning",
    "ignore:Using `httpx` with `starlette.testclient` is deprecated",
)


def what_went_wrong(lines: Iterable[str]) -> list[str]:
    """The messages of a failed run's log that say what to fix, in order, each once.

    What a plugin logged at ERROR (the tap's paragraph, or a loader's), and what a failed task
    raised, unless that is only BashOperator's "Bash command failed" after a plugin said why. A
    plugin's message that a task's message repeats (the accounts DAG's "Account <name>: <plugin>:
    <message>") is shown once, in the form that names the account.
    """
    said: list[str] = []
    raised: list[tuple[str, str]] = []  # the exception's name and message
    in_traceback = False
    for line in (line.rstrip("\n") for line in lines):
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            in_traceback = False
            if exception := _EXCEPTION.match(line):
                raised.append((exception["type"], exception["message"]))
        # Meltano's own errors ("Extractor failed" and the like) say only which plugin failed.
        elif (
            (relayed := _RELAYED.match(line))
            and relayed["level"] == "error"
            and relayed["plugin"] != "meltano"
        ):
            said.append(f"{relayed['plugin']}: {relayed['message']}")
    if said:
        raised = [(name, message) for name, message in raised if _BASH_FAILED not in message]
    shown = [message if name in _PLAIN else f"{name}: {message}" for name, message in raised]
    said = [message for message in said if not any(message in other for other in shown)]
    return list(dict.fromkeys(said + shown))


def _relay(source: IO[str], sink: IO[str], kept: list[str]) -> None:
    for line in source:
        sink.write(line)
        sink.flush()
        kept.append(line)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    dag_id = argv[0]
    meltano = os.environ.get("MELTANO_EXECUTABLE", "meltano")
    command = [meltano, "invoke", "airflow", "dags", "test", *argv]
    kept: tuple[list[str], list[str]] = ([], [])  # each stream's lines: a traceback stays whole
    quiet = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), *_NOISE]))
    with subprocess.Popen(  # noqa: S603 - the user's own DAG id and arguments, no shell
        command,
        env={**os.environ, "PYTHONWARNINGS": quiet},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        bufsize=1,
    ) as run:
        relays = [
            threading.Thread(target=_relay, args=(run.stdout, sys.stdout, kept[0]), daemon=True),
            threading.Thread(target=_relay, args=(run.stderr, sys.stderr, kept[1]), daemon=True),
        ]
        for relay in relays:
            relay.start()
        try:
            for relay in relays:
                relay.join()
            returncode = run.wait()
        except KeyboardInterrupt:  # Ctrl-C reached `meltano` too: let it stop
            return run.wait()
    if returncode == 0:
        return 0
    messages = what_went_wrong(kept[0] + kept[1])
    sys.stdout.flush()
    if messages:
        print(f"\nThe trial run of {dag_id} failed; what went wrong:", file=sys.stderr)
        print("\n".join(messages), file=sys.stderr)
    else:
        print(
            f"\nThe trial run of {dag_id} failed (exit code {returncode}); the log above says why.",
            file=sys.stderr,
        )
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
