"""One storage interface over SQLite (aiosqlite) and PostgreSQL (asyncpg).

Every difference between the two drivers lives in this module: placeholders (callers always write
`?`; PostgreSQL gets `$1, $2, …`), how a transaction begins and what it locks, how a process tells
whether another process is still alive, and how deleted rows are made unrecoverable from the files.
The schema itself is `services/storage/migrations.py`; this module applies its pending steps on opening.

Callers use `open_database(url)`::

    async with open_database("sqlite:///data/retouch.db") as db:
        await db.set_meta("commands_hash", "…")

or `db = await open_database(url)` followed by `await db.close()`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import aiosqlite
import asyncpg

from services.storage.migrations import MIGRATIONS, Dialect, Migration
from services.storage.trips import SharedTrips

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLite waits this long for another process's write lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_CACHE_KIB = 512  # the page cache of each connection (see SqliteDatabase._connect)
# How long a bot run waits for another process to let go of its SQLite file before refusing to start.
SQLITE_SOLE_WAIT_SECONDS = 10.0
POSTGRES_POOL_SIZE = 10
# Serialises schema migrations between processes that start at the same time on one PostgreSQL server.
_MIGRATION_LOCK_NAME = "retouch:schema-migrations"
# How long a scrub waits for a table's exclusive lock. A lock request waiting in line holds up every
# request behind it (each edit's reads and writes), so the scrub gives up quickly and is tried again later.
SCRUB_LOCK_TIMEOUT_MS = 200


class ScrubBusy(Exception):
    """The scrub could not have the table (or SQLite's write-ahead log) to itself just now; nothing was lost."""


# How often the liveness connection is asked whether it still holds its lock (a closed connection is noticed
# at once; a silent network drop only by a question that gets no answer in time).
LIVENESS_CHECK_SECONDS = 2.0
LIVENESS_CHECK_TIMEOUT = 3.0
# Between attempts to connect again and take the lock back after the liveness connection dropped.
LIVENESS_RETRY_SECONDS = 0.5
# A reservation waits this long for a dropped liveness lock to be taken again before refusing to reserve.
LIVENESS_WAIT_SECONDS = 5.0
# Between attempts of an operation that must not be lost (settling what was delivered) while the database is away.
UNREACHABLE_RETRY_SECONDS = 1.0
# What the driver raises when the server is away, restarting or dropped the connection, as opposed to a
# statement it refused: these are worth trying again once the database is back.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is one)
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # "terminating connection due to administrator command"
    asyncpg.InterfaceError,  # "connection is closed"
)


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database is away (try again once it is back), not that a statement was refused."""
    return isinstance(error, _UNREACHABLE)


async def outlast(operation: Callable[[], Awaitable[T]], patience: float) -> T:
    """Run `operation`, again and again while the database is unreachable, for up to `patience` seconds.

    For what must not be lost when the database restarts or the network drops (charging delivered images,
    recording posted results); `operation` must be idempotent, since an attempt may have committed before
    its answer was lost.
    """
    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except _UNREACHABLE as exc:
            if time.monotonic() >= deadline:
                raise
            if attempt == 1:
                log.warning("The database is unreachable (%r); trying again for up to %.0f s", exc, patience)
            await asyncio.sleep(UNREACHABLE_RETRY_SECONDS)


class DatabaseInUse(Exception):
    """Another process already serves from this SQLite file (the message says so in one line)."""


class DatabaseUnavailable(Exception):
    """The database cannot be used safely right now (this process cannot prove it is alive); try again soon."""


class Row(Protocol):
    """A result row: `sqlite3.Row` or `asyncpg.Record`; both index by position and by column name."""

    def __getitem__(self, key: int | str) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock named `name`.

    A collision between two names only makes them wait for each other; it never breaks correctness.
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def upsert_sql(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    """`INSERT … ON CONFLICT (keys) DO UPDATE` (both engines share this syntax), parameters keys then values."""
    columns = [*keys, *values]
    placeholders = ", ".join("?" for _ in columns)
    conflict = ", ".join(keys)
    if not values:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO NOTHING"
    updates = ", ".join(f"{column} = excluded.{column}" for column in values)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


class Executor(abc.ABC):
    """Runs SQL written with `?` placeholders. Implemented by `Database` and by its transactions."""

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        """Run a query and return every row."""

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        """Run a query and return its first row, or None."""
        rows = await self.fetch_all(sql, *args)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, *args: Any) -> Any:
        """Run a query and return the first column of its first row, or None."""
        row = await self.fetch_one(sql, *args)
        return None if row is None else row[0]

    async def upsert(self, table: str, keys: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Insert a row, or update `values` on the row that has these `keys`."""
        await self.execute(upsert_sql(table, list(keys), list(values)), *keys.values(), *values.values())


