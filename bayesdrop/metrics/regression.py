"""Regression metrics for Gaussian and sampled predictive distributions.

Logarithms are natural; negative log-likelihoods are averaged over points.

References
----------
- Gal & Ghahramani 2016, arXiv:1506.02142, sec. 5.3 (MC log-likelihood of
  the predictive mixture).
- Gneiting & Raftery 2007, "Strictly proper scoring rules, prediction, and
  estimation", JASA 102 (CRPS, eq. 20-21).
- Kuleshov, Fenner & Ermon 2018, "Accurate uncertainties for deep learning
  using calibrated regression", arXiv:1807.00263 (calibration curves).
- Tran et al. 2020, "Methods for comparing uncertainty quantifications for
  material property predictions", arXiv:1912.10066 (miscalibration area).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from scipy.special import logsumexp, ndtr

from .._checks import check_float
from ._arrays import Array, ArrayLike, as_float, same_length

__all__ = [
    "crps_gaussian",
    "crps_samples",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "miscalibration_area",
    "mixture_nll",
    "regression_calibration_curve",
    "rmse",
]

_LOG_2PI = math.log(2 * math.pi)


def _std(std: ArrayLike, like: Array, name: str = "std") -> Array:
    s = as_float(std, name)
    if s.size and s.min() <= 0:
        raise ValueError(f"The '{name}' parameter must be positive. Got {s.min()} instead.")
    return np.broadcast_to(s, like.shape) if s.ndim == 0 else s


def _pair(mean: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
    m, t = as_float(mean, "mean"), as_float(y, "y")
    same_length("mean", m, "y", t)
    return m, t


def _z(level: float, owner: str) -> float:
    level = check_float(level, "level", owner, low=0.0, high=1.0, low_open=True, high_open=True)
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def rmse(mean: ArrayLike, y: ArrayLike) -> float:
    """Root mean squared error.

    Parameters
    ----------
    mean : array (N,)
        Predictions.
    y : array (N,)
        Targets.

    Returns
    -------
    float

    Examples
    --------
    >>> rmse([0.0, 0.0], [3.0, 4.0]) == (12.5) ** 0.5
    True
    """
    m, t = _pair(mean, y)
    return float(np.sqrt(np.mean((m - t) ** 2)))


def gaussian_nll(mean: ArrayLike, std: ArrayLike, y: ArrayLike) -> float:
    r"""Mean Gaussian NLL :math:`\frac12\log(2\pi\sigma^2) + \frac{(y-\mu)^2}{2\sigma^2}`.

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,) or float
        Predictive standard deviations (> 0).
    y : array (N,)
        Targets.

    Returns
    -------
    float
        Mean Gaussian NLL in nats.

    Examples
    --------
    >>> round(gaussian_nll([0.0], [1.0], [0.0]), 6) == round(0.5 * math.log(2 * math.pi), 6)
    True
    """
    m, t = _pair(mean, y)
    s = _std(std, m)
    same_length("mean", m, "std", s)
    return float(np.mean(0.5 * _LOG_2PI + np.log(s) + 0.5 * ((t - m) / s) ** 2))


def mixture_nll(mean_samples: ArrayLike, y: ArrayLike, noise_std: ArrayLike) -> float:
    r"""NLL of the MC predictive mixture (Gal & Ghahramani 2016):

    .. math:: -\frac1N \sum_n \log \frac1T \sum_t N(y_n; \mu_{tn}, \sigma_{tn}^2)

    computed with logsumexp.

    Parameters
    ----------
    mean_samples : array (T, N)
        Sampled means.
    y : array (N,)
        Targets.
    noise_std : float or array broadcastable to (T, N)
        Observation noise std of each sample (a scalar for a homoscedastic
        model, (N,) or (T, N) for a heteroscedastic one).

    Returns
    -------
    float
        Mean NLL of the mixture in nats.

    Examples
    --------
    >>> round(mixture_nll([[0.0], [0.0]], [0.0], 1.0), 6) == round(0.5 * math.log(2 * math.pi), 6)
    True
    """
    mu = as_float(mean_samples, "mean_samples")
    t = as_float(y, "y")
    if t.ndim != 1:
        raise ValueError(f"The 'y' parameter must have shape (N,). Got {t.shape} instead.")
    if mu.ndim != 2 or mu.shape[1:] != t.shape:
        raise ValueError(f"The 'mean_samples' parameter must have shape (T, {t.shape[0]}). Got {mu.shape} instead.")
    s = np.broadcast_to(_std(noise_std, mu, "noise_std"), mu.shape)
    return float(-np.mean(mixture_log_likelihood(mu, t, s**2)))


def mixture_log_likelihood(mu: Array, y: Array, var: Array) -> Array:
    """Per-example log of the equal-weight Gaussian mixture over axis 0 (unvalidated; for streaming code)."""
    logp = -0.5 * (_LOG_2PI + np.log(var) + (y - mu) ** 2 / var)
    return np.asarray(logsumexp(logp, axis=0) - math.log(mu.shape[0]))


def crps_gaussian(mean: ArrayLike, std: ArrayLike, y: ArrayLike) -> float:
    r"""Mean CRPS of Gaussian predictions (Gneiting & Raftery 2007, eq. 21):

    .. math:: \sigma\Big[z(2\Phi(z) - 1) + 2\varphi(z) - \frac1{\sqrt\pi}\Big], \quad z = (y - \mu)/\sigma

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,) or float
        Predictive standard deviations (> 0).
    y : array (N,)
        Targets.

    Returns
    -------
    float
        Mean CRPS, in the targets' units (lower is better).

    Examples
    --------
    >>> round(crps_gaussian([0.0], [1.0], [0.0]), 6) == round((2 - 2 ** 0.5) / (2 * math.pi) ** 0.5, 6)
    True
    """
    m, t = _pair(mean, y)
    s = _std(std, m)
    z = (t - m) / s
    cdf = ndtr(z)
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return float(np.mean(s * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))))


def crps_samples(samples: ArrayLike, y: ArrayLike) -> float:
    r"""Mean CRPS of an ensemble, the V-statistic of properscoring's ``crps_ensemble``:

    .. math:: \frac1T \sum_t |x_t - y| - \frac1{2T^2} \sum_{t, t'} |x_t - x_{t'}|

    computed in O(T log T) per point from the sorted samples.

    Parameters
    ----------
    samples : array (T, N)
    y : array (N,)

    Returns
    -------
    float
        Mean CRPS of the empirical predictive, in the targets' units.

    Examples
    --------
    >>> crps_samples([[0.0], [2.0]], [1.0])
    0.5
    """
    x = as_float(samples, "samples")
    t = as_float(y, "y")
    if t.ndim != 1:
        raise ValueError(f"The 'y' parameter must have shape (N,). Got {t.shape} instead.")
    if x.ndim != 2 or x.shape[1:] != t.shape:
        raise ValueError(f"The 'samples' parameter must have shape (T, {t.shape[0]}). Got {x.shape} instead.")
    n = x.shape[0]
    first = np.abs(x - t).mean(0)
    xs = np.sort(x, axis=0)
    # sum_{t,t'} |x_t - x_t'| = 2 sum_i (2i - n - 1) x_(i), i = 1..n
    coef = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    spread = 2 * (coef * xs).sum(0) / (n * n)
    return float(np.mean(first - 0.5 * spread))


def interval_coverage(mean: ArrayLike, std: ArrayLike, y: ArrayLike, level: float = 0.95) -> float:
    r"""Fraction of targets inside the central interval :math:`\mu \pm z_{(1+level)/2}\sigma`.

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,) or float
        Predictive standard deviations (> 0).
    y : array (N,)
        Targets.
    level : float
        Nominal level of the central interval, in (0, 1).

    Returns
    -------
    float
        Fraction of targets inside their interval.

    Examples
    --------
    >>> interval_coverage([0.0, 0.0], [1.0, 1.0], [1.0, 3.0], level=0.95)
    0.5
    """
    z = _z(level, "interval_coverage")
    m, t = _pair(mean, y)
    s = _std(std, m)
    return float(np.mean(np.abs(t - m) <= z * s))


def interval_width(std: ArrayLike, level: float = 0.95) -> float:
    r"""Mean width :math:`2 z_{(1+level)/2} \sigma` of the central intervals.

    Parameters
    ----------
    std : array (N,) or float
        Predictive standard deviations.
    level : float
        Nominal level of the central interval, in (0, 1).

    Returns
    -------
    float
        Mean width of the Gaussian central intervals.

    Examples
    --------
    >>> round(interval_width([1.0], level=0.95), 4)
    3.9199
    """
    z = _z(level, "interval_width")
    s = as_float(std, "std")
    return float(np.mean(2 * z * _std(s, s)))


def regression_calibration_curve(
    mean: ArrayLike, std: ArrayLike, y: ArrayLike, *, num_levels: int = 99
) -> tuple[Array, Array]:
    """Expected against observed frequency of central prediction intervals.

    For each level in ``linspace(0, 1, num_levels + 2)`` (0 and 1 included),
    the observed frequency is the fraction of targets inside the central
    Gaussian interval of that level. A calibrated model lies on the diagonal.

    Returns
    -------
    expected, observed : arrays of length ``num_levels + 2``

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,) or float
        Predictive standard deviations (> 0).
    y : array (N,)
        Targets.
    num_levels : int
        Interior levels between 0 and 1.

    Examples
    --------
    >>> e, o = regression_calibration_curve([0.0, 0.0], [1.0, 1.0], [0.1, 5.0], num_levels=1)
    >>> e.tolist(), o.tolist()
    ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    """
    m, t = _pair(mean, y)
    s = _std(std, m)
    expected = np.linspace(0.0, 1.0, num_levels + 2)
    # |y - mu| / sigma <= z_level  <=>  2 Phi(|z|) - 1 <= level
    absz = np.abs(t - m) / s
    needed = 2.0 * ndtr(absz) - 1.0
    observed = np.array([np.mean(needed <= lv) if 0 < lv < 1 else lv for lv in expected])
    return expected, observed


def miscalibration_area(mean: ArrayLike, std: ArrayLike, y: ArrayLike, *, num_levels: int = 99) -> float:
    r"""Area between the regression calibration curve and the diagonal.

    :math:`\int_0^1 |\mathrm{observed}(p) - p|\,dp` by the trapezoid rule on
    :func:`regression_calibration_curve`'s levels. 0 is perfect calibration;
    at most 0.5.

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,) or float
        Predictive standard deviations (> 0).
    y : array (N,)
        Targets.
    num_levels : int
        Interior levels of the curve.

    Returns
    -------
    float
        In [0, 0.5].

    Examples
    --------
    >>> miscalibration_area([0.0], [1.0], [0.0], num_levels=1)
    0.25
    """
    e, o = regression_calibration_curve(mean, std, y, num_levels=num_levels)
    d = np.abs(o - e)
    return float(np.sum((d[1:] + d[:-1]) / 2 * np.diff(e)))
