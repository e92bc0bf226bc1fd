"""Quota store benchmark: the real QuotaStore reserving on SQLite and PostgreSQL, in store processes.

`python -m bench.store_bench` prints the figures as JSON. PostgreSQL: `--postgres-url URL` (or
RETOUCH_BENCH_POSTGRES_URL), else a durable throwaway server is started with `.ci/postgres.sh start
--fsync` and stopped afterwards; a server with fsync off is refused (its figures are not worth quoting).

Each measurement runs in worker processes (`python -m bench.store_bench worker URL`), which open the
database as the bot does and answer `throughput {guild_id, cycles, concurrency, member_offset}` and
`contend {guild_id, attempts}` over the bench's line protocol (bench.control).

Throughput: many members reserve one image each and settle it, from `concurrency` tasks at once: the
full reserve→settle cycle without every task waiting on one member's lock. With two processes on one
PostgreSQL, both start together and the figure is their combined cycles over the time both took.
Contention: 200 one-image reservations at once against one member whose limit is 10 (split over the
processes when there are two); any grant beyond 10 is an over-grant, which must be 0.

The floor: the same database through the bare driver (aiosqlite or asyncpg), opened the same way (the same
connection settings, pool and durability), doing the least a durable reserve→settle cycle can cost: one
single-row insert and one single-row update, each its own committed transaction, from the same number of tasks
(`floor {cycles, concurrency, offset}`).
Retouch's figure over it is what the quota's own statements cost (`quota_floor_ratio_*`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg

from bench.control import Child, say, serve
from services.storage.database import POSTGRES_POOL_SIZE, SQLITE_BUSY_TIMEOUT_MS, SQLITE_CACHE_KIB, open_database
from services.storage.quota import Period, QuotaExceeded, QuotaRule, QuotaStore

MEMBERS = 1_000
CONCURRENCY = 32
CONTENTION_ATTEMPTS = 200
CONTENTION_LIMIT = 10
WARM_UP_CYCLES = 200
POSTGRES_SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres.sh"


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


# ------------------------------------------------------------------------------------------ the worker


async def _throughput(
    store: QuotaStore, guild_id: int, cycles: int, concurrency: int, member_offset: int = 0
) -> dict[str, float]:
    """Reserve-and-settle cycles spread over MEMBERS members; cycles/s, latencies in ms, wall-clock span."""
    reserve_latencies: list[float] = []
    remaining = iter(range(cycles))

    async def worker() -> None:
        for n in remaining:
            started = time.perf_counter()
            reservation = await store.reserve(guild_id, member_offset + n % MEMBERS, [guild_id + 1], 1)
            reserve_latencies.append(time.perf_counter() - started)
            await store.settle(reservation.id, 1)

    began, started = time.time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "reserve_per_s": cycles / elapsed,
        "reserve_p50_ms": statistics.median(reserve_latencies) * 1000,
        "reserve_p99_ms": _percentile(reserve_latencies, 0.99) * 1000,
        "began": began,
        "ended": began + elapsed,
    }


FLOOR_TABLE = "bench_floor"


@contextlib.asynccontextmanager
async def _bare_statements(url: str) -> AsyncIterator[Callable[..., Awaitable[object]]]:
    """The bare driver on the same database, opened as the bot opens it, running one statement at a time each in
    its own committed transaction: SQLite's one connection in WAL mode with the same durability, or a pool of
    PostgreSQL connections of the bot's size. The floor is the drivers' own cost, so it does not go through
    Retouch's Database."""
    if url.startswith("sqlite:///"):
        connection = await aiosqlite.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for pragma in (
                f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
                "journal_mode = WAL",
                "synchronous = NORMAL",
                f"cache_size = -{SQLITE_CACHE_KIB}",
            ):
                await connection.execute_fetchall(f"PRAGMA {pragma}")
            lock = asyncio.Lock()  # one statement at a time on the one connection, as the bot's own lock keeps them

            async def sqlite_statement(sql: str, *args: int) -> object:
                async with lock:
                    return await connection.execute_fetchall(sql, args)

            yield sqlite_statement
        finally:
            await connection.close()
        return
    pool = await asyncpg.create_pool(url, min_size=1, max_size=POSTGRES_POOL_SIZE)
    try:

        async def postgres_statement(sql: str, *args: int) -> object:
            return await pool.execute(sql.replace("?", "$1"), *args)

        yield postgres_statement
    finally:
        await pool.close()


