"""The Airflow DAG `toggl_accounts`: every Toggl account in accounts.yml into PostgreSQL.

A task `accounts` reads the list when the run starts; `sync` is mapped over the account names, one
task instance per account, so the executor spreads accounts over its workers, a failing account
fails (and retries) alone, and the pool `toggl_accounts` bounds how many run at once. Each runs

    meltano run --state-id-suffix <account> tap-toggl-tasks target-postgres

in the Meltano project, with its own state id, its own warehouse schema `toggl_<account>` and its
own token, which it reads from where accounts.yml says (an environment variable, an Airflow
Variable or an Airflow Connection) only inside its own task and passes only to its own `meltano`
process: the token never reaches a template, an XCom or the log (README, "Many accounts").
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk import DAG, Connection, Variable, get_current_context, task
from airflow.sdk.log import mask_secret

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
ACCOUNTS_FILE = Path(os.environ.get("TOGGL_ACCOUNTS_FILE") or PROJECT_ROOT / "accounts.yml")
MELTANO = os.environ.get("MELTANO_EXECUTABLE", "meltano")
POOL = "toggl_accounts"


def trial_run(argv: list[str]) -> bool:
    """Whether this process is `airflow dags test`, a person's trial run, watching it end.

    It parses this file and runs the tasks in itself: a retry would keep it polling
    "up_for_retry" for the whole retry delay after the account's message was logged.
    """
    return argv[1:3] == ["dags", "test"]


# Two retries 30 minutes apart outlast any hour of used-up quota (the tap itself waits out a reset
# due within 15 minutes); a trial run fails at once. The environment variables win over both, so
# that tests need not wait that long.
RETRIES = int(os.environ.get("TOGGL_ACCOUNTS_RETRIES") or (0 if trial_run(sys.argv) else 2))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("TOGGL_ACCOUNTS_RETRY_DELAY_SECONDS", "1800")))
# Daily at 05:00 UTC; TOGGL_ACCOUNTS_SCHEDULE (on the DAG processor) gives another cron
# expression, or "none": runs only when triggered.
SCHEDULE = os.environ.get("TOGGL_ACCOUNTS_SCHEDULE") or "0 5 * * *"

# A name becomes the schema toggl_<name> and the state id suffix: a plain identifier, short
# enough for PostgreSQL's 63-byte limit.
_ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,56}")
_TOKEN_SOURCES = ("token_env", "token_variable", "token_connection")
# Credentials written into a tracked file are refused, whatever the spelling.
_SECRET_SETTINGS = frozenset({"api_token", "password", "email"})
_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Variables of the worker that would give this account another user's credentials.
_INHERITED_CREDENTIALS = (
    "TAP_TOGGL_TASKS_API_TOKEN",
    "TAP_TOGGL_TASKS_EMAIL",
    "TAP_TOGGL_TASKS_PASSWORD",
)
# A line of Meltano's console log: time, [level], the plugin (or "meltano"), the message.
_MELTANO_LINE = re.compile(r"^\S+ \[\s*(\w+)\s*\] (\S+)\s+(.*)$")

# prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1

log = logging.getLogger(__name__)


class AccountsError(Exception):
    """accounts.yml is wrong, or an account's token is missing: the message says what to fix."""


