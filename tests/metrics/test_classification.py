from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from bayesdrop import metrics as M


def _random_probs(n=500, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p.astype(dtype), y


def test_hand_computed_oracles():
    p = np.array([[0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    y = np.array([0, 1, 1, 1])
    assert M.accuracy(p, y) == 0.5  # argmax [0, 0, 1, 0]
    assert M.nll(p[:3], y[:3]) == pytest.approx((math.log(4 / 3) + math.log(2) + math.log(4 / 3)) / 3)
    # Brier (N, K): (1/16+1/16), (1/4+1/4), (1/16+1/16), (1+1)  -> mean 2.75/4
    assert M.brier(p, y) == pytest.approx((0.125 + 0.5 + 0.125 + 2.0) / 4)
    assert M.nll(p, y) == math.inf  # zero probability on the label is not clipped
    assert M.brier(np.array([0.25, 0.75]), np.array([0, 0])) == pytest.approx((1 / 16 + 9 / 16) / 2)


def test_against_sklearn():
    p, y = _random_probs()
    assert M.nll(p, y) == pytest.approx(log_loss(y, p, labels=range(4)), rel=1e-12)
    pb = p[:, 0] / (p[:, 0] + p[:, 1])
    yb = (y % 2).astype(int)
    assert M.nll(pb, yb) == pytest.approx(log_loss(yb, np.stack([1 - pb, pb], 1)), rel=1e-12)
    assert M.brier(pb, yb) == pytest.approx(brier_score_loss(yb, pb), rel=1e-12)
    # Multi-class Brier sums over classes: K-class one-vs-rest sum equals it.
    onehot_sum = sum(brier_score_loss((y == k).astype(int), p[:, k]) for k in range(4))
    assert M.brier(p, y) == pytest.approx(onehot_sum, rel=1e-12)
    correct = (p.argmax(1) == y).astype(int)
    assert M.misclassification_auroc(p, y) == pytest.approx(roc_auc_score(correct, p.max(1)), rel=1e-12)
    # ties: quantised confidences
    pq = np.round(p * 4) / 4
    pq = pq / pq.sum(1, keepdims=True)
    assert M.misclassification_auroc(pq, y) == pytest.approx(
        roc_auc_score((pq.argmax(1) == y).astype(int), pq.max(1)), rel=1e-12
    )


@pytest.mark.parametrize("strategy", ["uniform"])
def test_right_closed_bins_match_sklearn_calibration_curve(strategy):
    p, y = _random_probs(n=2000, k=2, seed=1)
    pb = np.round(p[:, 1] * 16) / 16  # many values sit exactly on bin edges
    yb = (y == 1).astype(int)
    prob_true, prob_pred = calibration_curve(yb, pb, n_bins=8, strategy=strategy)
    t = M.reliability_table(pb, yb, n_bins=8, right=True)
    keep = t.count > 0
    np.testing.assert_allclose(t.accuracy[keep], prob_true, rtol=1e-12)
    np.testing.assert_allclose(t.confidence[keep], prob_pred, rtol=1e-12)


def test_left_closed_bins_follow_numpy_histogram_and_dtypes_agree():
    p, y = _random_probs(n=3000, seed=2, dtype=np.float32)
    conf = p.max(1)
    t32 = M.reliability_table(p, y, n_bins=15)
    t64 = M.reliability_table(p.astype(np.float64), y, n_bins=15)
    np.testing.assert_array_equal(t32.count, t64.count)
    counts, _ = np.histogram(conf.astype(np.float64), bins=15, range=(0, 1))
    np.testing.assert_array_equal(t64.count, counts)
    # dyadic values on the edges of 4 bins: [0, .25) [.25, .5) [.5, .75) [.75, 1]
    edge = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    for dtype in (np.float32, np.float64):
        assert M.reliability_table(edge.astype(dtype), [0, 1, 0, 1, 1], n_bins=4).count.tolist() == [1, 1, 1, 2]
        assert M.reliability_table(edge.astype(dtype), [0, 1, 0, 1, 1], n_bins=4, right=True).count.tolist() == [
            2,
            1,
            1,
            1,
        ]
    assert M.reliability_table(torch.tensor(edge, dtype=torch.float32), [0, 1, 0, 1, 1], n_bins=4).count.tolist() == [
        1,
        1,
        1,
        2,
    ]


def test_ece_oracle_norms_and_debias():
    # Positive-class, 4 bins: confidences 0.125 x2 (labels 0, 1), 0.625 x2 (1, 1), 0.875 x1 (1)
    p = np.array([0.125, 0.125, 0.625, 0.625, 0.875])
    y = np.array([0, 1, 1, 1, 1])
    # bins: [0,.25): acc .5 conf .125 n 2 | [.5,.75): acc 1 conf .625 n 2 | [.75,1]: acc 1 conf .875 n 1
    gaps = np.array([0.375, 0.375, 0.125])
    w = np.array([2, 2, 1]) / 5
    assert M.ece(p, y, n_bins=4) == pytest.approx(np.sum(w * gaps))
    assert M.ece(p, y, n_bins=4, norm="l2") == pytest.approx(math.sqrt(np.sum(w * gaps**2)))
    assert M.ece(p, y, n_bins=4, norm="max") == pytest.approx(0.375)
    # debiased: bin variance acc(1-acc)/(n-1): .25/1 for the first bin, 0 for the
    # second, the single-point bin contributes 0.
    deb = w[0] * (0.375**2 - 0.25) + w[1] * (0.375**2 - 0.0)
    assert M.ece(p, y, n_bins=4, norm="l2", debias=True) == pytest.approx(math.sqrt(max(deb, 0)))
    # top-label on (N, K): confidences .75 (correct), .75 (wrong) in one bin: |0.5 - 0.75|
    assert M.ece([[0.75, 0.25], [0.75, 0.25]], [0, 1], n_bins=4) == 0.25


def test_mass_binning_uses_array_split():
    p = np.array([0.9, 0.1, 0.3, 0.7, 0.5])
    y = np.array([1, 0, 1, 1, 0])
    t = M.reliability_table(p, y, n_bins=2, binning="mass")
    # sorted: .1 .3 .5 | .7 .9  (array_split gives 3 + 2)
    assert t.count.tolist() == [3, 2]
    assert t.lower.tolist() == [0.1, 0.7] and t.upper.tolist() == [0.5, 0.9]
    assert t.accuracy.tolist() == pytest.approx([1 / 3, 1.0])
    assert t.confidence.tolist() == pytest.approx([0.3, 0.8])
    assert M.ece(p, y, n_bins=2, binning="mass") == pytest.approx(0.6 * abs(1 / 3 - 0.3) + 0.4 * 0.2)
    # more bins than points: empty bins weigh zero
    t = M.reliability_table(p, y, n_bins=7, binning="mass")
    assert t.count.sum() == 5 and (t.count == 0).sum() == 2


def test_classwise_ece_oracle():
    p = np.array([[0.75, 0.25], [0.25, 0.75]])
    y = np.array([0, 0])
    # class 0: confidences .75 (y=1), .25 (y=1) -> bins gaps .25, .75 -> 0.5
    # class 1: .25 (y=0), .75 (y=0) -> gaps .25, .75 -> 0.5
    assert M.classwise_ece(p, y, n_bins=4) == pytest.approx(0.5)
    assert M.classwise_ece(p[:, 1], y, n_bins=4) == pytest.approx(0.5)


def test_risk_coverage_and_aurc_with_ties():
    p = np.array([[0.75, 0.25], [0.25, 0.75], [0.625, 0.375], [0.5, 0.5]])
    y = np.array([0, 0, 0, 1])
    # confidences .75 (ok), .75 (wrong), .625 (ok), .5 (wrong; predicts 0)
    cov, risk = M.risk_coverage_curve(p, y)
    assert cov.tolist() == [0.5, 0.75, 1.0]
    assert risk.tolist() == pytest.approx([0.5, 1 / 3, 0.5])
    # per-example risks: tie of two at .5 each, then 1/3, then 1/2
    assert M.aurc(p, y) == pytest.approx((0.5 + 0.5 + 1 / 3 + 0.5) / 4)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M.ece([[1.25, -0.25]], [0]), r"probabilities in \[0, 1\]. Got -0.25"),
        (lambda: M.nll([[0.5, 0.6]], [0]), r"rows summing to 1 .* Got a row summing to 1.1"),
        (lambda: M.brier([[0.5, np.nan]], [0]), r"must be finite. Got nan"),
        (lambda: M.accuracy([[0.5, 0.5]], [2]), r"labels in \[0, 1\]. Got 2"),
        (lambda: M.accuracy([0.5, 0.5], [0.5, 1]), r"integer class labels. Got 0.5"),
        (lambda: M.accuracy([0.5, 0.5], [0, 1, 1]), r"shape \(2,\), one label per example. Got shape \(3,\)"),
        (lambda: M.ece([0.5], [1], n_bins=0), r"'n_bins' parameter of reliability_table must be an int >= 1. Got 0"),
        (lambda: M.ece([0.5], [1], norm="l3"), r"'norm' parameter of ece must be one of 'l1', 'l2', 'max'. Got 'l3'"),
        (lambda: M.ece([0.5], [1], debias=True), r"'debias' parameter of ece requires norm='l2'. Got norm='l1'"),
        (lambda: M.ece([0.5], [1], binning="quantile"), r"'binning' parameter .* one of 'width', 'mass'"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_no_silent_softmax_of_logits():
    logits = torch.tensor([[2.0, -1.0], [0.3, 0.1]])
    with pytest.raises(ValueError, match="apply a softmax to logits first|probabilities in"):
        M.nll(logits, [0, 1])


def test_binning_does_not_depend_on_the_dtype():
    # The review's case: linspace edges put 0.6 into bin 2 of 5 in float64 (edge 0.6000000000000001) and bin 3 in
    # float32; ECE was 0.45 vs 0.15. floor(5 * 0.6) = 3: bin [0.6, 0.8) holds 0.6 and 0.7, accuracy 1/2.
    for dtype in (np.float32, np.float64):
        p = np.array([0.6, 0.7], dtype=dtype)
        assert M.ece(p, [0, 1], n_bins=5) == pytest.approx(abs(0.5 - 0.65))
        assert M.reliability_table(p, [0, 1], n_bins=5).count.tolist() == [0, 0, 0, 2, 0]
        # right-closed: 0.6 in (0.4, 0.6], 0.7 in (0.6, 0.8]
        assert M.reliability_table(p, [0, 1], n_bins=5, right=True).count.tolist() == [0, 0, 1, 1, 0]
    rng = np.random.default_rng(3)
    p = rng.integers(0, 1000, 500) / 1000  # many values on or next to edges of 10, 15 and 20 bins
    y = rng.integers(0, 2, 500)
    for n_bins in (10, 15, 20):
        for right in (False, True):
            a = M.reliability_table(p, y, n_bins=n_bins, right=right).count
            b = M.reliability_table(p.astype(np.float32), y, n_bins=n_bins, right=right).count
            assert a.tolist() == b.tolist()


def test_classwise_ece_passes_its_binning_options_through():
    # Mutation testing found the defaults and the binning options of classwise_ece unpinned. Two examples,
    # y = [2, 0]; one-vs-rest per class (confidence q, outcome o):
    #   class 2: q = (0.6, 0.64), o = (1, 0): one bin -> |1 - 1.24| / 2 = 0.12, two bins -> (0.4 + 0.64) / 2 = 0.52
    #   class 0: q = (0.3, 0.26), o = (0, 1): one bin -> |1 - 0.56| / 2 = 0.22, two bins -> (0.3 + 0.74) / 2 = 0.52
    #   class 1: q = (0.1, 0.1), o = (0, 0): 0.1 always.
    # 15 bins, left-closed: class 2 shares bin 9, class 0 splits (4 and 3); right-closed: 0.6 is on an edge, so
    # class 2 splits too (8, 9); 16 bins: class 2 splits (9, 10), class 0 shares bin 4;
    # equal mass with 15 bins: every point alone.
    p = np.array([[0.3, 0.1, 0.6], [0.26, 0.1, 0.64]])
    y = [2, 0]
    assert M.classwise_ece(p, y) == pytest.approx((0.12 + 0.52 + 0.1) / 3)
    assert M.classwise_ece(p, y, right=True) == pytest.approx((0.52 + 0.52 + 0.1) / 3)
    assert M.classwise_ece(p, y, n_bins=16) == pytest.approx((0.52 + 0.22 + 0.1) / 3)
    assert M.classwise_ece(p, y, binning="mass") == pytest.approx((0.52 + 0.52 + 0.1) / 3)


def test_classwise_ece_of_a_binary_problem_uses_both_classes():
    # P(y = 1) = (0.25, 0.75), y = (1, 0), 4 bins: class 1 has q = (0.25, 0.75), o = (1, 0) in two bins, ECE
    # (0.75 + 0.75) / 2; class 0 (q = 1 - p) the same: 0.75. Building class 0 from anything but 1 - p changes it.
    assert M.classwise_ece(np.array([0.25, 0.75]), [1, 0], n_bins=4) == pytest.approx(0.75)
    assert M.classwise_ece(np.array([0.25, 0.75]), [0, 1], n_bins=4) == pytest.approx(0.25)
