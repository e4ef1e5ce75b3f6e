"""OOD scores and detection metrics: hand cases, scikit-learn, directions and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from bayesdrop.metrics import deterministic_scores, mc_scores, ood_detection
from bayesdrop.metrics.ood import DETERMINISTIC_SCORES, MC_SCORES


def test_perfect_separation_and_its_mirror():
    out = ood_detection([0.1, 0.2, 0.3], [0.7, 0.8])
    assert out == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0}
    flipped = ood_detection([0.7, 0.8], [0.1, 0.2, 0.3])  # OOD scores lower: the worst detector
    assert flipped["auroc"] == 0.0 and flipped["fpr95"] == 1.0


def test_ties_by_hand():
    # in = (.5, .5, .1), out = (.5, .9): of the 6 (out, in) pairs 3 are won, 2 tied (half each), 1 ... :
    # .5 vs {.5, .5, .1} -> 0.5 + 0.5 + 1, .9 vs all -> 3: AUROC = 5 / 6.
    out = ood_detection([0.5, 0.5, 0.1], [0.5, 0.9])
    assert out["auroc"] == pytest.approx(5 / 6)
    # accepting 95% of the in-distribution needs the threshold at .5, which accepts the OOD .5 too: FPR 1/2
    assert out["fpr95"] == 0.5
    # AUPR-out by hand (OOD positive, descending scores .9 | .5 .5 .5 | .1): precision 1 at recall 1/2, then the
    # tied block of three holds one OOD: precision 2/4 at recall 1 -> AP = 1/2 * 1 + 1/2 * 1/2 = 0.75
    assert out["aupr_out"] == pytest.approx(0.75)


def test_against_scikit_learn_on_random_scores():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(0, 1, 500), rng.normal(1, 1, 300).round(1)  # rounding makes ties
    out = ood_detection(s_in, s_out)
    y = np.r_[np.zeros(500), np.ones(300)]
    s = np.r_[s_in, s_out]
    assert out["auroc"] == pytest.approx(roc_auc_score(y, s))
    assert out["aupr_out"] == pytest.approx(average_precision_score(y, s))
    assert out["aupr_in"] == pytest.approx(average_precision_score(1 - y, -s))
    # FPR95 by brute force: the smallest threshold t with at least 95% of in-scores <= t, OOD accepted at it
    t = np.sort(s_in)[int(np.ceil(0.95 * 500)) - 1]
    assert out["fpr95"] == pytest.approx(np.mean(s_out <= t))
    fpr, tpr, _ = roc_curve(1 - y, -s)
    assert out["fpr95"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


def test_scores_point_the_same_way():
    # a confident example and an uncertain one: every score is higher on the uncertain one
    confident = [[[0.98, 0.01, 0.01]]] * 4
    unsure = [[[0.4, 0.3, 0.3]], [[0.2, 0.5, 0.3]], [[0.3, 0.3, 0.4]], [[0.5, 0.2, 0.3]]]
    samples = np.concatenate([np.array(confident), np.array(unsure)], axis=1)  # (T=4, N=2, K=3)
    scores = mc_scores(samples)
    assert list(scores) == list(MC_SCORES)
    for name, v in scores.items():
        assert v[1] > v[0], name
    det = deterministic_scores(np.array([[6.0, 0.0, 0.0], [0.3, 0.2, 0.1]]))
    assert list(det) == list(DETERMINISTIC_SCORES)
    for name, v in det.items():
        assert v[1] > v[0], name
    np.testing.assert_allclose(det["energy"], -np.log(np.exp([[6.0, 0, 0], [0.3, 0.2, 0.1]]).sum(1)))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([0.1, np.nan], [0.2]), ValueError, r"'scores_in' parameter must be finite"),
        (([0.1], [np.inf]), ValueError, r"'scores_out' parameter must be finite"),
        (([], [0.2]), ValueError, r"'scores_in' parameter must hold at least one score"),
        (([0.1], []), ValueError, r"'scores_out' parameter must hold at least one score"),
        (([[0.1, 0.2]], [0.2]), ValueError, r"'scores_in' parameter must be one score per example"),
    ],
)
def test_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        ood_detection(*args)


def test_bad_logits_and_probabilities():
    with pytest.raises(ValueError, match=r"'logits' parameter must be \(N, K\) logits"):
        deterministic_scores(np.zeros(3))
    with pytest.raises(ValueError, match=r"'prob_samples' parameter must hold probabilities"):
        mc_scores(np.full((2, 3, 2), 1.5))
