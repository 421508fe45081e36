"""The README's promises that can drift from the code, and the links between it and docs/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `[text](target)`, not inside `code`: a relative target is a file of this repository.
LINK = re.compile(r"(?<!`)\[[^\]\n]*\]\(([^)\s]+)\)")
# Linked before it exists: docs/many-machines.md is written on another branch. Remove the name
# once that file is here (the test below says so).
NOT_YET_WRITTEN: set[str] = set()


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def test_settings_table_matches_about_output() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_toggl_tasks", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    settings_table = about.split("## Settings", 1)[1]

    readme = (ROOT / "README.md").read_text()

    assert table_rows(settings_table)
    for row in table_rows(settings_table):
        assert row in readme, f"README's settings table lacks or differs on: {row}"


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as
    hyphens, `-1`, `-2` after a repeated one. Headings inside code blocks are not headings."""
    found: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.+)", line)):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            repeated = slug
            for n in range(1, 100):
                if repeated not in found:
                    break
                repeated = f"{slug}-{n}"
            found.add(repeated)
    return found


def links(markdown: str) -> list[str]:
    """The link targets of the prose, code blocks left out."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return LINK.findall(prose)


def test_every_link_between_the_readme_and_docs_leads_somewhere() -> None:
    broken = []
    for doc in DOCS:
        for target in links(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # https:, mailto:: not this repository's
                continue
            path_part, _, anchor = target.partition("#")
            path = (doc.parent / path_part).resolve() if path_part else doc
            name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if name in NOT_YET_WRITTEN and not path.exists():
                continue
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and anchor not in anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_links_not_yet_written_are_still_missing() -> None:
    written = sorted(name for name in NOT_YET_WRITTEN if (ROOT / name).exists())
    assert not written, f"{written} exist now: remove them from NOT_YET_WRITTEN"


def test_the_readme_stays_a_front_door() -> None:
    """Details belong in docs/, one file per topic; the README is read in five minutes."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details to docs/"
    for doc in DOCS[1:]:
        assert f"(docs/{doc.name})" in "\n".join(lines), f"the README's map lacks docs/{doc.name}"


def test_every_code_block_names_its_language_and_is_closed() -> None:
    """An opening fence without a language, or a closing fence left out, turns prose into
    commands the walk would run (or commands into prose it skips)."""
    for doc in DOCS:
        fences = [
            (number, line)
            for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
            if line.startswith("```")
        ]
        for (number, opening), (_, closing) in zip(fences[::2], fences[1::2], strict=False):
            where = f"{doc.relative_to(ROOT)} line {number}"
            assert opening != "```", f"{where}: name the block's language (```sh, ```text...)"
            assert closing == "```", f"{where}: the block is not closed before the next one"
        assert len(fences) % 2 == 0, f"{doc.relative_to(ROOT)}: a block is not closed"
