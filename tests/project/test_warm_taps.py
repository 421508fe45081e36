"""tests/support/warm_taps.py: a forked run of the tap is what a cold `python -c` run is, to the
test that reads it — the same output, exit status, signals, working directory and environment."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.environment import clean_environ
from tests.support.tap_runs import cold_run, config_for, forked_run, run_tap
from tests.support.warm_taps import fork_server, forkable
from toggl_standin.server import Fault, TogglServer


def without_times(log: str) -> list[str]:
    """The log's lines without their timestamp column, and without the lines of timings."""
    return [line.split("|", 1)[-1] for line in log.splitlines() if "METRIC" not in line]


def test_a_forked_run_prints_and_exits_as_a_cold_one(server: TogglServer, tmp_path: Path) -> None:
    run_tap(config_for(server, page_size=10), tmp_path)  # writes config.json and .env
    args = ["--config", str(tmp_path / "config.json")]

    forked = forked_run(args, tmp_path, clean_environ(), 60)
    cold = cold_run(args, tmp_path, clean_environ(), 60)

    assert forked[0] == cold[0] == 0
    assert forked[1].count('"type":"RECORD"') == cold[1].count('"type":"RECORD"') == 26
    assert len(forked[1].splitlines()) == len(cold[1].splitlines())
    assert len(without_times(forked[2])) == len(without_times(cold[2]))


def test_a_forked_run_reads_the_env_file_of_its_own_working_directory(
    server: TogglServer, tmp_path: Path
) -> None:
    # --config ENV: the token only in the .env where the run starts, as python-dotenv finds it
    # for a `-c` program (from the working directory)
    (tmp_path / ".env").write_text(
        f"TAP_TOGGL_TASKS_API_TOKEN=wrong\nTAP_TOGGL_TASKS_API_URL={server.url}\n"
    )
    args = ["--config", "ENV"]

    code, _, stderr = forked_run(args, tmp_path, clean_environ(), 60)

    assert code == 1
    assert "HTTP 403" in stderr
    assert cold_run(args, tmp_path, clean_environ(), 60)[0] == 1


def test_a_variable_given_to_one_run_is_not_seen_by_the_next(
    server: TogglServer, tmp_path: Path
) -> None:
    first = run_tap(config_for(server), tmp_path, env={"TAP_TOGGL_TASKS_LOGLEVEL": "DEBUG"})
    second = run_tap(config_for(server), tmp_path)

    assert "DEBUG" in first.stderr
    assert "DEBUG" not in second.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_forked_run_is_a_process_of_its_own_that_signals_reach(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with (
        TogglServer() as toggl,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        Path("/dev/null").open("rb") as stdin,
    ):
        toggl.script(Fault(delay=30))  # the first request hangs
        (tmp_path / "config.json").write_text(f'{{"api_token": "t", "api_url": "{toggl.url}"}}')
        tap = fork_server().start(
            ["--config", str(tmp_path / "config.json")],
            cwd=tmp_path,
            env=clean_environ(),
            stdin=stdin,
            stdout=out,
            stderr=err,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            tap.wait(timeout=1)
        tap.send_signal(sig)

        assert tap.wait(timeout=30) == (-sig if sig == signal.SIGKILL else 128 + sig)


@pytest.mark.parametrize(
    "variable", ["PYTHONHASHSEED", "PYTHONWARNINGS", "LD_PRELOAD", "FAKETIME", "LANG", "TZ"]
)
def test_a_run_whose_variables_shape_the_interpreter_is_started_cold(variable: str) -> None:
    assert forkable(clean_environ(TAP_TOGGL_TASKS_LOGLEVEL="DEBUG"))
    assert not forkable(clean_environ(**{variable: "x"}))
