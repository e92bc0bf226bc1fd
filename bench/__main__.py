"""`python -m bench [--quick] [--json] [--postgres-url URL] [--profile SCENARIO]`: Retouch under load.

The bot (`bot.main()`), the Discord emulator and the Model Hub emulator run in three processes of their
own on 127.0.0.1; this process only drives them (see bench.load). Every figure is the median of RUNS
runs, printed with its min and max; `--json` prints `{key: {"median", "min", "max", "runs"}}`.
`acks_late` counts the interactions whose callback came after Discord's 3 s window (refused, as
Discord refuses them: those edits never ran). `--quick` is a reduced run (under 90 s). PostgreSQL
figures come from a durable server (fsync on): `--postgres-url`, RETOUCH_BENCH_POSTGRES_URL, or one
started with `.ci/postgres.sh start --fsync`.
`--profile ack|lag|rss` runs that scenario once more with cProfile in the bot process and prints where
the bot loop's time went (stderr); `--profile queued` prints the source lines holding the most Python memory
(tracemalloc) with the line full.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load
from bench.store_bench import databases, one_process, two_processes


@dataclass(frozen=True)
class Sizes:
    runs: int
    ack_edits: int
    lag_edits: int
    lag_side: int
    added_pairs: int
    rss_edits: int
    queued: int
    cpu_runs: int
    pacing_edits: int
    store_cycles: int
    throughput_edits: int
    guilds: int


FULL = Sizes(3, 100, 32, 2048, 5, 8, 100, 5, 30, 4000, 32, 1000)
QUICK = Sizes(3, 100, 3, 2048, 2, 4, 100, 2, 6, 200, 8, 1000)
SMOKE = Sizes(1, 2, 1, 256, 1, 1, 2, 1, 2, 50, 2, 20)  # the rig's self-test: every figure, no meaning

PACED: dict[str, Any] = {"upstream_images_per_minute": 600.0, "upstream_image_burst": 20}  # the hub enforces the same

# key → (goal as text, whether a figure meets it); None: a floor, measured in the same run for its ratio, no goal
GOALS: dict[str, tuple[str, Callable[[float], bool]] | None] = {
    "ack_p99_ms": ("< 50", lambda v: v < 50),
    "ack_floor_p99_ms": None,
    "ack_floor_ratio": ("<= 1.3", lambda v: v <= 1.3),
    "acks_late": ("0", lambda v: v == 0),
    "loop_lag_p99_ms": ("< 10", lambda v: v < 10),
    "added_time_ratio": ("<= 1.2", lambda v: v <= 1.2),
    "rss_growth_ratio": ("<= 1.5", lambda v: v <= 1.5),
    "queued_bytes_per_ticket": ("<= 65536", lambda v: v <= 65536),
    "queued_python_bytes_per_ticket": ("<= 65536", lambda v: v <= 65536),
    "client_cpu_ratio": ("<= 0.3", lambda v: v <= 0.3),
    "pacing_429s": ("0", lambda v: v == 0),
    "pacing_wait_error_ratio": ("<= 0.1", lambda v: v <= 0.1),
    "throughput_edits_per_s": None,  # judged by its ratio: the absolute figure is the machine's
    "throughput_floor_edits_per_s": None,
    "throughput_floor_ratio": ("<= 1.5", lambda v: v <= 1.5),
    "memory_per_1000_guilds_bytes": ("<= 16777216", lambda v: v <= 16 * 1024 * 1024),
    "quota_reserve_per_s_sqlite": (">= 3000", lambda v: v >= 3000),
    "quota_floor_per_s_sqlite": None,
    "quota_floor_ratio_sqlite": ("<= 1.5", lambda v: v <= 1.5),
    "quota_reserve_per_s_postgres": (">= 2000", lambda v: v >= 2000),
    "quota_floor_per_s_postgres": None,
    "quota_floor_ratio_postgres": ("<= 1.5", lambda v: v <= 1.5),
    "quota_overgrants": ("0", lambda v: v == 0),
    "processes2_reserve_per_s_postgres": (">= 2000", lambda v: v >= 2000),
    "processes2_floor_per_s_postgres": None,
    "processes2_floor_ratio_postgres": ("<= 1.5", lambda v: v <= 1.5),
    "processes2_overgrants": ("0", lambda v: v == 0),
}

Figures = dict[str, list[float]]


async def _repeat(
    figures: Figures, bench: load.Stack, runs: int, scenario: Callable[[], Awaitable[dict[str, float]]]
) -> None:
    """`runs` runs of a scenario; the acknowledgements too late for Discord in run i add to `acks_late`[i]."""
    late = figures.setdefault("acks_late", [])
    for run in range(runs):
        before = bench.late
        for key, value in (await scenario()).items():
            figures.setdefault(key, []).append(value)
        if run == len(late):
            late.append(0)
        late[run] += bench.late - before


async def _profiled(bench: load.Stack, scenario: Callable[[], Awaitable[object]]) -> None:
    await bench.bot.call("profile_start")
    await scenario()
    shown = await bench.bot.call("profile_stop", top=30)
    print(shown["tottime"], shown["cumulative"], sep="\n", file=sys.stderr)


async def run(sizes: Sizes, *, postgres_url: str | None = None, profile: str | None = None) -> Figures:
    figures: Figures = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        async with load.stack(folder, max_concurrent_edits=32, **load.UNLIMITED) as bench:
            scenarios = {
                "ack": lambda: load.ack_p99_ms(bench, sizes.ack_edits),
                "lag": lambda: load.loop_lag_p99_ms(bench, sizes.lag_edits, sizes.lag_side),
                "rss": lambda: load.rss_growth_ratio(bench, sizes.rss_edits),
            }

            async def once() -> dict[str, float]:
                # The acknowledgement first, in a fresh Retouch process warmed up on one small edit: the state in
                # which its floor's bare bot is measured (a fresh process, one interaction answered).
                await bench.restart_bot()
                await bench.warm_up()
                figures = {
                    "ack_p99_ms": await scenarios["ack"](),
                    "rss_growth_ratio": await scenarios["rss"](),  # it starts a fresh Retouch process of its own
                    "loop_lag_p99_ms": await scenarios["lag"](),
                    "added_time_ratio": await load.added_time_ratio(bench, sizes.added_pairs),
                }
                rate, floor = await load.throughput(bench, sizes.throughput_edits)
                figures |= {
                    "throughput_edits_per_s": rate,
                    "throughput_floor_edits_per_s": floor,
                    "throughput_floor_ratio": floor / rate,
                    "client_cpu_ratio": await load.client_cpu_ratio(bench.hub, sizes.cpu_runs),
                    # last: the bare bot takes Retouch's place until the next run's first scenario
                    "ack_floor_p99_ms": await load.ack_floor_p99_ms(bench, sizes.ack_edits),
                }
                figures["ack_floor_ratio"] = figures["ack_p99_ms"] / figures["ack_floor_p99_ms"]
                return figures

            await _repeat(figures, bench, sizes.runs, once)
            if profile in scenarios:
                await bench.restart_bot()
                await bench.warm_up()
                await _profiled(bench, scenarios[profile])
        async with load.stack(folder, max_concurrent_edits=1, **load.UNLIMITED) as bench:

            async def queued() -> dict[str, float]:
                return {
                    "queued_bytes_per_ticket": await load.queued_bytes_per_ticket(bench, sizes.queued),
                    "queued_python_bytes_per_ticket": await load.queued_python_bytes_per_ticket(bench, sizes.queued),
                }

            await _repeat(figures, bench, sizes.runs, queued)
            if profile == "queued":
                await load.queued_python_bytes_per_ticket(bench, sizes.queued, top=25)
        async with load.stack(folder, images_per_minute=600, burst=20, record_tickets=True, **PACED) as bench:

            async def paced() -> dict[str, float]:
                # Both buckets (the hub's, the bot's) full again, so every run starts from the same state.
                if figures.get("pacing_429s"):
                    await asyncio.sleep(
                        PACED["upstream_image_burst"] / (PACED["upstream_images_per_minute"] / 60) + 0.5
                    )
                rate_limited, wait_error = await load.pacing(bench, sizes.pacing_edits)
                return {"pacing_429s": rate_limited, "pacing_wait_error_ratio": wait_error}

            await _repeat(figures, bench, sizes.runs, paced)
        for _ in range(sizes.runs):  # a stack of its own each run: the servers added stay in its emulator
            async with load.stack(folder, **load.UNLIMITED) as bench:
                guilds = await load.memory_per_1000_guilds(bench, sizes.guilds)
            figures.setdefault("memory_per_1000_guilds_bytes", []).append(guilds)
    async with databases(postgres_url) as (sqlite_url, pg_url):

        async def stores() -> dict[str, float]:
            sqlite = await one_process(sqlite_url, sizes.store_cycles)
            results = {
                "quota_reserve_per_s_sqlite": sqlite.rate,
                "quota_floor_per_s_sqlite": sqlite.floor,
                "quota_floor_ratio_sqlite": sqlite.floor_ratio,
                "quota_overgrants": sqlite.overgrants,
            }
            if pg_url is not None:
                single, pair = (
                    await one_process(pg_url, sizes.store_cycles),
                    await two_processes(pg_url, sizes.store_cycles),
                )
                results |= {
                    "quota_reserve_per_s_postgres": single.rate,
                    "quota_floor_per_s_postgres": single.floor,
                    "quota_floor_ratio_postgres": single.floor_ratio,
                    "quota_overgrants": sqlite.overgrants + single.overgrants,
                    "processes2_reserve_per_s_postgres": pair.rate,
                    "processes2_floor_per_s_postgres": pair.floor,
                    "processes2_floor_ratio_postgres": pair.floor_ratio,
                    "processes2_overgrants": pair.overgrants,
                }
            return results

        for _ in range(sizes.runs):
            for key, value in (await stores()).items():
                figures.setdefault(key, []).append(value)
    return figures


def summary(figures: Figures) -> dict[str, dict[str, Any] | None]:
    return {
        key: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
        if (v := figures.get(key))
        else None
        for key in GOALS
    }


def _shown(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def table(summaries: dict[str, dict[str, Any] | None], runs: int) -> str:
    lines = [f"{'figure':36} {'median':>9} {'min–max':>19}  {'goal':9} ok   ({runs} runs each)"]
    for key, goal in GOALS.items():
        entry = summaries[key]
        if entry is None:
            lines.append(f"{key:36} {'n/a':>9}")
            continue
        median, low, high = (float(entry[k]) for k in ("median", "min", "max"))
        spread = f"{_shown(low)}–{_shown(high)}"
        shown_goal, met = ("floor", "") if goal is None else (goal[0], "yes" if goal[1](median) else "NO")
        lines.append(f"{key:36} {_shown(median):>9} {spread:>19}  {shown_goal:9} {met}")
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced run, under 90 s")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--postgres-url", default=None, help="an admin URL of a PostgreSQL with fsync on")
    parser.add_argument("--profile", choices=("ack", "lag", "rss", "queued"), default=None)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sizes = QUICK if arguments.quick else FULL
    load_before, started = _load(), time.monotonic()
    figures = asyncio.run(run(sizes, postgres_url=arguments.postgres_url, profile=arguments.profile))
    machine = (
        f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) before {load_before}, after {_load()}; "
        f"{time.monotonic() - started:.0f} s"
    )
    summaries = summary(figures)
    if arguments.json:
        print(json.dumps(summaries))
        print(machine, file=sys.stderr)
    else:
        print(table(summaries, sizes.runs))
        print(machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
