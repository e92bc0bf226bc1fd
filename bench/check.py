"""`python -m bench.check [--figures FILE] [--baseline FILE] [--write]`: the bench's regression guard.

Runs `python -m bench --quick` (or reads its `--json` output from FILE) and fails when a ratio figure (a key
with `_ratio`: the bot over a floor measured in the same run, so comparable across machines and loads)
has a median more than TOLERANCE above the committed baseline's (bench/baseline.json). Every ratio here is
better lower. Absolute figures are never compared: they are the machine's as much as the bot's.
`--write` makes the run the new baseline instead (after a change that is meant to move a ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import QUICK, run, summary

BASELINE = Path(__file__).resolve().parent / "baseline.json"
TOLERANCE = 0.20


# Not a cost over a floor but an error, 0 in a quick run (no member waits long enough to be told a wait); its
# goal (≤ 0.1) is the full run's to judge.
UNGUARDED = {"pacing_wait_error_ratio"}


def ratio_keys(figures: dict[str, Any]) -> list[str]:
    """The ratio figures (`…_ratio`, `…_ratio_sqlite`, …) measured in `figures`, but UNGUARDED."""
    return sorted(k for k, v in figures.items() if "_ratio" in k and k not in UNGUARDED and v is not None)


def regressions(baseline: dict[str, Any], figures: dict[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """One line per ratio whose median rose more than `tolerance` over the baseline's, or that went unmeasured."""
    found = []
    for key in ratio_keys(baseline):
        was = float(baseline[key]["median"])
        entry = figures.get(key)
        if entry is None:
            found.append(f"{key}: not measured (baseline {was:.3g})")
        elif (now := float(entry["median"])) > was * (1 + tolerance):
            found.append(f"{key}: {now:.3g} against the baseline's {was:.3g} (+{now / was - 1:.0%})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__)
    parser.add_argument("--figures", type=Path, default=None, help="`python -m bench --quick --json` output")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--write", action="store_true", help="write the figures as the new baseline")
    arguments = parser.parse_args()
    if arguments.figures is not None:
        figures = json.loads(arguments.figures.read_text())
    else:
        figures = summary(asyncio.run(run(QUICK)))
    if arguments.write:
        arguments.baseline.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
        print(f"wrote {arguments.baseline}")
        return 0
    baseline = json.loads(arguments.baseline.read_text())
    found = regressions(baseline, figures)
    for key in ratio_keys(baseline):
        entry = figures.get(key)
        shown = "n/a" if entry is None else f"{float(entry['median']):.3g}"
        print(f"{key:36} {shown:>9}  baseline {float(baseline[key]['median']):.3g}")
    if found:
        print("Regressed by more than 20 %:", *found, sep="\n  ", file=sys.stderr)
        return 1
    print("No ratio regressed by more than 20 %.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