class Transaction(Executor, abc.ABC):
    """Statements that commit together. Leaving the `async with` block commits; an exception rolls back."""

    @abc.abstractmethod
    async def lock(self, *names: str) -> None:
        """Hold exclusive locks on these names until the transaction ends.

        Anything that reads, checks and then writes shared state (a quota) locks the names of that
        state first; two transactions locking the same name run one after the other.
        """


class Database(Executor, abc.ABC):
    """A connection (SQLite) or connection pool (PostgreSQL) with the schema migrated."""

    dialect: ClassVar[Dialect]
    # Whether `scrub` rewrites whole tables (PostgreSQL's VACUUM FULL, which locks out reads while it runs), so
    # that it must be rationed; SQLite's checkpoint of the write-ahead log costs little and runs every time.
    scrub_rewrites: ClassVar[bool]

    def __init__(self, migrations: Sequence[Migration]) -> None:
        self._migrations = tuple(migrations)
        # Tags what this process reserves, so a later start-up can tell a crashed process's leftovers.
        self.instance_id = uuid.uuid4().hex

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """An atomic unit of work: `async with db.transaction() as tx: …`."""

    @abc.abstractmethod
    async def instance_alive(self, instance_id: str) -> bool:
        """Whether the process that opened the database as `instance_id` is still running."""

    async def wait_alive(self) -> None:
        """Return once this process can prove it is alive, or raise DatabaseUnavailable.

        Whatever it writes with its `instance_id` (a reservation) may be taken for a dead process's
        leftovers while it cannot; SQLite has nobody else to tell, so it always can.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection or pool."""

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open the connection(s) and apply pending migrations."""

    async def schema_version(self) -> int:
        """The highest migration applied."""
        return int(await self.fetch_value("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    async def get_meta(self, key: str) -> str | None:
        """A value stored with `set_meta`, or None."""
        return await self.fetch_value("SELECT value FROM meta WHERE key = ?", key)

    async def set_meta(self, key: str, value: str) -> None:
        """Store a small string under `key` (e.g. the hash of the synced command set)."""
        await self.upsert("meta", {"key": key}, {"value": value})

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def scrub(self, *tables: str) -> None:
        """Make rows already deleted from `tables` unrecoverable from the database's files.

        Call it after deleting or overwriting what a member asked to have forgotten: both engines keep
        old row versions on disk (SQLite in its write-ahead log, PostgreSQL as dead tuples) until told.
        Raises ScrubBusy, having waited at most a moment, when another connection is in the way.
        """


# --------------------------------------------------------------------------------------------- SQLite


class _SqliteExecutor(Executor):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def _run(self, sql: str, args: Sequence[Any]) -> int:
        # One trip to aiosqlite's thread instead of two (execute, then close the cursor). Reading
        # total_changes around it is exact: the caller holds the lock, so nothing else runs meanwhile.
        before = self._connection.total_changes
        await self._rows(sql, args)
        return self._connection.total_changes - before

    async def _rows(self, sql: str, args: Sequence[Any]) -> list[Row]:
        return list(await self._connection.execute_fetchall(sql, args))


def _begin_with(connection: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    """In aiosqlite's thread: BEGIN IMMEDIATE and a transaction's first statement."""
    connection.execute("BEGIN IMMEDIATE")
    return connection.execute(sql, args).fetchall()


class _SqliteTransaction(_SqliteExecutor, Transaction):
    """BEGIN IMMEDIATE travels with the first statement: every trip to aiosqlite's thread is a hand-off the loop
    waits for, and a transaction without a statement makes none."""

    async def _rows(self, sql: str, args: Sequence[Any]) -> list[Row]:
        connection = self._connection
        if connection.in_transaction:
            return await super()._rows(sql, args)
        # aiosqlite has no public way to run a function in its thread; `_execute` is how its own methods do.
        return await connection._execute(_begin_with, connection._conn, sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._run(sql, args)

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        return await self._rows(sql, args)

    async def lock(self, *names: str) -> None:
        # BEGIN IMMEDIATE already took the database's single write lock, which excludes every other writer.
        return None


Outcome = tuple[list[Row], int] | sqlite3.Error
"""A statement's rows and the number of rows it changed, or its error."""


