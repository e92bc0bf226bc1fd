"""Quota store benchmark: reservation throughput and latency on SQLite and PostgreSQL, plus over-grants.

Run: `python -m bench.store_bench` (PostgreSQL is included when RETOUCH_TEST_POSTGRES_URL points at a
server: a throwaway database is created on it and dropped afterwards; see .ci/postgres.sh).

Throughput phase: many members reserve one image each and settle it, from `concurrency` tasks at
once, so it measures the full reserve→settle cycle without every task waiting on one member's lock.
Contention phase: 200 concurrent one-image reservations against one member whose limit is 10; any
grant beyond 10 is an over-grant, which must be 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
import tempfile
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.database import open_database
from services.quota import Period, QuotaExceeded, QuotaRule, QuotaStore

MEMBERS = 1_000
CYCLES = 4_000
CONCURRENCY = 32
CONTENTION_ATTEMPTS = 200
CONTENTION_LIMIT = 10
WARM_UP_CYCLES = 200


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


async def _throughput(store: QuotaStore, guild_id: int, cycles: int, concurrency: int) -> dict[str, float]:
    """Reserve-and-settle cycles spread over MEMBERS members; returns cycles/s and latencies in ms."""
    reserve_latencies: list[float] = []
    cycle_latencies: list[float] = []
    remaining = iter(range(cycles))

    async def worker() -> None:
        for n in remaining:
            started = time.perf_counter()
            reservation = await store.reserve(guild_id, n % MEMBERS, [guild_id + 1], 1)
            reserved = time.perf_counter()
            await store.settle(reservation.id, 1)
            finished = time.perf_counter()
            reserve_latencies.append(reserved - started)
            cycle_latencies.append(finished - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "reserve_per_s": cycles / elapsed,
        "reserve_p50_ms": statistics.median(reserve_latencies) * 1000,
        "reserve_p99_ms": _percentile(reserve_latencies, 0.99) * 1000,
        "cycle_p50_ms": statistics.median(cycle_latencies) * 1000,
        "cycle_p99_ms": _percentile(cycle_latencies, 0.99) * 1000,
    }


async def _contention(store: QuotaStore, guild_id: int) -> int:
    """Concurrent reservations against one member's limit; returns how many were granted."""
    await store.set_member_rule(guild_id, 1, CONTENTION_LIMIT, Period.DAY)

    async def attempt() -> bool:
        try:
            await store.reserve(guild_id, 1, [], 1)
        except QuotaExceeded:
            return False
        return True

    return sum(await asyncio.gather(*(attempt() for _ in range(CONTENTION_ATTEMPTS))))


async def _bench_backend(url: str, cycles: int, concurrency: int) -> tuple[dict[str, float], int]:
    # A fresh guild id per run, so earlier runs' rows in the same database change nothing.
    guild_id = random.randrange(10**15, 10**16)
    async with open_database(url) as db:
        store = QuotaStore(db, QuotaRule(10**9, Period.DAY))
        await _throughput(store, guild_id + 2, WARM_UP_CYCLES, concurrency)
        throughput = await _throughput(store, guild_id, cycles, concurrency)
        granted = await _contention(store, guild_id + 3)
    return throughput, granted


async def run_store_bench(
    sqlite_url: str,
    postgres_url: str | None,
    *,
    cycles: int = CYCLES,
    concurrency: int = CONCURRENCY,
) -> dict[str, float | int | None]:
    """Benchmark both backends; PostgreSQL results are None without a `postgres_url`."""
    results: dict[str, float | int | None] = {}
    overgrants = 0
    for backend, url in (("sqlite", sqlite_url), ("postgres", postgres_url)):
        if url is None:
            results.update(
                {
                    f"quota_{name}_{backend}": None
                    for name in ("reserve_per_s", "reserve_p50_ms", "reserve_p99_ms", "cycle_p50_ms", "cycle_p99_ms")
                }
            )
            continue
        throughput, granted = await _bench_backend(url, cycles, concurrency)
        results.update({f"quota_{name}_{backend}": value for name, value in throughput.items()})
        results[f"quota_contention_granted_{backend}"] = granted
        overgrants += max(granted - CONTENTION_LIMIT, 0)
    results["quota_overgrants"] = overgrants
    return results


async def run_from_environment(cycles: int = CYCLES) -> dict[str, float | int | None]:
    """SQLite in a temporary folder; PostgreSQL in a throwaway database when RETOUCH_TEST_POSTGRES_URL is set."""
    admin_url = os.environ.get("RETOUCH_TEST_POSTGRES_URL", "").strip() or None
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{folder}/bench.db"
        if admin_url is None:
            return await run_store_bench(sqlite_url, None, cycles=cycles)
        name = f"retouch_bench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            postgres_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
            return await run_store_bench(sqlite_url, postgres_url, cycles=cycles)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(run_from_environment()), indent=2))
