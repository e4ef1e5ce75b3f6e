"""Uncertainty of a classifier from probability samples ``(T, N, K)``.

The MC predictive is the mean of the per-sample probabilities (never of the
logits). Entropies are in nats.

References
----------
- Houlsby et al. 2011, "Bayesian active learning for classification and
  preference learning", arXiv:1112.5745 (BALD: mutual information).
- Gal 2016, "Uncertainty in deep learning", PhD thesis, sec. 3.3.1
  (predictive entropy, mutual information, variation ratio).
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from ._arrays import Array, ArrayLike, as_probs

__all__ = ["expected_entropy", "mutual_information", "predictive_entropy", "variation_ratio"]


def _samples(prob_samples: ArrayLike) -> Array:
    return as_probs(prob_samples, "prob_samples", ndims=(3,))


def _entropy(p: Array) -> Array:
    return np.asarray(entr(p).sum(-1))  # entr(0) = 0


def predictive_entropy(prob_samples: ArrayLike) -> Array:
    r"""Entropy of the MC predictive, :math:`H[\bar p]`, :math:`\bar p = \frac1T \sum_t p_t`.

    Parameters
    ----------
    prob_samples : array (T, N, K)
        Class probabilities of T stochastic passes.

    Returns
    -------
    array (N,)

    Examples
    --------
    >>> predictive_entropy([[[1.0, 0.0]], [[0.0, 1.0]]]).round(6).tolist()
    [0.693147]
    """
    return _entropy(_samples(prob_samples).mean(0))


def expected_entropy(prob_samples: ArrayLike) -> Array:
    r"""Mean entropy of the samples, :math:`\frac1T \sum_t H[p_t]` (aleatoric part).

    Parameters
    ----------
    prob_samples : array (T, N, K)
        Class probabilities of T stochastic passes.

    Returns
    -------
    array (N,)
        Nats.

    Examples
    --------
    >>> expected_entropy([[[1.0, 0.0]], [[0.0, 1.0]]]).tolist()
    [0.0]
    """
    return np.asarray(_entropy(_samples(prob_samples)).mean(0))


def mutual_information(prob_samples: ArrayLike) -> Array:
    r"""BALD mutual information :math:`H[\bar p] - \frac1T \sum_t H[p_t]` (epistemic part).

    Non-negative by Jensen's inequality (rounding errors below 0 are kept).

    Parameters
    ----------
    prob_samples : array (T, N, K)
        Class probabilities of T stochastic passes.

    Returns
    -------
    array (N,)
        Nats.

    Examples
    --------
    >>> mutual_information([[[0.5, 0.5]], [[0.5, 0.5]]]).tolist()
    [0.0]
    """
    s = _samples(prob_samples)
    return np.asarray(_entropy(s.mean(0)) - _entropy(s).mean(0))


def variation_ratio(prob_samples: ArrayLike) -> Array:
    r"""Gal 2016's variation ratio: 1 - (votes of the modal class) / T.

    Each sample votes for its argmax class.

    Parameters
    ----------
    prob_samples : array (T, N, K)
        Class probabilities of T stochastic passes.

    Returns
    -------
    array (N,)
        In [0, 1 - 1/K].

    Examples
    --------
    >>> variation_ratio([[[0.75, 0.25]], [[0.75, 0.25]], [[0.25, 0.75]], [[0.5, 0.5]]]).tolist()
    [0.25]
    """
    s = _samples(prob_samples)
    votes = s.argmax(-1)  # (T, N)
    counts = np.stack([(votes == k).sum(0) for k in range(s.shape[-1])], axis=-1)
    return np.asarray(1.0 - counts.max(-1) / s.shape[0])
