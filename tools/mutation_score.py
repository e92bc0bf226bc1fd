"""Mutation score per module from `mutmut results --all true`: what `make mutation` prints at the end.

A mutant is detected when a test failed (killed) or hung (timeout); it escaped when every test passed
(survived) or no test ran its code (no tests). Mutants that were not run are left out.

`python tools/mutation_score.py [MUTMUT] [--fail-under PERCENT]`: with --fail-under, exits 1 when the total
score is lower, or when no mutant was run at all.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict

_LINE = re.compile(r"^\s*(?P<module>[\w.]+?)\.x\S*__mutmut_\d+: (?P<status>.+)$")
DETECTED = {"killed", "timeout"}
ESCAPED = {"survived", "no tests"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutmut", nargs="?", default="mutmut")
    parser.add_argument("--fail-under", type=float, metavar="PERCENT")
    args = parser.parse_args()
    output = subprocess.run(
        [args.mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in output.splitlines():
        match = _LINE.match(line)
        if match:
            counts[match["module"]][match["status"].strip()] += 1
    total = Counter[str]()
    print(f"{'module':<28} {'detected':>8} {'escaped':>8} {'score':>7}")
    for module in sorted(counts):
        detected = sum(counts[module][s] for s in DETECTED)
        escaped = sum(counts[module][s] for s in ESCAPED)
        if detected + escaped == 0:
            continue
        total["detected"] += detected
        total["escaped"] += escaped
        print(f"{module:<28} {detected:>8} {escaped:>8} {detected / (detected + escaped):>7.1%}")
    run = total["detected"] + total["escaped"]
    score = total["detected"] / run if run else 0.0
    if run:
        print(f"{'all':<28} {total['detected']:>8} {total['escaped']:>8} {score:>7.1%}")
    if args.fail_under is not None and score * 100 < args.fail_under:
        print(f"The mutation score is under {args.fail_under:g} %.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
