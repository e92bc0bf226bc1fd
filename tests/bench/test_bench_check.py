"""`make bench-check`: a ratio more than 20 % above the committed baseline fails; absolute figures never do."""

from __future__ import annotations

import json

from bench.__main__ import GOALS
from bench.check import BASELINE, UNGUARDED, regressions


def figure(median: float) -> dict:
    return {"median": median, "min": median, "max": median, "runs": [median]}


def test_a_ratio_more_than_a_fifth_above_the_baseline_fails_and_within_it_passes() -> None:
    baseline = {"ack_floor_ratio": figure(1.25), "ack_p99_ms": figure(40.0)}

    assert regressions(baseline, {"ack_floor_ratio": figure(1.5), "ack_p99_ms": figure(400.0)}) == []
    [line] = regressions(baseline, {"ack_floor_ratio": figure(1.51), "ack_p99_ms": figure(40.0)})
    assert line.startswith("ack_floor_ratio: 1.51 against the baseline's 1.25")


def test_a_ratio_the_run_did_not_measure_fails() -> None:
    [line] = regressions({"quota_floor_ratio_postgres": figure(1.2)}, {"quota_floor_ratio_postgres": None})
    assert line.startswith("quota_floor_ratio_postgres: not measured")


def test_the_committed_baseline_holds_every_ratio_the_bench_measures() -> None:
    baseline = json.loads(BASELINE.read_text())
    guarded = {key for key in GOALS if "_ratio" in key} - UNGUARDED
    assert guarded <= {k for k, v in baseline.items() if v is not None}
    assert {"quota_floor_ratio_sqlite", "quota_floor_ratio_postgres", "ack_floor_ratio"} <= guarded
