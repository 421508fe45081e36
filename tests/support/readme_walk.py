"""What the README walk needs: the command blocks of README.md and docs/*.md, a fresh copy of the
repository, and one section's blocks run as a user would type them.

The conventions README authors follow (a token is written `<your token>`, PostgreSQL lives at
`db.example.com`, a block that cannot run here is preceded by `<!-- not run by CI: reason -->`)
are what this module substitutes or honours; nothing else is changed in a command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import run

NOT_RUN = re.compile(r"<!-- not run by CI: (?P<reason>[^>]+?) -->")
# `<your token>`, and the per-account forms `<acme token>` of the accounts recipe.
TOKEN_PLACEHOLDER = re.compile(r"<[\w' ]*token>")
TOGGL_API_URL = "https://api.track.toggl.com/api/v9"
# `postgresql+psycopg://<user>:secret@db.example.com/<database>`, whatever the user and database.
POSTGRES_HOST = re.compile(r"\w+:secret@db\.example\.com")
POSTGRES_DATABASE = re.compile(r"@db\.example\.com/(\w+)")
# What the tap logs when something is wrong; a user following the README must not see it. The
# SDK's own format names the level; Meltano relays the tap's lines under a level of its own.
TAP_TROUBLE = re.compile(
    r".*\|\s*(WARNING|ERROR|CRITICAL)\s*\|.*"
    r"|.*\[(warning|error|critical)\s*\] tap-toggl-tasks.*"
    r"|Traceback \(most recent call last\)"
)


# The docs a reader follows after the README, in the order the walk runs them: each finds what
# the ones before it installed (Meltano and the tap, then dbt, then Airflow). A file not named
# here runs after these, in name order.
DOCS_ORDER = (
    "warehouses-and-meltano.md",
    "dbt.md",
    "airflow-and-many-accounts.md",
    "many-machines.md",
    "sync-protocol-and-quota.md",
    "performance.md",
    "development.md",
)


def documents(root: Path) -> list[str]:
    """README.md, then every docs/*.md: the files whose sh blocks the walk runs, in its order."""
    present = {path.name for path in (root / "docs").glob("*.md")}
    ordered = [name for name in DOCS_ORDER if name in present]
    return ["README.md", *(f"docs/{name}" for name in ordered + sorted(present - set(ordered)))]


@dataclass(frozen=True)
class Block:
    """One ```sh block of the README or of a file in docs/."""

    section: str  # `README.md: Running it`
    line: int  # of the opening fence, 1-based
    code: str
    not_run_because: str | None
    document: str = "README.md"


def readme_blocks(readme: str, document: str = "README.md") -> list[Block]:
    """Every ```sh block, with its `## ` section and the reason it is not run, if marked."""
    blocks: list[Block] = []
    section = f"{document}: (before the first section)"
    last_text = ""  # the last non-blank line outside a block: where a `not run` mark sits
    fence: tuple[int, str] | None = None  # the open block's line number and language
    body: list[str] = []
    for number, line in enumerate(readme.splitlines(), start=1):
        if fence is None and line.startswith("```"):
            fence, body = (number, line[3:].strip()), []
        elif fence is not None and line.startswith("```"):
            if fence[1] == "sh":
                marked = NOT_RUN.search(last_text)
                reason = marked.group("reason") if marked else None
                blocks.append(Block(section, fence[0], "\n".join(body), reason, document))
            fence, last_text = None, line
        elif fence is not None:
            body.append(line)
        elif line.strip():
            last_text = line
            if line.startswith("## "):
                section = f"{document}: {line[3:].strip()}"
    return blocks


def sections(blocks: list[Block]) -> dict[str, list[Block]]:
    """The blocks by section, in the order given, for sections with at least one block."""
    by_section: dict[str, list[Block]] = {}
    for block in blocks:
        by_section.setdefault(block.section, []).append(block)
    return by_section


def copy_repository(root: Path, into: Path) -> Path:
    """A fresh clone of the checkout, uncommitted work included: the tracked files and the
    untracked ones git does not ignore, committed in a repository of its own."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():  # a tracked file deleted in the work tree is not in a clone
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    git = ["git", "-c", "user.name=walk", "-c", "user.email=walk@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fresh clone"]):
        subprocess.run([*git, *command], cwd=into, check=True, capture_output=True, timeout=300)
    return into


@dataclass(frozen=True)
class StandIns:
    """What replaces the README's placeholders here."""

    token: str
    toggl_url: str  # the local Toggl-compatible server's API URL
    postgres_host: str  # user@host:port of the private PostgreSQL server


def as_run_here(code: str, stand_ins: StandIns) -> str:
    """The block with the README's placeholders replaced by the local stand-ins."""
    code = TOKEN_PLACEHOLDER.sub(stand_ins.token, code)
    code = code.replace(TOGGL_API_URL, stand_ins.toggl_url)
    return POSTGRES_HOST.sub(stand_ins.postgres_host, code)


@dataclass(frozen=True)
class SectionRun:
    returncode: int
    output: str


def run_section(
    blocks: list[Block], cwd: Path, env: dict[str, str], stand_ins: StandIns
) -> SectionRun:
    """Run a section's runnable blocks in one bash, in order, stopping at the first failure.

    One shell per section, as a reader types a section's commands in one terminal: what one
    block exports or sources (`source scripts/setup-meltano`), the next one sees.
    """
    script = ["set -eo pipefail"]
    for block in blocks:
        if block.not_run_because is None:
            script.append(f"printf '\\n>>> {block.document} line {block.line}\\n'")
            script.append(as_run_here(block.code, stand_ins))
    done = run(
        ["bash", "--noprofile", "--norc", "-c", "\n".join(script)],
        cwd=cwd,
        env=env,
        timeout=1800,
        stderr_into_stdout=True,
    )
    return SectionRun(done.returncode, done.stdout)


def leaked_into_git(repository: Path, secret: str) -> list[str]:
    """Files that `git add -A` would commit and that hold the secret: untracked files git does
    not ignore, and tracked files changed since the copy."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--others", "--exclude-standard", "--modified"],
        cwd=repository,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout.decode()
    return sorted(
        name
        for name in set(filter(None, listed.split("\0")))
        if (repository / name).is_file() and secret.encode() in (repository / name).read_bytes()
    )
