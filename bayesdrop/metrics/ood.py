"""Out-of-distribution detection: uncertainty scores and how well they separate in- from out-of-distribution inputs.

Every score has one direction: **higher means more uncertain, more likely
out of distribution**. From T MC samples of class probabilities
(:func:`mc_scores`): one minus the MC predictive's largest probability, the
predictive entropy, the mutual information (BALD) and the variation ratio.
From one deterministic pass of logits (:func:`deterministic_scores`): one
minus the largest softmax probability (Hendrycks & Gimpel 2017), minus the
largest logit (Hendrycks et al. 2022) and the energy, minus the logsumexp of
the logits (Liu et al. 2020).

:func:`ood_detection` scores the separation with scikit-learn's curves.

References
----------
- Hendrycks & Gimpel 2017, "A baseline for detecting misclassified and
  out-of-distribution examples in neural networks", arXiv:1610.02136.
- Liang, Li & Srikant 2018, "Enhancing the reliability of out-of-distribution
  image detection in neural networks", arXiv:1706.02690 (FPR at 95% TPR).
- Liu, Wang, Owens & Li 2020, "Energy-based out-of-distribution detection",
  arXiv:2010.03759, eq. 4.
- Hendrycks et al. 2022, "Scaling out-of-distribution detection for
  real-world settings", arXiv:1911.11132 (max logit).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from ._arrays import Array, ArrayLike, as_float, as_probs
from .uncertainty import mutual_information, predictive_entropy, variation_ratio

__all__ = ["DETERMINISTIC_SCORES", "MC_SCORES", "deterministic_scores", "mc_scores", "ood_detection"]

#: The scores of :func:`mc_scores` and :func:`deterministic_scores`, in the order tables list them.
MC_SCORES = ("max_prob", "entropy", "mutual_information", "variation_ratio")
DETERMINISTIC_SCORES = ("max_prob", "max_logit", "energy")

#: The true-positive rate (in-distribution examples accepted) at which ``fpr95`` is read.
TPR_LEVEL = 0.95


def mc_scores(prob_samples: ArrayLike) -> dict[str, Array]:
    """OOD scores of each example from T MC samples of class probabilities (higher = more likely OOD).

    Parameters
    ----------
    prob_samples : array (T, N, K)
        Class probabilities of T stochastic passes.

    Returns
    -------
    dict of str to array (N,)
        ``max_prob`` (1 minus the MC predictive's largest probability),
        ``entropy``, ``mutual_information``, ``variation_ratio``.

    Examples
    --------
    >>> s = mc_scores([[[0.9, 0.1]], [[0.1, 0.9]]])
    >>> [round(float(s[k][0]), 3) for k in MC_SCORES]
    [0.5, 0.693, 0.368, 0.5]
    """
    samples = as_probs(prob_samples, "prob_samples", ndims=(3,))
    return {
        "max_prob": 1.0 - samples.mean(0).max(-1),
        "entropy": predictive_entropy(samples),
        "mutual_information": mutual_information(samples),
        "variation_ratio": variation_ratio(samples),
    }


def deterministic_scores(logits: ArrayLike) -> dict[str, Array]:
    """OOD scores of each example from one deterministic pass of logits (higher = more likely OOD).

    Parameters
    ----------
    logits : array (N, K)
        Logits (not probabilities) of the eval-mode pass.

    Returns
    -------
    dict of str to array (N,)
        ``max_prob`` (1 minus the largest softmax probability), ``max_logit``
        (minus the largest logit) and ``energy`` (minus the logsumexp of the
        logits).

    Examples
    --------
    >>> s = deterministic_scores([[2.0, 0.0]])
    >>> [round(float(s[k][0]), 3) for k in DETERMINISTIC_SCORES]
    [0.119, -2.0, -2.127]
    """
    z = as_float(logits, "logits")
    if z.ndim != 2:
        raise ValueError(f"The 'logits' parameter must be (N, K) logits. Got shape {z.shape} instead.")
    return {
        "max_prob": 1.0 - softmax(z, axis=-1).max(-1),
        "max_logit": -z.max(-1),
        "energy": -logsumexp(z, axis=-1),
    }


def _scores(values: ArrayLike, name: str) -> Array:
    if np.ndim(values) > 1:
        raise ValueError(f"The '{name}' parameter must be one score per example (1-D). Got shape {np.shape(values)}.")
    s = as_float(values, name).reshape(-1)
    if s.size == 0:
        raise ValueError(f"The '{name}' parameter must hold at least one score. Got an empty array instead.")
    return s


def ood_detection(scores_in: ArrayLike, scores_out: ArrayLike) -> dict[str, float]:
    """How well a score separates out-of-distribution examples from in-distribution ones.

    Higher scores must mean "more likely out of distribution". The curves are
    scikit-learn's (``roc_auc_score``, ``average_precision_score``,
    ``roc_curve``); ties count one half in the AUROC.

    Parameters
    ----------
    scores_in : array (N_in,)
        Scores of in-distribution examples.
    scores_out : array (N_out,)
        Scores of out-of-distribution examples.

    Returns
    -------
    dict of str to float
        ``auroc``: the probability that an OOD example scores above an
        in-distribution one; ``aupr_out``: average precision with OOD as the
        positive class; ``aupr_in``: the same with in-distribution as the
        positive class (scores negated); ``fpr95``: the fraction of OOD
        examples accepted as in-distribution at the threshold that accepts
        95% of the in-distribution examples (lower is better).

    Raises
    ------
    ValueError
        If either set is empty or holds NaN or infinite scores.

    Examples
    --------
    >>> out = ood_detection([0.1, 0.2, 0.3], [0.4, 0.5])
    >>> out["auroc"], out["fpr95"]
    (1.0, 0.0)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    is_out = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
    scores = np.concatenate([s_in, s_out])
    # In-distribution as the positive class, scored by -s: the TPR is the fraction of in-distribution examples
    # accepted, the FPR the fraction of OOD examples accepted with them.
    fpr, tpr, _ = roc_curve(1 - is_out, -scores)
    return {
        "auroc": float(roc_auc_score(is_out, scores)),
        "aupr_in": float(average_precision_score(1 - is_out, -scores)),
        "aupr_out": float(average_precision_score(is_out, scores)),
        "fpr95": float(fpr[np.searchsorted(tpr, TPR_LEVEL - 1e-12)]),
    }
