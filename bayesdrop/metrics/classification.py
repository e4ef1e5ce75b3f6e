"""Classification metrics on predictive probabilities.

A 2-D array ``(N, K)`` holds class probabilities and gives top-label metrics
(confidence = the largest probability, correct = its class is the label); a
1-D array ``(N,)`` holds P(y = 1) of a binary problem and gives
positive-class metrics (confidence = P(y = 1), "accuracy" of a bin = the
frequency of y = 1, as scikit-learn's ``calibration_curve``). Logarithms are
natural. Inputs are torch tensors or numpy arrays; nothing is soft-maxed or
clipped: invalid probabilities raise ``ValueError``.

References
----------
- Guo et al. 2017, "On calibration of modern neural networks",
  arXiv:1706.04599 (ECE, MCE, reliability diagrams, sec. 2).
- Kumar, Liang & Ma 2019, "Verified uncertainty calibration",
  arXiv:1909.10155 (debiased L2 calibration error, sec. 5).
- Kull et al. 2019, "Beyond temperature scaling", arXiv:1910.12656
  (classwise ECE).
- Geifman, Uziel & El-Yaniv 2019, "Bias-reduced uncertainty estimation for
  deep neural classifiers", arXiv:1805.08206 (AURC).
- Hendrycks & Gimpel 2017, arXiv:1610.02136 (misclassification detection AUROC).
- Brier 1950, Monthly Weather Review 78 (Brier score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .._checks import check_int, check_option
from ._arrays import Array, ArrayLike, probs_and_labels

__all__ = [
    "ReliabilityTable",
    "accuracy",
    "aurc",
    "brier",
    "classwise_ece",
    "ece",
    "misclassification_auroc",
    "nll",
    "reliability_table",
    "risk_coverage_curve",
]


Binning = Literal["width", "mass"]


def _confidence_correct(p: Array, y: npt.NDArray[np.int64]) -> tuple[Array, Array]:
    """Top-label (2-D) or positive-class (1-D) confidence and outcome."""
    if p.ndim == 2:
        return p.max(1), (p.argmax(1) == y).astype(np.float64)
    return p, y.astype(np.float64)


def _predicted(p: Array) -> npt.NDArray[np.int64]:
    # 1-D: class 1 when P(y=1) > 0.5 (argmax of [1 - p, p], ties to class 0).
    return p.argmax(1) if p.ndim == 2 else (p > 0.5).astype(np.int64)


def accuracy(probs: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of examples whose most probable class is the label.

    For a 1-D array of P(y=1) the prediction is 1 when P(y=1) > 0.5.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> accuracy([[0.75, 0.25], [0.5, 0.5]], [0, 1])
    0.5
    """
    p, y = probs_and_labels(probs, labels)
    return float(np.mean(_predicted(p) == y))


def nll(probs: ArrayLike, labels: ArrayLike) -> float:
    r"""Mean negative log-likelihood :math:`-\frac1N \sum_n \log p_{n, y_n}` in nats.

    A zero probability on the true class gives ``inf`` (nothing is clipped).

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Returns
    -------
    float
        Mean NLL in nats (inf when a true class has probability 0).

    Examples
    --------
    >>> round(nll([[0.5, 0.5], [0.25, 0.75]], [0, 1]), 6)  # (log 2 + log 4/3) / 2
    0.490415
    """
    p, y = probs_and_labels(probs, labels)
    py = p[np.arange(len(y)), y] if p.ndim == 2 else np.where(y == 1, p, 1.0 - p)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(py)))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    r"""Brier score.

    On ``(N, K)``: :math:`\frac1N \sum_n \sum_k (p_{nk} - [y_n = k])^2`, range
    [0, 2]; on ``(N,)``: :math:`\frac1N \sum_n (p_n - y_n)^2`, range [0, 1]
    (scikit-learn's ``brier_score_loss``).

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Returns
    -------
    float
        In [0, 2] for (N, K), [0, 1] for (N,).

    Examples
    --------
    >>> brier([[1.0, 0.0], [0.5, 0.5]], [0, 0])
    0.25
    >>> brier([0.25, 1.0], [0, 1])
    0.03125
    """
    p, y = probs_and_labels(probs, labels)
    if p.ndim == 2:
        onehot = np.eye(p.shape[1])[y]
        return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class ReliabilityTable:
    """Per-bin calibration statistics (one entry per bin, empty bins included).

    ``accuracy`` and ``confidence`` are NaN for empty bins (``count == 0``).

    Attributes
    ----------
    lower, upper : array
        Bin edges (equal-mass bins: the smallest and largest confidence in the bin).
    count : int array
        Examples per bin.
    accuracy, confidence : array
        Mean outcome and mean confidence per bin (NaN for empty bins).
    """

    lower: Array
    upper: Array
    count: npt.NDArray[np.int64]
    accuracy: Array
    confidence: Array

    @property
    def weight(self) -> Array:
        """Fraction of examples in each bin."""
        total = self.count.sum()
        return self.count / total if total else self.count.astype(np.float64)


