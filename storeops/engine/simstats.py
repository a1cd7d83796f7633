"""Output analysis for simulations: Student-t confidence intervals over replications.

Replications are independent and identically distributed, so a metric's replication means give
a t interval. Policies share random numbers (common random numbers), so the difference between
two policies is judged on paired differences, replication by replication, whose interval is
much narrower than the two separate intervals suggest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval of replication values; NaNs (undefined metrics) are left out.

    With one value the interval is that value itself (no spread can be estimated).
    """
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * data.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> Interval:
    """Interval of mean(a - b) over replications run with the same random numbers."""
    pairs = [x - y for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    return t_interval(pairs, confidence)
