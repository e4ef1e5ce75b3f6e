"""Distances between two predictive distributions given as samples on the same inputs.

Used to judge a dropout posterior against a reference (NUTS in
:mod:`bayesdrop.pyro`, a deep ensemble, another method): Izmailov et al.'s
agreement and total variation for classifiers; the exact 1-D Wasserstein-2
distance and the ratio of standard deviations for regressors; each side's NLL
and coverage. Plain numpy: no Pyro needed.

References
----------
Izmailov et al. 2021, "What are Bayesian neural network posteriors really like?",
arXiv:2104.14421, sec. 4 and 7.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.special
from torch import Tensor

from .._checks import check_float, check_option
from ..likelihoods import Categorical, Gaussian
from ._arrays import ArrayLike, as_float
from .classification import accuracy, nll
from .regression import interval_coverage, mixture_nll

__all__ = ["compare", "wasserstein2"]


def _is_categorical(likelihood: Any, task: str | None) -> bool:
    """Whether ``compare`` reads logits; ``task`` is the deprecated spelling."""
    if task is not None:
        check_option(task, "task", "compare", ("classification", "regression"))
        warnings.warn(
            "compare(task=...) is deprecated: pass likelihood=bayesdrop.Categorical() or bayesdrop.Gaussian().",
            DeprecationWarning,
            stacklevel=3,
        )
        if likelihood is None:
            return task == "classification"
    if not isinstance(likelihood, (Categorical, Gaussian)):
        raise TypeError(
            "The 'likelihood' parameter of compare must be a bayesdrop.Categorical or bayesdrop.Gaussian. "
            f"Got {type(likelihood).__name__} instead."
        )
    return isinstance(likelihood, Categorical)


def wasserstein2(a: ArrayLike, b: ArrayLike) -> Any:
    r"""Exact 1-D Wasserstein-2 distance between two empirical distributions, per column.

    .. math:: W_2^2 = \int_0^1 \big(F_a^{-1}(u) - F_b^{-1}(u)\big)^2 \, du

    with the empirical quantile functions (step functions), integrated exactly
    over the union of their breakpoints, so the sample sizes may differ.

    Parameters
    ----------
    a : array (S, N)
    b : array (S', N)
        Samples on axis 0, N independent distributions on axis 1.

    Returns
    -------
    ndarray (N,)

    Examples
    --------
    >>> wasserstein2([[0.0], [1.0]], [[0.5], [1.5]]).tolist()
    [0.5]
    """
    x = np.sort(as_float(a, "a"), axis=0)
    z = np.sort(as_float(b, "b"), axis=0)
    if x.ndim != 2 or z.ndim != 2 or x.shape[1] != z.shape[1]:
        raise ValueError(f"The 'a' and 'b' parameters must be (S, N) and (S', N). Got {x.shape} and {z.shape} instead.")
    u = np.union1d(np.arange(1, len(x) + 1) / len(x), np.arange(1, len(z) + 1) / len(z))
    width = np.diff(u, prepend=0.0)
    mid = u - width / 2
    ia = np.minimum((mid * len(x)).astype(np.int64), len(x) - 1)
    ib = np.minimum((mid * len(z)).astype(np.int64), len(z) - 1)
    return np.sqrt(width @ (x[ia] - z[ib]) ** 2)


def _as_samples(value: Any, name: str) -> np.ndarray:
    return as_float(value.detach().cpu().double().numpy() if isinstance(value, Tensor) else value, name)


def _regression_parts(s: np.ndarray, name: str, n: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    if s.ndim == 2:
        s = s[..., None]
    if s.ndim != 3 or s.shape[-1] not in (1, 2) or (n is not None and s.shape[1] != n):
        want = "(S, N), (S, N, 1) means or (S, N, 2) means and log-variances" + (f" with N = {n}" if n else "")
        raise ValueError(f"The '{name}' parameter of compare must have shape {want}. Got {s.shape} instead.")
    return s[..., 0], (np.exp(s[..., 1]) if s.shape[-1] == 2 else None)


def compare(
    samples: ArrayLike,
    reference: ArrayLike,
    y: ArrayLike | None = None,
    *,
    likelihood: Gaussian | Categorical | None = None,
    level: float = 0.95,
    task: str | None = None,
) -> dict[str, float]:
    r"""Predictive distances between two sets of samples on the same inputs.

    Classification (samples are logits ``(S, N, K)``, as :func:`bayesdrop.sample`
    returns them; the predictive is the mean of the per-sample softmax):

    - ``agreement``: the fraction of inputs whose predicted class (argmax of
      the predictive) is the same on both sides;
    - ``total_variation``: :math:`\frac1N \sum_n \frac12 \lVert p_n - q_n \rVert_1`
      (Izmailov et al. 2021, sec. 4);
    - with ``y``: ``accuracy``, ``nll`` and ``reference_accuracy``, ``reference_nll``.

    Regression (one target; samples are ``(S, N)`` or ``(S, N, 1)`` means, or
    ``(S, N, 2)`` means and log-variances, the layout of
    :meth:`ReferencePosterior.predict` and of ``sample(nn.Sequential(net,
    likelihood), x)``):

    - ``w2``: the exact 1-D Wasserstein-2 distance between the two sets of
      sampled means at each input, averaged over inputs (function space: the
      posteriors over the regression function, without the noise);
    - ``std_ratio``: the geometric mean over inputs of the ratio of the
      standard deviations of the sampled means (< 1: the samples are more
      confident than the reference);
    - ``predictive_std_ratio`` (both sides with log-variances): the same with
      the total predictive std :math:`\sqrt{\mathrm{Var}_t[\mu_t] +
      \mathrm{E}_t[\sigma_t^2]}`;
    - with ``y`` (log-variances needed): ``nll`` (the MC mixture NLL),
      ``coverage`` of the central ``level`` Gaussian interval of the total
      predictive std, and ``reference_nll``, ``reference_coverage``.

    Parameters
    ----------
    samples, reference : array or Tensor
        The two sets of samples; the sample counts may differ, the inputs not.
    y : array, optional
        Targets of the N inputs.
    likelihood : Categorical or Gaussian
        What the samples are: logits (``Categorical()``) or means and
        log-variances (``Gaussian()``, one target), as everywhere else.
    level : float
        Interval level for the coverage.
    task : {"classification", "regression"}, optional
        Deprecated spelling of ``likelihood`` (bayesdrop 0.1).

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        Mismatched shapes, an unknown task, NaN values, ``y`` without
        log-variances in a regression.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).normal(size=(100, 5))
    >>> from bayesdrop import Gaussian
    >>> compare(a, a, likelihood=Gaussian())
    {'w2': 0.0, 'std_ratio': 1.0}
    """
    categorical = _is_categorical(likelihood, task)
    level = check_float(level, "level", "compare", low=0.0, high=1.0, low_open=True, high_open=True)
    s = _as_samples(samples, "samples")
    r = _as_samples(reference, "reference")
    target = None if y is None else np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y)
    if categorical:
        if s.ndim != 3 or r.ndim != 3 or s.shape[1:] != r.shape[1:]:
            raise ValueError(
                "The 'samples' and 'reference' parameters of compare must be logits (S, N, K) with the same N and K. "
                f"Got {s.shape} and {r.shape} instead."
            )
        p, q = scipy.special.softmax(s, axis=-1).mean(0), scipy.special.softmax(r, axis=-1).mean(0)
        out = {
            "agreement": float(np.mean(p.argmax(-1) == q.argmax(-1))),
            "total_variation": float(np.mean(0.5 * np.abs(p - q).sum(-1))),
        }
        if target is not None:
            for prefix, probs in (("", p), ("reference_", q)):
                probs = probs / probs.sum(-1, keepdims=True)
                out[prefix + "accuracy"] = accuracy(probs, target)
                out[prefix + "nll"] = nll(probs, target)
        return out
    mean_s, var_s = _regression_parts(s, "samples", None)
    mean_r, var_r = _regression_parts(r, "reference", mean_s.shape[1])
    std_s, std_r = mean_s.std(0), mean_r.std(0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero std gives a ratio of 0 or inf, both zero: NaN
        out = {
            "w2": float(np.mean(wasserstein2(mean_s, mean_r))),
            "std_ratio": float(np.exp(np.mean(np.log(std_s) - np.log(std_r)))),
        }
        if var_s is not None and var_r is not None:
            tot_s = np.sqrt(std_s**2 + var_s.mean(0))
            tot_r = np.sqrt(std_r**2 + var_r.mean(0))
            out["predictive_std_ratio"] = float(np.exp(np.mean(np.log(tot_s) - np.log(tot_r))))
    if target is not None:
        t = as_float(target, "y").reshape(-1)
        if t.shape[0] != mean_s.shape[1]:
            raise ValueError(
                f"The 'y' parameter of compare must have {mean_s.shape[1]} targets. Got {t.shape[0]} instead."
            )
        for prefix, mu, var in (("", mean_s, var_s), ("reference_", mean_r, var_r)):
            side = "samples" if not prefix else "reference"
            if var is None:
                raise ValueError(
                    f"The '{side}' parameter of compare must carry log-variances, shape (S, N, 2), when 'y' is given "
                    "(sample nn.Sequential(net, likelihood) to get them)."
                )
            out[prefix + "nll"] = mixture_nll(mu, t, np.sqrt(var))
            total = np.sqrt(mu.var(0) + var.mean(0))
            out[prefix + "coverage"] = interval_coverage(mu.mean(0), total, t, level)
    return out
