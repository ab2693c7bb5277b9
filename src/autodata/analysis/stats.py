"""Bootstrap confidence intervals for the comparison tables (SciPy's ``stats.bootstrap``).

BCa intervals up to a few thousand examples (better coverage on skewed, bounded scores such as
rubric means); percentile intervals beyond that, where BCa's jackknife would need memory quadratic
in the number of examples. Constant samples get the degenerate interval [x, x] rather than NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BCA_MAX_N = 2000


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Estimate | None:
    """The mean with a bootstrap confidence interval; ``None`` for no values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    mean = float(x.mean())
    if x.size == 1 or bool(np.all(x == x[0])):
        return Estimate(mean, mean, mean, int(x.size))
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="BCa" if x.size <= BCA_MAX_N else "percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa can fail on near-constant data: fall back
        low, high = (
            float(v) for v in np.percentile(res.bootstrap_distribution, [50 * (1 - confidence), 50 * (1 + confidence)])
        )
    return Estimate(mean, low, high, int(x.size))
