"""Deciding from replications: targets met with confidence, and a subset containing the best.

Pure statistics over plain numbers (a point's replication values per metric); no simulation,
no files.

**Targets.** A target bounds a metric's expected value. A point *meets* it when the one-sided
upper (``at_most``) or lower (``at_least``) Student-t confidence bound is on the right side, and
*fails* it when the opposite bound is on the wrong side; otherwise it is *undecided*. The error
probability ``1 - confidence`` is split (Bonferroni) over the targets and over the looks the
sequential procedure may take at the point, so the whole verdict on a point (every target, every
look) is wrong with probability at most ``1 - confidence``.

**Subset selection** (Nelson, Swann, Goldsman and Song 2001, "Simple procedures for selecting
the best simulated system when the number of alternatives is large", the screening step, with
common random numbers as in their section 4): point i stays when, for every other j,
``mean_i <= mean_j + t * S_ij / sqrt(n_ij)`` (for a minimum), with S_ij the standard deviation of
the paired differences over the n_ij replications both have and t the ``1 - alpha / (k - 1)``
quantile with n_ij - 1 degrees of freedom. The subset holds the truly best point with
probability at least ``confidence`` (normal replication means; the guarantee is for the
replications given, not for counts chosen by looking at the data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MET, FAILED, UNDECIDED = "met", "failed", "undecided"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A target's verdict at one point: the mean, the one-sided bounds used, the decision."""

    status: str          # met | failed | undecided
    mean: float
    low: float           # lower one-sided bound
    high: float          # upper one-sided bound
    n: int
    slack: float         # bound - mean for at_most, mean - bound for at_least (scaled below)


def per_test_alpha(confidence: float, targets: int, looks: int) -> float:
    """The error each single one-sided test may make (Bonferroni over targets and looks)."""
    return (1.0 - confidence) / max(1, targets) / max(1, looks)


def judge(values: Sequence[float], sense: str, bound: float, alpha: float) -> Verdict:
    """Verdict on one target from replication values (NaNs, undefined metrics, left out)."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Verdict(UNDECIDED, math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(data.mean())
    if n < 2:
        return Verdict(UNDECIDED, mean, -math.inf, math.inf, n, math.nan)
    half = float(stats.t.ppf(1.0 - alpha, n - 1) * data.std(ddof=1) / math.sqrt(n))
    low, high = mean - half, mean + half
    if sense == "at_most":
        status = MET if high <= bound else FAILED if low > bound else UNDECIDED
        slack = bound - mean
    else:
        status = MET if low >= bound else FAILED if high < bound else UNDECIDED
        slack = mean - bound
    scale = abs(bound) if bound else 1.0
    return Verdict(status, mean, low, high, n, slack / scale)


def overall(verdicts: Sequence[Verdict]) -> str:
    """A point is feasible when it meets every target, infeasible when it fails any."""
    if any(v.status == FAILED for v in verdicts):
        return FAILED
    if all(v.status == MET for v in verdicts):
        return MET
    return UNDECIDED


def binding(verdicts: Sequence[Verdict]) -> int:
    """The index of the binding target: the one met by the smallest relative margin."""
    slacks = [v.slack if not math.isnan(v.slack) else math.inf for v in verdicts]
    return int(np.argmin(slacks)) if slacks else -1


def subset_containing_best(series: Mapping[str, Mapping[int, float]], goal: str,
                           confidence: float) -> list[str]:
    """Keys of the points that may be the best (``goal`` min or max) at ``confidence``.

    ``series`` maps a point to its values by replication number; pairs use the replications
    both points have (common random numbers). A point with fewer than two values stays in.
    """
    keys = [k for k, v in series.items() if any(not math.isnan(x) for x in v.values())]
    k = len(keys)
    if k <= 1:
        return keys
    alpha = (1.0 - confidence) / (k - 1)
    sign = 1.0 if goal == "min" else -1.0
    kept = []
    for i in keys:
        keep = True
        for j in keys:
            if i == j:
                continue
            common = [r for r in series[i] if r in series[j]
                      and not (math.isnan(series[i][r]) or math.isnan(series[j][r]))]
            if len(common) < 2:
                continue
            diffs = np.array([sign * (series[i][r] - series[j][r]) for r in common])
            n = len(diffs)
            width = float(stats.t.ppf(1.0 - alpha, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
            if diffs.mean() > width:  # i is worse than j by more than the noise allows
                keep = False
                break
        if keep:
            kept.append(i)
    return kept


def two_sided(values: Sequence[float], confidence: float) -> tuple[float, float, float, int]:
    """Mean and two-sided t interval (for charts and tables)."""
    from .simstats import t_interval

    interval = t_interval(values, confidence)
    return interval.mean, interval.low, interval.high, interval.n