async def _floor(url: str, cycles: int, concurrency: int, offset: int = 0) -> dict[str, float]:
    """Bare durable transaction pairs (insert one row, update it), `concurrency` at once; cycles/s and the span."""
    async with _bare_statements(url) as statement:
        await statement(f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id BIGINT PRIMARY KEY, n INTEGER NOT NULL)")
        remaining = iter(range(offset, offset + cycles))

        async def worker() -> None:
            for n in remaining:
                await statement(f"INSERT INTO {FLOOR_TABLE} (id, n) VALUES (?, 0)", n)
                await statement(f"UPDATE {FLOOR_TABLE} SET n = 1 WHERE id = ?", n)

        began, started = time.time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"reserve_per_s": cycles / elapsed, "began": began, "ended": began + elapsed}


async def _worker(url: str) -> None:
    async with open_database(url) as db:
        store = QuotaStore(db, QuotaRule(10**9, Period.DAY))

        async def throughput(guild_id: int, cycles: int, concurrency: int, member_offset: int = 0) -> dict:
            await _throughput(store, guild_id + 2, WARM_UP_CYCLES, concurrency, member_offset)
            if db.dialect == "postgresql":
                # As autovacuum does for a table in use: without statistics, a table filled a moment ago can have
                # a member's usage summed through the server's day index, every row of the day read.
                await db.execute("ANALYZE quota_usage")
            return await _throughput(store, guild_id, cycles, concurrency, member_offset)

        async def set_limit(guild_id: int) -> None:
            await store.set_member_rule(guild_id, 1, CONTENTION_LIMIT, Period.DAY)

        async def contend(guild_id: int, attempts: int) -> int:
            async def attempt() -> bool:
                try:
                    await store.reserve(guild_id, 1, [], 1)
                except QuotaExceeded:
                    return False
                return True

            return sum(await asyncio.gather(*(attempt() for _ in range(attempts))))

        async def floor(cycles: int, concurrency: int, offset: int = 0) -> dict:
            return await _floor(url, cycles, concurrency, offset)

        say({"pid": os.getpid()})
        await serve({"throughput": throughput, "floor": floor, "set_limit": set_limit, "contend": contend})


def _worker_child(url: str) -> Child:
    return Child("bench.store_bench", "worker", url)


# ------------------------------------------------------------------------------------------ the runs


@dataclass(frozen=True)
class StoreFigures:
    """Cycles per second of the real QuotaStore and of the floor on the same database, and over-grants."""

    rate: float
    floor: float
    overgrants: int

    @property
    def floor_ratio(self) -> float:
        return self.floor / self.rate


async def _floor_of(worker: Child, cycles: int, offset: int) -> dict:
    await worker.call("floor", cycles=WARM_UP_CYCLES, concurrency=CONCURRENCY, offset=offset)
    return await worker.call("floor", cycles=cycles, concurrency=CONCURRENCY, offset=offset + WARM_UP_CYCLES)


async def one_process(url: str, cycles: int) -> StoreFigures:
    """Reservations per second of one store process, its floor's, and over-grants."""
    guild_id = random.randrange(10**15, 10**16)  # fresh ids: earlier runs' rows change nothing
    async with _worker_child(url) as worker:
        result = await worker.call("throughput", guild_id=guild_id, cycles=cycles, concurrency=CONCURRENCY)
        floor = await _floor_of(worker, cycles, guild_id)
        await worker.call("set_limit", guild_id=guild_id + 3)
        granted = await worker.call("contend", guild_id=guild_id + 3, attempts=CONTENTION_ATTEMPTS)
    return StoreFigures(result["reserve_per_s"], floor["reserve_per_s"], max(granted - CONTENTION_LIMIT, 0))


def _combined(results: list[dict], cycles: int) -> float:
    """Both processes' cycles over the time both took."""
    return 2 * cycles / (max(r["ended"] for r in results) - min(r["began"] for r in results))