def bin_index(conf: Array, n_bins: int, right: bool) -> npt.NDArray[np.int64]:
    """Equal-width bin of each confidence, the same for float32 and float64 inputs.

    The bin is ``floor(n_bins * c)`` computed in float64 (``b/n_bins <= c <
    (b+1)/n_bins``, 1.0 in the last bin: numpy.histogram's rule), or, with
    ``right``, ``ceil(n_bins * c) - 1`` (``b/n_bins < c <= (b+1)/n_bins``, 0.0
    in the first bin). A value within float32 rounding of an edge
    (``|n_bins * c - k| <= n_bins * 2**-24``) counts as on the edge, so 0.6
    gets the same bin whether it arrived as float32 (0.6000000238...) or
    float64. Comparing with ``linspace`` edges instead put 0.6 into bin 2 of 5
    in float64 (whose edge is 0.6000000000000001) but bin 3 in float32.
    """
    scaled = np.asarray(conf, dtype=np.float64) * n_bins
    nearest = np.round(scaled)
    scaled = np.where(np.abs(scaled - nearest) <= n_bins * 2.0**-24, nearest, scaled)
    idx = np.ceil(scaled) - 1 if right else np.floor(scaled)
    out: npt.NDArray[np.int64] = np.clip(idx, 0, n_bins - 1).astype(np.int64)
    return out


def _table(conf: Array, outcome: Array, n_bins: int, binning: str, right: bool) -> ReliabilityTable:
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        idx = bin_index(conf, n_bins, right)
        lower, upper = edges[:-1], edges[1:]
        count = np.bincount(idx, minlength=n_bins).astype(np.int64)
        sum_acc = np.bincount(idx, weights=outcome, minlength=n_bins)
        sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    else:  # equal mass: split the sorted confidences with numpy.array_split
        order = np.argsort(conf, kind="stable")
        groups = np.array_split(order, n_bins)
        count = np.array([len(g) for g in groups], dtype=np.int64)
        sum_acc = np.array([outcome[g].sum() for g in groups])
        sum_conf = np.array([conf[g].sum() for g in groups])
        lower = np.array([conf[g].min() if len(g) else np.nan for g in groups])
        upper = np.array([conf[g].max() if len(g) else np.nan for g in groups])
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(count > 0, sum_acc / count, np.nan)
        cf = np.where(count > 0, sum_conf / count, np.nan)
    return ReliabilityTable(lower, upper, count, acc, cf)


def _check_binning(n_bins: int, binning: str, owner: str) -> int:
    check_option(binning, "binning", owner, ("width", "mass"))
    return check_int(n_bins, "n_bins", owner)


