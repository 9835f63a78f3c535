"""Small-sample statistics for comparisons: Student-t intervals, percentile bootstraps and a verdict.

The t quantile is computed from the regularized incomplete beta function (continued fraction, as in
the standard numerical references), so no SciPy is needed; tests check it against SciPy where installed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

VERDICTS = ("better", "worse", "inconclusive")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (0 < q < 1), by bisection on :func:`t_cdf` (to 1e-12)."""
    if not 0.0 < q < 1.0 or df <= 0:
        raise ValueError(f"t_ppf needs 0 < q < 1 and df > 0, got q={q}, df={df}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def t_interval(values: Sequence[float], conf: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of the two-sided ``conf`` Student-t interval of the mean; (mean, None, None) for n < 2."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, None, None
    half = t_ppf(0.5 + conf / 2.0, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def bootstrap_interval(samples: np.ndarray, conf: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates [B]."""
    lo, hi = np.quantile(np.asarray(samples, dtype=float), [0.5 - conf / 2.0, 0.5 + conf / 2.0])
    return float(lo), float(hi)


def bootstrap_mean(values: Sequence[float], n: int = 10_000, seed: int = 0) -> np.ndarray:
    """[n] means of ``values`` resampled with replacement (the bootstrap over seeds)."""
    x = np.asarray(values, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n, len(x)))
    return x[idx].mean(1)


def verdict(low: float | None, high: float | None) -> str:
    """"better" when the whole interval of (model - baseline) is above 0, "worse" below, else "inconclusive"."""
    if low is None or high is None:
        return "inconclusive"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive"