def _statements_in_one_trip(
    connection: sqlite3.Connection, statements: Sequence[tuple[str, Sequence[Any]]]
) -> list[Outcome]:
    """In aiosqlite's thread: statements of different callers, one after another, each its own transaction.

    Each commits (or fails) alone, as if sent alone: only the hand-off to this thread is shared.
    """
    return [_outcome(connection, sql, args) for sql, args in statements]


def _outcome(connection: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Outcome:
    before = connection.total_changes
    try:
        rows = connection.execute(sql, args).fetchall()
    except sqlite3.Error as error:
        # Without its traceback: that would hold this trip's frames, and with them every other caller's arguments.
        return error.with_traceback(None)
    return rows, connection.total_changes - before


class SqliteDatabase(_SqliteExecutor, Database):
    """One aiosqlite connection in WAL mode.

    SQLite allows one writer at a time, so one connection is all a process needs. Statements from
    concurrent coroutines share that connection, so an asyncio lock keeps a transaction's statements
    from interleaving with anyone else's; `BEGIN IMMEDIATE` keeps other processes out.

    Statements outside a transaction wait in one line and go to aiosqlite's thread together, each still
    committed on its own: a trip to that thread costs more than most statements (the loop and the thread
    hand the GIL back and forth), and concurrent callers (32 reservations at once in `python -m bench`)
    share it.
    """

    dialect: ClassVar[Dialect] = "sqlite"
    scrub_rewrites: ClassVar[bool] = False

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS, sole: bool = False) -> None:
        Database.__init__(self, migrations)
        self.path = path
        self._lock = asyncio.Lock()
        self._trips: SharedTrips[tuple[str, tuple[Any, ...]], tuple[list[Row], int]] = SharedTrips(
            self._trip, name="retouch-sqlite-statements"
        )
        self._connection: aiosqlite.Connection  # set by _connect
        self._sole = sole
        self._held: int | None = None  # the file descriptor whose lock says "this process serves from the file"

    async def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._sole:
            await self._hold_file()
        # isolation_level=None: the sqlite3 module must not open transactions behind our back.
        self._connection = await aiosqlite.connect(self.path, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        await self.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        await self._enable_wal()
        # In WAL mode NORMAL loses no committed data on an application crash, only on power loss.
        await self.execute("PRAGMA synchronous = NORMAL")
        await self.execute("PRAGMA foreign_keys = ON")
        # SQLite keeps up to 2 MiB of pages per connection by default, and the kept copies of pictures (written once,
        # read by a rare Reroll) fill any cache: 100 edits waiting in line held 30 KB each in it. The pages read
        # often (quota windows, settings, job records) fit in far less, and the kernel's cache holds the file.
        await self.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        # Deleted rows are overwritten with zeros instead of lingering in free pages, so what a member
        # had forgotten cannot be read back out of the file. Per connection, so set on every one.
        await self.execute("PRAGMA secure_delete = ON")
        await self._migrate()

    async def _enable_wal(self) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite answers "locked" at once
        # instead of calling the busy handler when two processes open the same new file together.
        for attempt in range(1, 51):
            try:
                await self.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 50:
                    raise
                await asyncio.sleep(0.01 * attempt)

    async def _migrate(self) -> None:
        await self.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for migration in self._migrations:
            # Each step re-checks the version inside its own write transaction, so a second process
            # starting at the same moment waits and then skips what the first one applied.
            async with self.transaction() as tx:
                if await tx.fetch_value("SELECT 1 FROM schema_version WHERE version = ?", migration.version):
                    continue
                for statement in migration.statements_for(self.dialect):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", migration.version, time.time()
                )
                log.info("Applied schema migration %d (%s) to %s", migration.version, migration.description, self.path)

    async def execute(self, sql: str, *args: Any) -> int:
        _, changed = await self._trips((sql, args))
        return changed

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        rows, _ = await self._trips((sql, args))
        return rows

    async def _trip(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Outcome]:
        async with self._lock:
            return await self._connection._execute(_statements_in_one_trip, self._connection._conn, statements)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException:
                if self._connection.in_transaction:  # its first statement began it
                    await self._run("ROLLBACK", ())
                raise
            if self._connection.in_transaction:
                await self._run("COMMIT", ())

    async def scrub(self, *tables: str) -> None:
        # secure_delete already zeroed the pages in the database file; the old page images still sit in
        # the write-ahead log until a checkpoint copies the new pages back and TRUNCATE empties it.
        result = await self.fetch_one("PRAGMA wal_checkpoint(TRUNCATE)")
        if result is None or result[0]:
            raise ScrubBusy(f"a reader is holding the write-ahead log of {self.path}")

    async def instance_alive(self, instance_id: str) -> bool:
        # A SQLite file belongs to one bot process (use PostgreSQL to share state between processes),
        # so any instance other than this one is a previous run of it.
        return instance_id == self.instance_id

    async def _hold_file(self) -> None:
        """Take the file for this process, or refuse: a second process would return the first one's live
        reservations at start-up (`instance_alive` takes every other instance for a previous run).

        A process that is still closing (a restart in one go) is given SQLITE_SOLE_WAIT_SECONDS to let go.
        """
        # flock is the operating system's, apart from SQLite's own locks (fcntl ranges), and ends with the process.
        held = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + SQLITE_SOLE_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    continue
            os.close(held)
            raise DatabaseInUse(
                f"DATABASE_URL: another Retouch process is running on {self.path}; a SQLite file serves one process"
                " (stop the other first; several processes, and rolling restarts, need PostgreSQL)"
            ) from None
        self._held = held

    async def close(self) -> None:
        await self._trips.drained()
        await self._connection.close()
        if self._held is not None:
            os.close(self._held)
            self._held = None