async def two_processes(url: str, cycles: int) -> StoreFigures:
    """Combined reservations per second of two store processes on one database, their floor's, over-grants."""
    guild_id = random.randrange(10**15, 10**16)
    async with _worker_child(url) as first, _worker_child(url) as second:
        workers = (first, second)
        results = await asyncio.gather(
            *(
                worker.call(
                    "throughput", guild_id=guild_id, cycles=cycles, concurrency=CONCURRENCY, member_offset=n * MEMBERS
                )
                for n, worker in enumerate(workers)
            )
        )
        floors = await asyncio.gather(
            *(_floor_of(worker, cycles, guild_id + n * (cycles + WARM_UP_CYCLES)) for n, worker in enumerate(workers))
        )
        await first.call("set_limit", guild_id=guild_id + 3)
        granted = await asyncio.gather(
            *(w.call("contend", guild_id=guild_id + 3, attempts=CONTENTION_ATTEMPTS // 2) for w in workers)
        )
    return StoreFigures(_combined(results, cycles), _combined(floors, cycles), max(sum(granted) - CONTENTION_LIMIT, 0))


async def _fsync(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval("SHOW fsync"))
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def postgres_server(url: str | None) -> AsyncIterator[str | None]:
    """An admin URL of a durable PostgreSQL: `url`, or one started for the bench; None without one."""
    if url is None:
        if not POSTGRES_SCRIPT.exists():
            yield None
            return
        started = await asyncio.to_thread(
            subprocess.run, ["bash", str(POSTGRES_SCRIPT), "start", "--fsync"], capture_output=True, text=True
        )
        if started.returncode != 0:
            print(f"no PostgreSQL for the bench: {started.stderr.strip()[-300:]}", file=sys.stderr)
            yield None
            return
        exported = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.split("\n") if line)
        try:
            yield exported["RETOUCH_TEST_POSTGRES_URL"]
        finally:
            await asyncio.to_thread(
                subprocess.run,
                ["bash", str(POSTGRES_SCRIPT), "stop", exported["RETOUCH_TEST_POSTGRES_DIR"]],
                capture_output=True,
            )
        return
    if await _fsync(url) != "on":
        raise RuntimeError("that PostgreSQL runs with fsync off: its figures would not be worth quoting")
    yield url


@contextlib.asynccontextmanager
async def throwaway_database(admin_url: str) -> AsyncIterator[str]:
    name = f"retouch_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def databases(postgres_url: str | None = None) -> AsyncIterator[tuple[str, str | None]]:
    """(SQLite URL, PostgreSQL URL or None): fresh, empty databases for the store figures."""
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{folder}/bench.db"
        async with postgres_server(postgres_url or os.environ.get("RETOUCH_BENCH_POSTGRES_URL") or None) as admin:
            if admin is None:
                yield sqlite_url, None
                return
            async with throwaway_database(admin) as url:
                yield sqlite_url, url


async def _main(postgres_url: str | None, cycles: int) -> dict[str, float | int | None]:
    async with databases(postgres_url) as (sqlite_url, pg_url):
        sqlite = await one_process(sqlite_url, cycles)
        results: dict[str, float | int | None] = {
            "quota_reserve_per_s_sqlite": sqlite.rate,
            "quota_floor_ratio_sqlite": sqlite.floor_ratio,
        }
        overgrants = sqlite.overgrants
        if pg_url is not None:
            single, pair = await one_process(pg_url, cycles), await two_processes(pg_url, cycles)
            results |= {
                "quota_reserve_per_s_postgres": single.rate,
                "quota_floor_ratio_postgres": single.floor_ratio,
                "processes2_reserve_per_s_postgres": pair.rate,
                "processes2_floor_ratio_postgres": pair.floor_ratio,
            }
            overgrants += single.overgrants + pair.overgrants
        results["quota_overgrants"] = overgrants
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if sys.argv[1:2] == ["worker"]:
        asyncio.run(_worker(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(prog="python -m bench.store_bench")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--cycles", type=int, default=4000)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(_main(arguments.postgres_url, arguments.cycles)), indent=2))
