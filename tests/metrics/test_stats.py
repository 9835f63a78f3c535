"""Small-sample statistics of compare: t quantiles and intervals, bootstraps, the verdict rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mirrordet.metrics.stats import bootstrap_interval, bootstrap_mean, t_interval, t_ppf, verdict

# two-sided 95% critical values from any t table
TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 29: 2.045}


@pytest.mark.parametrize("df,value", TABLE.items())
def test_t_quantile_matches_the_table(df, value):
    assert t_ppf(0.975, df) == pytest.approx(value, abs=5e-4)


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30, 200):
        for q in (0.6, 0.9, 0.975, 0.995, 0.025):
            assert t_ppf(q, df) == pytest.approx(float(stats.t.ppf(q, df)), rel=1e-9, abs=1e-9)


def test_t_interval_by_hand():
    x = [0.10, 0.12, 0.09]
    mean, lo, hi = t_interval(x)
    sd = math.sqrt(sum((v - 0.31 / 3) ** 2 for v in x) / 2)
    half = 4.302652729749 * sd / math.sqrt(3)
    assert mean == pytest.approx(0.31 / 3) and lo == pytest.approx(mean - half) and hi == pytest.approx(mean + half)
    assert t_interval([0.5]) == (0.5, None, None)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    b = bootstrap_mean([0.1, 0.2, 0.3, 0.4], n=2000, seed=3)
    assert b.shape == (2000,) and np.array_equal(b, bootstrap_mean([0.1, 0.2, 0.3, 0.4], n=2000, seed=3))
    lo, hi = bootstrap_interval(b)
    assert 0.1 <= lo < 0.25 < hi <= 0.4


@pytest.mark.parametrize("lo,hi,want", [(0.01, 0.2, "better"), (-0.3, -0.001, "worse"), (-0.1, 0.1, "inconclusive"),
                                        (None, None, "inconclusive"), (0.0, 0.1, "inconclusive")])
def test_verdict_rule(lo, hi, want):
    assert verdict(lo, hi) == want