def reliability_table(
    probs: ArrayLike, labels: ArrayLike, *, n_bins: int = 15, binning: Binning = "width", right: bool = False
) -> ReliabilityTable:
    """Per-bin lower and upper edge, count, accuracy and mean confidence.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label) or P(y = 1) (positive class).
    labels : array (N,)
        Integer labels.
    n_bins : int
        Number of bins (15 by default).
    binning : {"width", "mass"}
        Equal-width bins on [0, 1] (left-closed, the last closed, as
        ``numpy.histogram``; ``right=True`` for right-closed bins as Guo et al.
        2017 and scikit-learn; a value within float32 rounding of an edge is on
        the edge, so float32 and float64 inputs get the same bins) or equal-mass bins (the sorted confidences split
        with ``numpy.array_split``; their edges are the smallest and largest
        confidence in the bin).
    right : bool
        Right-closed equal-width bins.

    Returns
    -------
    ReliabilityTable
        One entry per bin, empty bins included.

    Examples
    --------
    >>> t = reliability_table([0.25, 0.5, 0.75, 1.0], [0, 1, 1, 1], n_bins=4)
    >>> t.count.tolist(), t.accuracy.tolist()
    ([0, 1, 1, 2], [nan, 0.0, 1.0, 1.0])
    >>> reliability_table([0.25, 0.5, 0.75, 1.0], [0, 1, 1, 1], n_bins=4, right=True).count.tolist()
    [1, 1, 1, 1]
    """
    n_bins = _check_binning(n_bins, binning, "reliability_table")
    p, y = probs_and_labels(probs, labels)
    conf, outcome = _confidence_correct(p, y)
    return _table(conf, outcome, n_bins, binning, right)


def _calibration_error(table: ReliabilityTable, norm: str, debias: bool) -> float:
    w = table.weight
    nonempty = table.count > 0
    diff = np.abs(table.accuracy - table.confidence)
    if norm == "max":
        return float(diff[nonempty].max()) if nonempty.any() else 0.0
    if norm == "l1":
        return float(np.sum(w[nonempty] * diff[nonempty]))
    sq = diff**2
    if debias:
        # Kumar et al. 2019: subtract the binomial variance of each bin's
        # accuracy, acc (1 - acc) / (n - 1); bins with fewer than 2 points add 0.
        n = table.count.astype(np.float64)
        big = n >= 2
        acc = table.accuracy
        terms = np.zeros_like(sq)
        terms[big] = sq[big] - acc[big] * (1 - acc[big]) / (n[big] - 1)
        return float(np.sqrt(max(np.sum(w * terms), 0.0)))
    return float(np.sqrt(np.sum(w[nonempty] * sq[nonempty])))


def ece(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    norm: Literal["l1", "l2", "max"] = "l1",
    binning: Binning = "width",
    right: bool = False,
    debias: bool = False,
) -> float:
    r"""Expected calibration error.

    .. math:: \mathrm{ECE}_1 = \sum_b \frac{n_b}{N} |\mathrm{acc}_b - \mathrm{conf}_b|, \quad
              \mathrm{ECE}_2 = \Big(\sum_b \frac{n_b}{N} (\mathrm{acc}_b - \mathrm{conf}_b)^2\Big)^{1/2},
              \quad \mathrm{MCE} = \max_b |\mathrm{acc}_b - \mathrm{conf}_b|

    (Guo et al. 2017, eq. 3 and 5). Empty bins weigh zero.

    Parameters
    ----------
    probs, labels, n_bins, binning, right
        As in :func:`reliability_table`.
    norm : {"l1", "l2", "max"}
        ``"max"`` is the maximum calibration error over non-empty bins.
    debias : bool
        Kumar et al. 2019's debiased estimator of the L2 error (sec. 5): each
        bin's squared gap minus :math:`\mathrm{acc}_b(1-\mathrm{acc}_b)/(n_b-1)`,
        floored at 0 before the square root. Requires ``norm="l2"``.

    Returns
    -------
    float
        The calibration error (0 is perfect).

    Examples
    --------
    >>> ece([[0.75, 0.25], [0.75, 0.25]], [0, 1], n_bins=4)
    0.25
    """
    check_option(norm, "norm", "ece", ("l1", "l2", "max"))
    if not isinstance(debias, bool):
        raise TypeError(f"The 'debias' parameter of ece must be a bool. Got {debias!r} instead.")
    if debias and norm != "l2":
        raise ValueError(f"The 'debias' parameter of ece requires norm='l2'. Got norm={norm!r} instead.")
    table = reliability_table(probs, labels, n_bins=n_bins, binning=binning, right=right)
    return _calibration_error(table, norm, debias)


