"""`python -m bench [--quick] [--json]`: Retouch under load, against the loopback emulators.

Prints a table of ratios against goals (or, with --json, one JSON object). `--quick` runs a reduced
version in under a minute. PostgreSQL figures need RETOUCH_TEST_POSTGRES_URL (see .ci/postgres.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.store_bench import run_from_environment


@dataclass(frozen=True)
class Sizes:
    ack_edits: int
    lag_edits: int
    added_runs: int
    rss_edits: int
    cpu_runs: int
    pacing_edits: int
    store_cycles: int


FULL = Sizes(ack_edits=50, lag_edits=32, added_runs=5, rss_edits=8, cpu_runs=5, pacing_edits=30, store_cycles=4000)
QUICK = Sizes(ack_edits=50, lag_edits=6, added_runs=3, rss_edits=4, cpu_runs=3, pacing_edits=20, store_cycles=500)

# key → (goal as text, whether a figure meets it; None: no goal, a figure to watch)
GOALS: dict[str, tuple[str, Callable[[float], bool] | None]] = {
    "ack_p99_ms": ("< 100", lambda v: v < 100),
    "loop_lag_p99_ms": ("< 20", lambda v: v < 20),
    "added_time_ratio": ("<= 1.5", lambda v: v <= 1.5),
    "rss_growth_ratio": ("<= 2", lambda v: v <= 2),
    "client_cpu_ratio": ("<= 0.5", lambda v: v <= 0.5),
    "pacing_429s": ("0", lambda v: v == 0),
    "pacing_wait_error_ratio": ("<= 0.2", lambda v: v <= 0.2),
    "quota_reserve_per_s_sqlite": ("", None),
    "quota_reserve_per_s_postgres": ("", None),
    "quota_overgrants": ("0", lambda v: v == 0),
}


async def run(sizes: Sizes) -> dict[str, float | int | None]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        # First, while the process is fresh: memory freed by earlier scenarios would hide the growth.
        rss_growth = await load.rss_growth_ratio(folder, sizes.rss_edits)
        rate_limited, wait_error = await load.pacing(folder, sizes.pacing_edits)
        results: dict[str, float | int | None] = {
            "ack_p99_ms": await load.ack_p99_ms(folder, sizes.ack_edits),
            "loop_lag_p99_ms": await load.loop_lag_p99_ms(folder, sizes.lag_edits),
            "added_time_ratio": await load.added_time_ratio(folder, sizes.added_runs),
            "rss_growth_ratio": rss_growth,
            "client_cpu_ratio": await load.client_cpu_ratio(sizes.cpu_runs),
            "pacing_429s": rate_limited,
            "pacing_wait_error_ratio": wait_error,
        }
    store = await run_from_environment(cycles=sizes.store_cycles)
    results["quota_reserve_per_s_sqlite"] = store["quota_reserve_per_s_sqlite"]
    results["quota_reserve_per_s_postgres"] = store["quota_reserve_per_s_postgres"]
    results["quota_overgrants"] = store["quota_overgrants"]
    return {key: results[key] for key in GOALS}


def table(results: dict[str, float | int | None]) -> str:
    lines = [f"{'figure':32} {'value':>12}  {'goal':8} ok"]
    for key, (goal, check) in GOALS.items():
        value = results[key]
        shown = "n/a" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
        verdict = "" if check is None or value is None else ("yes" if check(value) else "NO")
        lines.append(f"{key:32} {shown:>12}  {goal:8} {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced run, under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results = asyncio.run(run(QUICK if arguments.quick else FULL))
    print(json.dumps(results) if arguments.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
