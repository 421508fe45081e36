"""A private PostgreSQL server (scripts/private-postgres) for the pipeline tests, and its databases.

Test modules that need one take the `postgres` fixture by importing `postgres_fixture`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.project import ROOT

SCRIPT = ROOT / "scripts" / "private-postgres"


@contextmanager
def private_postgres() -> Iterator[str]:
    """postgresql://postgres@127.0.0.1:<port> of a server of our own, stopped whatever happens."""
    # Not in a group of its own that ends with the command: pg_ctl leaves the server running.
    started = subprocess.run(
        [str(SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=900,  # may first install Debian's postgresql package
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start:\n{started.stderr[-3000:]}")
    folder, url = started.stdout.split()
    try:
        yield url
    finally:
        subprocess.run([str(SCRIPT), "stop", folder], timeout=120, check=True)


@pytest.fixture(scope="module", name="postgres")
def postgres_fixture() -> Iterator[str]:
    """The `postgres` fixture: a private server's URL, up for one test module."""
    with private_postgres() as url:
        yield url


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg  # noqa: PLC0415 - only the pipeline tests need it

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as db:
        db.execute(f'create database "{name}"')  # a name of our own, not user input
    return f"{server_url}/{name}"


def sqlalchemy_url(url: str) -> str:
    """The URL as Meltano and target-postgres want it: SQLAlchemy with the psycopg 3 driver."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