@dataclass(frozen=True)
class Account:
    """One line of accounts.yml: a name, where its token is, and its own tap settings."""

    name: str
    source: str  # env, variable or connection: the key token_<source> in accounts.yml
    token_name: str
    settings: Mapping[str, Any]

    def token(self) -> str:
        """The token, read from its source now, on the worker running this account's task."""
        if self.source == "env":
            token = os.environ.get(self.token_name)
            where = f"the environment variable {self.token_name} is not set on this worker"
        elif self.source == "variable":
            token = Variable.get(self.token_name, default=None)
            where = f"there is no Airflow Variable {self.token_name}"
        else:
            token = Connection.get(self.token_name).password
            where = f"the Airflow Connection {self.token_name} has no password"
        if not token:
            raise AccountsError(f"Account {self.name}: no Toggl API token: {where}.")
        return str(token)

    def token_variables(self) -> tuple[str, ...]:
        """The environment variables that may hold this account's token on a worker."""
        if self.source == "env":
            return (self.token_name,)
        # Airflow also reads Variables and Connections from AIRFLOW_VAR_* and AIRFLOW_CONN_*.
        prefix = "AIRFLOW_VAR_" if self.source == "variable" else "AIRFLOW_CONN_"
        return (prefix + self.token_name.upper(),)

    def environment(
        self, token: str, inherited: Mapping[str, str], hidden: set[str]
    ) -> dict[str, str]:
        """The `meltano` process's environment: the worker's, without any account's token but
        this one's, in the one variable the tap reads."""
        env = {
            name: value
            for name, value in inherited.items()
            if name not in hidden and name not in _INHERITED_CREDENTIALS
        }
        for setting, value in self.settings.items():
            env[f"TAP_TOGGL_TASKS_{setting.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
        env["TAP_TOGGL_TASKS_API_TOKEN"] = token
        # A schema per account: concurrent loads never share a table (README, "Many accounts").
        env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = f"toggl_{self.name}"
        return env


def read_accounts(path: Path) -> list[Account]:
    """accounts.yml, checked whole: a mistake in it stops the run before any account starts."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise AccountsError(
            f"No accounts file at {path}: create it (README, 'Many accounts')."
        ) from None
    entries = document.get("accounts") or []
    if not isinstance(entries, list):
        raise AccountsError(f"{path}: 'accounts' must be a list of accounts.")
    accounts: list[Account] = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}, account {number}"
        if not isinstance(entry, dict):
            raise AccountsError(
                f"{where}: each account is a mapping with a name and a token source."
            )
        name = entry.get("name")
        if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name):
            raise AccountsError(
                f"{where}: name {name!r} must be lowercase letters, digits and _, starting "
                "with a letter, at most 57 characters (it names the schema toggl_<name>)."
            )
        if any(account.name == name for account in accounts):
            raise AccountsError(f"{where}: the name {name} is used twice.")
        sources = [key for key in _TOKEN_SOURCES if key in entry]
        if len(sources) != 1 or not isinstance(entry[sources[0]], str):
            raise AccountsError(
                f"{where} ({name}): give exactly one of {', '.join(_TOKEN_SOURCES)}, naming "
                "where the token is; never the token itself."
            )
        settings = entry.get("settings") or {}
        unknown = set(entry) - {"name", "settings", *_TOKEN_SOURCES}
        if unknown or not isinstance(settings, dict):
            raise AccountsError(
                f"{where} ({name}): unknown keys {sorted(unknown)}; see accounts.yml."
            )
        for setting in settings:
            if not isinstance(setting, str) or not _SETTING_NAME.fullmatch(setting):
                raise AccountsError(f"{where} ({name}): {setting!r} is not a tap setting name.")
            if setting in _SECRET_SETTINGS:
                raise AccountsError(
                    f"{where} ({name}): credentials never go in this file; "
                    f"name where the token is with one of {', '.join(_TOKEN_SOURCES)}."
                )
        accounts.append(
            Account(name, sources[0].removeprefix("token_"), entry[sources[0]], settings)
        )
    return accounts


def list_accounts() -> list[str]:
    """The names to map over: only names reach the XCom, never where or what the tokens are."""
    return [account.name for account in read_accounts(ACCOUNTS_FILE)]


def sync_account(account: str) -> None:
    """`meltano run` for one account, its log streamed into the task's; fails with its error."""
    get_current_context()["account"] = account  # names the mapped task instance in the UI
    accounts = read_accounts(ACCOUNTS_FILE)
    this = next((entry for entry in accounts if entry.name == account), None)
    if this is None:
        raise AccountsError(f"Account {account} is no longer in {ACCOUNTS_FILE}.")
    token = this.token()
    mask_secret(token)  # should any tool ever print it, Airflow's log shows ***
    hidden = {name for entry in accounts for name in entry.token_variables()}
    command = [MELTANO, "run", "--state-id-suffix", account, "tap-toggl-tasks", "target-postgres"]
    if get_current_context()["ti"].try_number > 1:
        # Airflow retries only once the try before has ended, or was declared lost after
        # [scheduler] task_instance_heartbeat_timeout without a heartbeat (its machine gone, or
        # its supervisor killed it, and its `meltano` with it: die_with_parent). A lost try's run
        # stays "running" in Meltano's system database until 5 minutes without a heartbeat, and
        # Meltano would refuse the retry until then. A first try keeps Meltano's guard.
        command.insert(2, "--force")
    log.info("Account %s: %s", account, " ".join(command))
    last_line: dict[str, str] = {}
    meltano_errors: list[str] = []
    with (
        own_meltano_folder(account) as folder,
        subprocess.Popen(  # noqa: S603 - our command; the name is checked to be an identifier
            command,
            cwd=PROJECT_ROOT,
            env={**this.environment(token, os.environ, hidden), **folder},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - one system call, no locks taken
        ) as meltano,
    ):
        try:
            for line in meltano.stdout or ():
                log.info("%s", line.rstrip())
                if parsed := _MELTANO_LINE.match(line.rstrip()):
                    level, plugin, message = parsed.groups()
                    last_line[plugin] = message
                    if plugin == "meltano" and level == "error":
                        meltano_errors.append(message)
        except BaseException:
            # Airflow stops the task (SIGTERM: timeout, marked failed, lost heartbeats): the run
            # stops too, rather than syncing on beside the next try.
            meltano.terminate()
            raise
    if meltano.returncode != 0:
        raise RuntimeError(f"Account {account}: {failure(last_line, meltano_errors)}")


def die_with_parent() -> None:
    """In the `meltano` process before it starts: SIGKILL when the task process dies (Linux).

    Killed outright, the task process cannot stop its `meltano`, which would go on syncing the
    account while Airflow retries it elsewhere.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextmanager
def own_meltano_folder(account: str) -> Iterator[dict[str, str]]:
    """A `.meltano` folder for this account's run alone, sharing the project's installed plugins.

    Meltano 4.4 keeps a tap's catalog and its input state.json in .meltano/run/<plugin>/, one
    folder for every `meltano run` in the project: two accounts syncing at once on one worker
    would read each other's catalog and state (tested: half-written catalogs). Each run gets its
    own run folder; the state itself stays in the shared state database.

    The folder holds the tap's config file, token included, while the run lasts. It is the
    account's own, at a fixed place in the project's .meltano/account-runs/ rather than a random
    temporary name: a run killed outright (SIGKILL, its machine gone) cannot delete it, and the
    account's next run on this machine does, as the worker's start empties account-runs/
    (docs/many-machines.md). Airflow runs one try of an account at a time, so nothing else uses
    the folder when it is emptied.
    """
    shared = Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or PROJECT_ROOT / ".meltano")
    own = shared / "account-runs" / account
    shutil.rmtree(own, ignore_errors=True)  # a killed run's, with its token
    own.mkdir(mode=0o700, parents=True)
    try:
        for plugins in ("extractors", "loaders"):
            (own / plugins).symlink_to(shared / plugins, target_is_directory=True)
        yield {
            "MELTANO_SYS_DIR_ROOT": str(own),
            # Meltano's default state database lives in its folder: keep using the shared one.
            "MELTANO_DATABASE_URI": os.environ.get("MELTANO_DATABASE_URI")
            or f"sqlite:///{shared / 'meltano.db'}",
        }
    finally:
        shutil.rmtree(own, ignore_errors=True)


def failure(last_line: Mapping[str, str], meltano_errors: list[str]) -> str:
    """What went wrong, in the words of the plugin that failed: its last line is its error."""
    for verdict, plugin in (
        ("Extractor failed", "tap-toggl-tasks"),
        ("Loader failed", "target-postgres"),
    ):
        if verdict in meltano_errors and plugin in last_line:
            return f"{plugin}: {last_line[plugin]}"
    return "; ".join(meltano_errors) or last_line.get("meltano", "meltano run failed")


with DAG(
    dag_id="toggl_accounts",
    description="Every Toggl account in accounts.yml into PostgreSQL, one mapped task each",
    schedule=None if SCHEDULE == "none" else SCHEDULE,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    # Each account's bookmark makes a run catch up on everything since the last: no backfill.
    catchup=False,
    # Two runs at once would start an account twice from the same bookmark.
    max_active_runs=1,
    tags=["meltano", "toggl"],
):
    names = task(task_id="accounts")(list_accounts)()
    task(
        task_id="sync",
        pool=POOL,
        retries=RETRIES,
        retry_delay=RETRY_DELAY,
        map_index_template="{{ account }}",
    )(sync_account).expand(account=names)