def classwise_ece(
    probs: ArrayLike, labels: ArrayLike, *, n_bins: int = 15, binning: Binning = "width", right: bool = False
) -> float:
    r"""Classwise ECE: the mean over classes of the ECE of P(y = k) (Kull et al. 2019).

    .. math:: \frac1K \sum_k \sum_b \frac{n_{kb}}{N} |\bar{[y=k]}_{kb} - \bar p_{kb}|

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.
    n_bins, binning, right
        As in :func:`reliability_table`.

    Returns
    -------
    float
        The mean over classes of each class's ECE.

    Examples
    --------
    >>> classwise_ece([[1.0, 0.0], [0.0, 1.0]], [0, 1])
    0.0
    """
    n_bins = _check_binning(n_bins, binning, "classwise_ece")
    p, y = probs_and_labels(probs, labels)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    errors = [
        _calibration_error(_table(p[:, k], (y == k).astype(np.float64), n_bins, binning, right), "l1", False)
        for k in range(p.shape[1])
    ]
    return float(np.mean(errors))


def risk_coverage_curve(probs: ArrayLike, labels: ArrayLike) -> tuple[Array, Array]:
    """Selective risk against coverage, examples ranked by confidence.

    Keeping the ``k`` most confident examples gives coverage ``k / N`` and risk
    the error rate among them. Examples with equal confidence are accepted
    together: the curve has one point per distinct confidence.

    Returns
    -------
    coverage, risk : arrays
        Increasing coverage in (0, 1] and the matching selective risk.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Examples
    --------
    >>> cov, risk = risk_coverage_curve([[0.75, 0.25], [0.5, 0.5], [0.375, 0.625]], [0, 1, 0])
    >>> cov.round(4).tolist(), risk.round(4).tolist()
    ([0.3333, 0.6667, 1.0], [0.0, 0.5, 0.6667])
    """
    p, y = probs_and_labels(probs, labels)
    conf, correct = _confidence_correct(p, y) if p.ndim == 2 else (np.maximum(p, 1 - p), (_predicted(p) == y) * 1.0)
    order = np.argsort(-conf, kind="stable")
    errors = np.cumsum(1.0 - correct[order])
    k = np.arange(1, len(conf) + 1)
    last_of_tie = np.r_[conf[order][1:] != conf[order][:-1], True]
    return (k / len(conf))[last_of_tie], (errors / k)[last_of_tie]


def aurc(probs: ArrayLike, labels: ArrayLike) -> float:
    r"""Area under the risk-coverage curve (Geifman et al. 2019).

    :math:`\frac1N \sum_{k=1}^N \mathrm{risk}(k)`, where tied confidences share
    the risk of accepting the whole tie. Lower is better.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Returns
    -------
    float
        Area under the risk-coverage curve (lower is better).

    Examples
    --------
    >>> round(aurc([[0.75, 0.25], [0.5, 0.5], [0.375, 0.625]], [0, 1, 0]), 6)
    0.388889
    """
    cov, risk = risk_coverage_curve(probs, labels)
    n_per_point = np.diff(np.r_[0.0, cov])  # fraction of examples at each point
    return float(np.sum(n_per_point * risk))


def misclassification_auroc(probs: ArrayLike, labels: ArrayLike) -> float:
    """AUROC of the confidence for telling correct from wrong predictions.

    Hendrycks & Gimpel 2017: 1 means every correct prediction is more
    confident than every error, 0.5 no better than chance. NaN when all
    predictions are correct or all wrong.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Class probabilities (top-label metrics) or P(y = 1) of a binary problem.
    labels : array (N,)
        Integer labels.

    Returns
    -------
    float
        In [0, 1]; NaN when every prediction is right or every one wrong.

    Examples
    --------
    >>> misclassification_auroc([[0.75, 0.25], [0.5, 0.5], [0.375, 0.625]], [0, 1, 0])
    1.0
    """
    p, y = probs_and_labels(probs, labels)
    conf = p.max(1) if p.ndim == 2 else np.maximum(p, 1 - p)
    correct = _predicted(p) == y
    if correct.all() or not correct.any():  # one class only: the AUROC is undefined
        return float("nan")
    from sklearn.metrics import roc_auc_score  # imported here: scikit-learn takes a second to import

    return float(roc_auc_score(correct, conf))  # ties count one half (Mann-Whitney)
