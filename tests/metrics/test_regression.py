from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from bayesdrop import metrics as M
from tests.conftest import z_value


def test_hand_oracles():
    assert M.rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(math.sqrt(2.0))
    # N(y; 0, 2^2) at y = 2: 0.5 log(2 pi 4) + 0.5
    assert M.gaussian_nll([0.0], [2.0], [2.0]) == pytest.approx(0.5 * math.log(8 * math.pi) + 0.5)
    assert M.interval_coverage([0.0] * 4, [1.0] * 4, [0.5, -1.9, 1.97, 3.0], level=0.95) == 0.5
    assert M.interval_width([1.0, 2.0], level=0.5) == pytest.approx(2 * stats.norm.ppf(0.75) * 1.5)
    assert M.crps_samples([[0.0], [1.0], [3.0]], [1.0]) == pytest.approx((1 + 0 + 2) / 3 - 0.5 * (2 * (1 + 3 + 2)) / 9)


def test_mixture_nll_is_the_logsumexp_mixture():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(7, 5))
    s = rng.uniform(0.5, 2, size=(7, 5))
    y = rng.normal(size=5)
    direct = -np.mean(np.log(np.mean(stats.norm.pdf(y, mu, s), axis=0)))
    assert M.mixture_nll(mu, y, s) == pytest.approx(direct, rel=1e-12)
    assert M.mixture_nll(mu[:1], y, 1.5) == pytest.approx(M.gaussian_nll(mu[0], 1.5, y), rel=1e-12)
    # far from every mean: logsumexp stays finite where the direct form underflows
    assert math.isfinite(M.mixture_nll(np.zeros((3, 1)), [60.0], 1.0))


def test_crps_gaussian_against_numerical_integral_and_ensemble():
    m, s, y = 0.3, 1.7, 1.1
    cdf = lambda x: stats.norm.cdf(x, m, s)
    integral = integrate.quad(lambda x: cdf(x) ** 2, -40, y)[0] + integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, 40)[0]
    assert M.crps_gaussian([m], [s], [y]) == pytest.approx(integral, rel=1e-7)
    # A large ensemble from the same Gaussian converges to it; the V-statistic has
    # bias -E|X-X'|/(2T) = -s/(sqrt(pi) T) and SE ~ sd(|X - y|)/sqrt(T).
    t = 200_000
    x = np.random.default_rng(1).normal(m, s, size=(t, 1))
    se = float(np.std(np.abs(x - y))) / math.sqrt(t)
    est = M.crps_samples(x, [y]) + s / (math.sqrt(math.pi) * t)
    assert abs(est - integral) <= z_value() * se * 2  # first term SE, second term of the same order


def test_crps_samples_matches_brute_force():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 4))
    y = rng.normal(size=4)
    brute = np.mean(np.abs(x - y).mean(0) - 0.5 * np.abs(x[:, None] - x[None]).mean((0, 1)))
    assert M.crps_samples(x, y) == pytest.approx(brute, rel=1e-12)


def test_calibrated_predictions_cover_at_their_level():
    # y ~ N(mu, s^2) exactly: coverage at level L is Binomial(n, L)/n.
    n = 20_000
    rng = np.random.default_rng(3)
    mu = rng.normal(size=n)
    s = rng.uniform(0.5, 3, size=n)
    y = mu + s * rng.normal(size=n)
    z = z_value(3)
    for level in (0.5, 0.9):
        cov = M.interval_coverage(mu, s, y, level)
        assert abs(cov - level) <= z * math.sqrt(level * (1 - level) / n)
    # miscalibration area of a calibrated model: mean |observed - expected| over
    # levels, each |.| at most z sqrt(L(1-L)/n) <= z * 0.5 / sqrt(n).
    assert M.miscalibration_area(mu, s, y) <= z * 0.5 / math.sqrt(n)
    # an overconfident model (std halved) is clearly miscalibrated
    assert M.miscalibration_area(mu, s / 2, y) > 0.1
    e, o = M.regression_calibration_curve(mu, s, y)
    assert e[0] == 0 and e[-1] == 1 and o[0] == 0 and o[-1] == 1 and np.all(np.diff(o) >= 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: M.interval_coverage([0.0], [1.0], [0.0], level=1.0),
            r"'level' parameter of interval_coverage must be a float in \(0, 1\). Got 1.0",
        ),
        (
            lambda: M.interval_width([1.0], level=0.0),
            r"'level' parameter of interval_width must be a float in \(0, 1\). Got 0.0",
        ),
        (lambda: M.gaussian_nll([0.0], [-1.0], [0.0]), r"'std' parameter must be positive. Got -1.0"),
        (lambda: M.rmse([0.0, 1.0], [0.0]), r"'mean' and 'y' parameters must have the same shape"),
        (lambda: M.rmse([np.nan], [0.0]), r"'mean' parameter must be finite. Got nan"),
        (lambda: M.mixture_nll([0.0, 1.0], [0.0, 1.0], 1.0), r"'mean_samples' parameter must have shape \(T, 2\)"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_crps_samples_rejects_bad_shapes_with_named_parameters():
    with pytest.raises(ValueError, match=r"The 'samples' parameter must have shape \(T, 2\). Got \(3,\) instead"):
        M.crps_samples([0.0, 1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="The 'y' parameter must be finite"):
        M.crps_samples([[0.0, 1.0]], [0.0, float("nan")])
    with pytest.raises(ValueError, match="The 'samples' parameter must be finite"):
        M.crps_samples([[0.0, float("inf")]], [0.0, 1.0])
    with pytest.raises(ValueError, match=r"The 'y' parameter must have shape \(N,\). Got \(\) instead"):
        M.crps_samples([0.0, 1.0, 2.0], 0.5)  # a 0-d target (it raised IndexError)
    with pytest.raises(ValueError, match=r"The 'y' parameter must have shape \(N,\). Got \(\) instead"):
        M.mixture_nll([0.0, 1.0, 2.0], 0.5, 1.0)
