"""One bot process per SQLite file: the operating system's lock the bot's own open takes (`sole=True`).

flock locks belong to an open file description, so two opens in this one test process conflict exactly as two
processes would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

import pytest

from services.storage import database as database_module
from services.storage.database import Database, DatabaseInUse, open_database
from tests.helpers import until

# SQLITE_SOLE_WAIT_SECONDS shortened: how long a second process waits for the first to let go, before it gives up.
SHORT_WAIT_SECONDS = 0.3


def descriptors_on(path: Path) -> int:
    """How many of this process's file descriptors are open on `path`."""
    target = str(path.resolve())
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own descriptor)
            count += os.readlink(entry) == target
    return count


def umask() -> int:
    """This process's file mode creation mask (read, not set: setting it would race other threads)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)


def refusal(path: Path) -> str:
    return (
        f"DATABASE_URL: another Retouch process is running on {path}; a SQLite file serves one process"
        " (stop the other first; several processes, and rolling restarts, need PostgreSQL)"
    )


async def test_a_second_sole_open_is_refused_naming_database_url_and_the_file_is_free_once_the_first_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "SQLITE_SOLE_WAIT_SECONDS", SHORT_WAIT_SECONDS)
    path = tmp_path / "data" / "retouch.db"
    url = f"sqlite:///{path}"
    first = await open_database(url, sole=True)
    try:
        held = descriptors_on(path)
        with pytest.raises(DatabaseInUse) as refused:
            await open_database(url, sole=True)
        assert str(refused.value) == refusal(path)
        assert descriptors_on(path) == held  # the refused open let go of what it opened
        # Tools and tests open the file beside the bot: only the bot's own run takes it.
        async with open_database(url) as beside:
            assert await beside.fetch_value("SELECT 1") == 1
    finally:
        await first.close()
    # The first one's close let go at once, and so does every later one's.
    for _ in range(2):
        async with open_database(url, sole=True) as later:
            assert await later.fetch_value("SELECT 1") == 1


async def test_the_sole_open_creates_the_file_with_sqlites_own_permissions(tmp_path: Path) -> None:
    path = tmp_path / "retouch.db"
    async with open_database(f"sqlite:///{path}", sole=True):
        mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o644 & ~umask()  # rw-r--r--, what SQLite itself creates a database file with


async def opened(url: str) -> Database:
    return await open_database(url, sole=True)


async def test_a_second_sole_open_waits_for_the_first_to_let_go_then_serves(tmp_path: Path) -> None:
    path = tmp_path / "retouch.db"
    url = f"sqlite:///{path}"
    first = await open_database(url, sole=True)
    try:
        held = descriptors_on(path)
        second = asyncio.create_task(opened(url))
        # A restart in one go: the new process opens the file while the old one is still closing.
        await until(lambda: second.done() or descriptors_on(path) > held, 5, "the second open to try the lock")
        assert not second.done()
    finally:
        await first.close()
    database = await second
    try:
        await database.execute("CREATE TABLE served (n INTEGER)")
        await database.execute("INSERT INTO served (n) VALUES (1)")
        assert await database.fetch_value("SELECT n FROM served") == 1
    finally:
        await database.close()
