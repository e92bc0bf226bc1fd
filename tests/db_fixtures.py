"""Database fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL tests use the server at RETOUCH_TEST_POSTGRES_URL (start one with
`eval "$(bash .ci/postgres.sh)"`); each test gets a database of its own, dropped afterwards.
Without the variable they are skipped, with the reason shown, except on CI (CI=true), where
they fail so a missing server can never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.storage.database import Database, open_database

POSTGRES_URL_VARIABLE = "RETOUCH_TEST_POSTGRES_URL"
LOCK_TIMEOUT = "15s"
STATEMENT_TIMEOUT = "60s"


def postgres_admin_url() -> str:
    """The server's URL, or skip (fail on CI) when none is configured."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if url:
        return url
    reason = f'{POSTGRES_URL_VARIABLE} is not set; start a server with: eval "$(bash .ci/postgres.sh)"'
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run on CI: {reason}")
    pytest.skip(reason)


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    admin_url = postgres_admin_url()
    name = f"retouch_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        # A test that waits on a lock or a statement this long is broken (or is a mutant under `make
        # mutation`): it fails with PostgreSQL's error instead of hanging until the run's own timeout.
        await admin.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '{LOCK_TIMEOUT}'")
        await admin.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    finally:
        await admin.close()
    try:
        parts = urlsplit(admin_url)
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        # A connection of its own: the test may have restarted the server meanwhile.
        admin = await asyncpg.connect(admin_url)
        try:
            # FORCE ends connections a failed test may have left open.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A URL for an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'retouch.db'}"  # tmp_path is absolute: sqlite:////tmp/…
    else:
        async with fresh_postgres_database() as url:
            yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A URL for an empty PostgreSQL database (for PostgreSQL-only tests)."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open, migrated database on each backend."""
    async with open_database(database_url) as db:
        yield db
