"""The benchmark's rig cannot rot: the tiniest version of every scenario runs and yields a number.

No timing assertions (speed belongs to `python -m bench`); only that every key is measured.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from bench.__main__ import GOALS, SMOKE, run, summary

POSTGRES_KEYS = {
    "quota_reserve_per_s_postgres",
    "quota_floor_per_s_postgres",
    "quota_floor_ratio_postgres",
    "processes2_reserve_per_s_postgres",
    "processes2_floor_per_s_postgres",
    "processes2_floor_ratio_postgres",
    "processes2_overgrants",
}
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


async def test_every_figure_of_the_bench_is_measured() -> None:
    summaries = summary(await run(SMOKE))

    for key in sorted(set(GOALS) - POSTGRES_KEYS):
        entry = summaries[key]
        assert entry is not None, key
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in entry["runs"]), (key, entry)
        assert entry["min"] <= entry["median"] <= entry["max"], (key, entry)
    if not (PG_BIN / "initdb").exists() and not os.environ.get("RETOUCH_BENCH_POSTGRES_URL"):
        pytest.skip("no PostgreSQL server binaries for the durable bench server")
    for key in sorted(POSTGRES_KEYS):
        entry = summaries[key]
        assert entry is not None and math.isfinite(entry["median"]), (key, entry)
