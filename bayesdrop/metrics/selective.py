"""Selective prediction: the accuracy or RMSE left when the most uncertain examples are rejected.

At coverage c the ⌈c N⌉ examples with the lowest uncertainty are kept (ties
in the uncertainty broken by the examples' order) and the rest are
abstained on; ``selective_accuracy`` and ``selective_rmse`` measure the kept
ones, ``selective_curve`` does so at every coverage. Any uncertainty score
works (higher = more uncertain): the predictive entropy, the mutual
information, a predictive standard deviation.

References
----------
- El-Yaniv & Wiener 2010, "On the foundations of noise-free selective
  classification", JMLR 11.
- Geifman & El-Yaniv 2017, "Selective classification for deep neural
  networks", arXiv:1705.08500.
"""

from __future__ import annotations

import math

import numpy as np

from ._arrays import Array, ArrayLike, as_float, same_length

__all__ = ["selective_accuracy", "selective_curve", "selective_rmse"]


def _kept(uncertainty: ArrayLike, coverage: float, n: int) -> np.ndarray:
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 < coverage <= 1:
        raise ValueError(f"The 'coverage' parameter must be a float in (0, 1]. Got {coverage!r} instead.")
    u = as_float(uncertainty, "uncertainty").reshape(-1)
    if len(u) != n or n == 0:
        raise ValueError(f"The 'uncertainty' parameter must hold one value for each of the {n} examples (n > 0). "
                         f"Got {len(u)}.")  # fmt: skip
    keep = max(1, math.ceil(coverage * n - 1e-9))
    return np.argsort(u, kind="stable")[:keep]


def selective_accuracy(correct: ArrayLike, uncertainty: ArrayLike, coverage: float) -> float:
    """Accuracy on the ⌈coverage N⌉ least uncertain examples.

    Parameters
    ----------
    correct : array (N,)
        1 (or True) where the prediction is right.
    uncertainty : array (N,)
        Higher = more uncertain (rejected first).
    coverage : float
        The fraction kept, in (0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> selective_accuracy([1, 0, 1, 1], [0.1, 0.9, 0.2, 0.5], 0.5)  # keeps the two most certain
    1.0
    >>> selective_accuracy([1, 0, 1, 1], [0.1, 0.9, 0.2, 0.5], 1.0)
    0.75
    """
    c = as_float(correct, "correct").reshape(-1)
    return float(c[_kept(uncertainty, coverage, len(c))].mean())


def selective_rmse(errors: ArrayLike, uncertainty: ArrayLike, coverage: float) -> float:
    """RMSE of the residuals of the ⌈coverage N⌉ least uncertain examples.

    Parameters
    ----------
    errors : array (N,)
        Residuals y - prediction.
    uncertainty : array (N,)
        Higher = more uncertain (e.g. the predictive std).
    coverage : float
        The fraction kept, in (0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> selective_rmse([3.0, -4.0, 0.0], [2.0, 1.0, 0.0], 2 / 3)
    2.8284271247461903
    """
    e = as_float(errors, "errors").reshape(-1)
    return float(np.sqrt(np.mean(e[_kept(uncertainty, coverage, len(e))] ** 2)))


def selective_curve(losses: ArrayLike, uncertainty: ArrayLike) -> tuple[Array, Array]:
    """The mean loss of the kept examples at every coverage k / N, k = 1..N.

    Parameters
    ----------
    losses : array (N,)
        A per-example loss: 0/1 errors (risk = error rate) or squared
        residuals (the square root of the result is the RMSE).
    uncertainty : array (N,)
        Higher = more uncertain.

    Returns
    -------
    coverage, risk : arrays (N,)

    Examples
    --------
    >>> cov, risk = selective_curve([0, 1, 0, 0], [0.1, 0.9, 0.2, 0.5])
    >>> cov.tolist(), risk.tolist()
    ([0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.0, 0.25])
    """
    loss = as_float(losses, "losses").reshape(-1)
    u = as_float(uncertainty, "uncertainty").reshape(-1)
    same_length("losses", loss, "uncertainty", u)
    ordered = loss[np.argsort(u, kind="stable")]
    k = np.arange(1, len(loss) + 1)
    return k / len(loss), np.cumsum(ordered) / k
