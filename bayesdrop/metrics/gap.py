"""The gap between the MC ensemble average and the deterministic prediction.

Dropout training fits an ensemble of sub-networks; the cheap eval-mode pass
(weight scaling) approximates the ensemble average by one network. For a
single softmax/logistic unit the eval pass is exactly the normalised weighted
geometric mean of the ensemble (Baldi & Sadowski 2013, sec. 4; Srivastava et
al. 2014, sec. 7.5), while MC dropout estimates the arithmetic mean. These
functions measure how far the two predictive distributions are apart.

References
----------
- Srivastava et al. 2014, JMLR 15, sec. 7.5 (Monte-Carlo model averaging vs
  weight scaling).
- Baldi & Sadowski 2013, "Understanding dropout", NeurIPS (NWGM).
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from ._arrays import Array, ArrayLike, as_float, as_probs, same_length
from .classification import accuracy, brier, ece, nll

__all__ = ["ensemble_gap", "regression_gap"]


def _kl_rows(p: Array, q: Array) -> Array:
    return np.asarray(rel_entr(p, q).sum(-1))  # 0 log 0/q = 0; p log p/0 = inf


def per_example_gap(mc_probs: ArrayLike, det_probs: ArrayLike) -> dict[str, Array]:
    """Per-example KL(mc || det), KL(det || mc), total variation and JS (nats).

    Parameters
    ----------
    mc_probs, det_probs : arrays (N, K) or (N,)
        Probabilities of the MC predictive and of the deterministic pass.

    Returns
    -------
    dict of str to array (N,)
        ``kl_mc_det``, ``kl_det_mc``, ``total_variation``, ``js``.
    """
    p = as_probs(mc_probs, "mc_probs")
    q = as_probs(det_probs, "det_probs")
    same_length("mc_probs", p, "det_probs", q)
    if p.ndim == 1:
        p, q = np.stack([1 - p, p], 1), np.stack([1 - q, q], 1)
    m = 0.5 * (p + q)
    return {
        "kl_mc_det": _kl_rows(p, q),
        "kl_det_mc": _kl_rows(q, p),
        "total_variation": 0.5 * np.abs(p - q).sum(-1),
        "js": 0.5 * _kl_rows(p, m) + 0.5 * _kl_rows(q, m),
    }


def ensemble_gap(mc_probs: ArrayLike, det_probs: ArrayLike, labels: ArrayLike | None = None) -> dict[str, float]:
    r"""Distances between the MC predictive and the deterministic one.

    Averages over examples of KL(MC || det), KL(det || MC), total variation
    :math:`\frac12\sum_k|p_k - q_k|` and Jensen-Shannon divergence (nats),
    plus the argmax flip rate. With labels, the differences MC minus
    deterministic in accuracy, NLL, Brier and ECE (15 bins, L1).

    Parameters
    ----------
    mc_probs, det_probs : arrays (N, K) or (N,)
        Probabilities of the two paths (1-D: P(y = 1)).
    labels : array (N,), optional

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> g = ensemble_gap([[0.5, 0.5]], [[0.75, 0.25]])
    >>> g["total_variation"], g["flip_rate"]
    (0.25, 0.0)
    """
    per = per_example_gap(mc_probs, det_probs)
    p = as_probs(mc_probs, "mc_probs")
    q = as_probs(det_probs, "det_probs")
    pred_p = p.argmax(1) if p.ndim == 2 else (p > 0.5).astype(np.int64)
    pred_q = q.argmax(1) if q.ndim == 2 else (q > 0.5).astype(np.int64)
    out = {k: float(v.mean()) for k, v in per.items()}
    out["flip_rate"] = float(np.mean(pred_p != pred_q))
    if labels is not None:
        for name, fn in (("accuracy", accuracy), ("nll", nll), ("brier", brier), ("ece", ece)):
            out[f"delta_{name}"] = fn(p, labels) - fn(q, labels)
    return out


def regression_gap(
    mc_mean: ArrayLike,
    mc_std: ArrayLike,
    det_mean: ArrayLike,
    det_std: ArrayLike | None = None,
    y: ArrayLike | None = None,
) -> dict[str, float]:
    r"""Gap between the MC predictive and the deterministic regression output.

    Returns the mean and root-mean-square difference of the means, the mean
    difference in units of the MC predictive std
    :math:`|\mu_{mc} - \mu_{det}|/\sigma_{mc}`; with ``det_std`` the mean
    Gaussian KL(N_mc || N_det); with ``y`` the differences (MC minus
    deterministic) in RMSE and, given ``det_std``, in Gaussian NLL.

    Parameters
    ----------
    mc_mean, mc_std : array (N,)
        MC predictive mean and standard deviation.
    det_mean : array (N,)
        Mean of the deterministic pass.
    det_std : array (N,), optional
        Its standard deviation (the observation noise).
    y : array (N,), optional
        Targets.

    Returns
    -------
    dict of str to float
        The measures named above.

    Examples
    --------
    >>> regression_gap([1.0], [2.0], [0.0])["standardised_mean_diff"]
    0.5
    """
    from .regression import gaussian_nll, rmse

    m1, s1, m0 = as_float(mc_mean, "mc_mean"), as_float(mc_std, "mc_std"), as_float(det_mean, "det_mean")
    same_length("mc_mean", m1, "det_mean", m0)
    s1 = np.broadcast_to(s1, m1.shape)
    if s1.size and s1.min() <= 0:
        raise ValueError(f"The 'mc_std' parameter must be positive. Got {s1.min()} instead.")
    d = m1 - m0
    out = {
        "mean_abs_diff": float(np.mean(np.abs(d))),
        "rms_diff": float(np.sqrt(np.mean(d * d))),
        "standardised_mean_diff": float(np.mean(np.abs(d) / s1)),
    }
    if det_std is not None:
        s0 = np.broadcast_to(as_float(det_std, "det_std"), m0.shape)
        if s0.size and s0.min() <= 0:
            raise ValueError(f"The 'det_std' parameter must be positive. Got {s0.min()} instead.")
        kl = np.log(s0 / s1) + (s1**2 + d**2) / (2 * s0**2) - 0.5
        out["kl_mc_det"] = float(np.mean(kl))
    if y is not None:
        out["delta_rmse"] = rmse(m1, y) - rmse(m0, y)
        if det_std is not None:
            out["delta_nll"] = gaussian_nll(m1, s1, y) - gaussian_nll(m0, s0, y)
    return out