# ----------------------------------------------------------------------------------------- PostgreSQL

_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def _to_postgres(sql: str) -> str:
    """`?` placeholders to `$1, $2, …`. Our SQL never has a `?` inside a string literal."""
    numbers = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", sql)


def _rows_changed(status: str) -> int:
    """asyncpg reports e.g. 'UPDATE 3' or 'INSERT 0 1'; the last number is the row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresExecutor(Executor):
    async def _run(self, connection: asyncpg.Connection, sql: str, args: Sequence[Any]) -> int:
        return _rows_changed(await connection.execute(_to_postgres(sql), *args))

    async def _rows(self, connection: asyncpg.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
        return list(await connection.fetch(_to_postgres(sql), *args))


class _PostgresTransaction(_PostgresExecutor, Transaction):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._run(self._connection, sql, args)

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        return await self._rows(self._connection, sql, args)

    async def lock(self, *names: str) -> None:
        # Sorted, so two transactions locking overlapping names can never wait on each other in a cycle.
        for key in sorted({lock_key(name) for name in names}):
            await self._connection.execute("SELECT pg_advisory_xact_lock($1)", key)


class PostgresDatabase(_PostgresExecutor, Database):
    """An asyncpg pool, plus one held connection that proves this process is alive.

    The held connection keeps a session advisory lock named after `instance_id` for as long as the
    process runs. When the process dies, PostgreSQL drops the connection and with it the lock, so
    `instance_alive` can ask "can I take that lock?" instead of trusting heartbeats or clocks.

    The connection can also drop while the process lives (a PostgreSQL restart or failover, an idle
    timeout, `pg_terminate_backend`): a watcher notices, connects again and takes the lock back, and
    reservations wait meanwhile (`wait_alive`). Other processes give a lock a few seconds to come back
    before they return its reservations (`QuotaStore.release_orphaned`).
    """

    dialect: ClassVar[Dialect] = "postgresql"
    scrub_rewrites: ClassVar[bool] = True

    def __init__(
        self, url: str, *, pool_size: int = POSTGRES_POOL_SIZE, migrations: Sequence[Migration] = MIGRATIONS
    ) -> None:
        Database.__init__(self, migrations)
        self._url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool  # set by _connect
        self._liveness: asyncpg.Connection  # set by _connect
        self._alive = asyncio.Event()
        self._dropped = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def liveness_name(self) -> str:
        """The liveness connection's application_name, so an operator can tell it in pg_stat_activity."""
        return f"retouch-liveness-{self.instance_id}"

    async def _hold_liveness(self) -> asyncpg.Connection:
        """A new connection holding this process's lock."""
        connection = await asyncpg.connect(
            self._url, timeout=LIVENESS_CHECK_TIMEOUT, server_settings={"application_name": self.liveness_name}
        )
        try:
            # Bounded: after a silent network drop the server may still hold the lock for the old session
            # until it notices; the watcher then tries again.
            await connection.execute(
                "SELECT pg_advisory_lock($1)", lock_key(f"instance:{self.instance_id}"), timeout=LIVENESS_CHECK_TIMEOUT
            )
        except BaseException:
            connection.terminate()
            raise
        connection.add_termination_listener(lambda _: self._dropped.set())
        self._alive.set()
        return connection

    async def _connect(self) -> None:
        self._liveness = await self._hold_liveness()
        try:
            await self._migrate()
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        except BaseException:
            await self._liveness.close()
            raise
        self._watcher = asyncio.create_task(self._watch_liveness(), name="retouch-liveness")

    async def _watch_liveness(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dropped.wait(), LIVENESS_CHECK_SECONDS)
            # Cleared before checking: a closed connection's listener may fire late, and the check tells anyway.
            self._dropped.clear()
            try:
                # An answer proves the session, and with it the lock, is still there.
                await self._liveness.fetchval("SELECT 1", timeout=LIVENESS_CHECK_TIMEOUT)
                continue
            except Exception as exc:  # whatever the reason, this connection no longer proves anything
                lost, reason = time.monotonic(), exc
            self._alive.clear()
            self._liveness.terminate()
            log.warning(
                "Lost the connection that proves this process alive (%r); taking its lock again, reservations wait",
                reason,
            )
            while True:
                try:
                    self._liveness = await self._hold_liveness()
                    break
                except Exception as exc:  # refused, restarting, too many connections: all pass with time
                    log.debug("Could not take the liveness lock again yet: %r", exc)
                    await asyncio.sleep(LIVENESS_RETRY_SECONDS)
            log.warning("Took this process's liveness lock again after %.1f s", time.monotonic() - lost)

    async def wait_alive(self) -> None:
        try:
            await asyncio.wait_for(self._alive.wait(), LIVENESS_WAIT_SECONDS)
        except TimeoutError:
            raise DatabaseUnavailable("this process could not take its liveness lock again in time") from None

    async def _migrate(self) -> None:
        connection = self._liveness
        # A session lock, held across the steps: a second process starting at once waits here.
        await connection.execute("SELECT pg_advisory_lock($1)", lock_key(_MIGRATION_LOCK_NAME))
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = {row[0] for row in await connection.fetch("SELECT version FROM schema_version")}
            for migration in self._migrations:
                if migration.version in applied:
                    continue
                async with connection.transaction():
                    for statement in migration.statements_for(self.dialect):
                        await connection.execute(statement)
                    await connection.execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                        migration.version,
                        time.time(),
                    )
                log.info("Applied schema migration %d (%s)", migration.version, migration.description)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", lock_key(_MIGRATION_LOCK_NAME))

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._pool.acquire() as connection:
            return await self._run(connection, sql, args)

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        async with self._pool.acquire() as connection:
            return await self._rows(connection, sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._pool.acquire() as connection:
            try:
                async with connection.transaction():
                    yield _PostgresTransaction(connection)
            except asyncpg.InternalClientError as exc:
                # asyncpg's words when the server closed the connection while a transaction was ending
                # ("cannot switch to state …; another operation is in progress"): the database went away.
                if connection.is_closed():
                    raise asyncpg.ConnectionDoesNotExistError(
                        f"the connection closed in a transaction ({exc})"
                    ) from exc
                raise

    async def scrub(self, *tables: str) -> None:
        # A DELETE or UPDATE leaves the old tuple in the table's file until vacuumed, and a plain VACUUM
        # only marks its space free; VACUUM FULL writes the live rows to a new file and drops the old one.
        # It locks each table while it runs (reads too), which is why callers scrub only what a forget or a
        # purge changed, and seldom; it never waits in line for the lock, where it would hold up everyone after.
        async with self._pool.acquire() as connection:
            await connection.execute(f"SET lock_timeout = {SCRUB_LOCK_TIMEOUT_MS}")
            try:
                for table in tables:
                    await connection.execute(f"VACUUM FULL {table}")
            except asyncpg.LockNotAvailableError as exc:
                raise ScrubBusy(f"{table} is in use") from exc
            finally:
                await connection.execute("RESET lock_timeout")

    async def instance_alive(self, instance_id: str) -> bool:
        if instance_id == self.instance_id:
            return True
        key = lock_key(f"instance:{instance_id}")
        async with self._pool.acquire() as connection:
            taken = await connection.fetchval("SELECT pg_try_advisory_lock($1)", key)
            if taken:
                await connection.execute("SELECT pg_advisory_unlock($1)", key)
        return not taken

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._pool.close()
        await self._liveness.close()


# -------------------------------------------------------------------------------------------- opening


def _database_for(url: str, migrations: Sequence[Migration], sole: bool) -> Database:
    if url.startswith("sqlite:///"):
        # sqlite:///data/retouch.db is relative to the working directory; sqlite:////abs/path.db is absolute.
        return SqliteDatabase(Path(url.removeprefix("sqlite:///")), migrations=migrations, sole=sole)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, migrations=migrations)
    raise ValueError("database URL must be sqlite:///path/to/file.db or postgresql://user:password@host/db")


class _OpenDatabase:
    """What `open_database` returns: await it for a `Database`, or use it with `async with`."""

    def __init__(self, url: str, migrations: Sequence[Migration], sole: bool) -> None:
        self._database = _database_for(url, migrations, sole)

    async def _open(self) -> Database:
        await self._database._connect()
        log.info(
            "Opened %s database at schema version %d", self._database.dialect, await self._database.schema_version()
        )
        return self._database

    def __await__(self) -> Generator[Any, None, Database]:
        return self._open().__await__()

    async def __aenter__(self) -> Database:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._database.close()


def open_database(url: str, *, migrations: Sequence[Migration] = MIGRATIONS, sole: bool = False) -> _OpenDatabase:
    """Open (creating and migrating as needed) the database at `url`.

    `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `postgresql://…` or `postgres://…`.
    Use as `async with open_database(url) as db:` or `db = await open_database(url)`. `migrations` is
    the schema to bring it to: every step, except in tests that build a database as an older release did.
    `sole`: the bot's own run, which a SQLite file allows one of at a time (DatabaseInUse otherwise); PostgreSQL
    serves any number.
    """
    return _OpenDatabase(url, migrations, sole)
