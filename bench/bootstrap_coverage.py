"""Coverage of the comparison's bootstrap intervals, measured on seeded simulated data with a known mean.

    python bench/bootstrap_coverage.py [--replicates 2000] [--n 40 100]

For each sample size and confidence level: draw paired "gaps" (Beta(2,5) minus Beta(5,2), true mean
-3/7), take the BCa interval ``autodata compare`` reports, and count how often it holds the truth.
"""

from __future__ import annotations

import argparse

import numpy as np

from autodata.analysis.stats import bootstrap_mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--n", type=int, nargs="+", default=[40, 100])
    args = ap.parse_args()
    truth = 2 / 7 - 5 / 7
    print(f"{'n':>5}{'nominal':>9}{'coverage':>10}  (replicates {args.replicates})")
    for n in args.n:
        for confidence in (0.90, 0.95):
            rng = np.random.default_rng(99)
            hits = 0
            for r in range(args.replicates):
                x = rng.beta(2, 5, size=n) - rng.beta(5, 2, size=n)
                e = bootstrap_mean(x, confidence=confidence, resamples=1000, seed=r)
                hits += e.low <= truth <= e.high
            print(f"{n:>5}{confidence:>9.2f}{hits / args.replicates:>10.4f}")


if __name__ == "__main__":
    main()
