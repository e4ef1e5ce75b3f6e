from __future__ import annotations

import math

import numpy as np
import pytest

from bayesdrop import metrics as M


def test_ensemble_gap_oracle():
    p = np.array([[0.5, 0.5], [0.75, 0.25]])
    q = np.array([[0.75, 0.25], [0.75, 0.25]])
    g = M.ensemble_gap(p, q)
    kl_pq = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_qp = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    m = np.array([0.625, 0.375])
    js = 0.5 * sum(a * math.log(a / b) for a, b in zip(p[0], m)) + 0.5 * sum(
        a * math.log(a / b) for a, b in zip(q[0], m)
    )
    assert g["kl_mc_det"] == pytest.approx(kl_pq / 2)
    assert g["kl_det_mc"] == pytest.approx(kl_qp / 2)
    assert g["total_variation"] == pytest.approx(0.25 / 2)
    assert g["js"] == pytest.approx(js / 2)
    assert g["flip_rate"] == 0.0  # [.5,.5] argmax 0, same as [.75,.25]
    assert M.ensemble_gap([[0.25, 0.75]], [[0.75, 0.25]])["flip_rate"] == 1.0


def test_ensemble_gap_with_labels_gives_metric_differences():
    rng = np.random.default_rng(0)
    a = rng.dirichlet([1, 1, 1], size=40)
    b = rng.dirichlet([1, 1, 1], size=40)
    y = rng.integers(0, 3, size=40)
    g = M.ensemble_gap(a, b, y)
    assert g["delta_accuracy"] == pytest.approx(M.accuracy(a, y) - M.accuracy(b, y))
    assert g["delta_nll"] == pytest.approx(M.nll(a, y) - M.nll(b, y))
    assert g["delta_brier"] == pytest.approx(M.brier(a, y) - M.brier(b, y))
    assert g["delta_ece"] == pytest.approx(M.ece(a, y) - M.ece(b, y))
    # binary 1-D form agrees with the 2-column form
    pb, qb = a[:, 0] / (a[:, 0] + a[:, 1]), b[:, 0] / (b[:, 0] + b[:, 1])
    g1 = M.ensemble_gap(pb, qb)
    g2 = M.ensemble_gap(np.stack([1 - pb, pb], 1), np.stack([1 - qb, qb], 1))
    for k in ("kl_mc_det", "kl_det_mc", "total_variation", "js", "flip_rate"):
        assert g1[k] == pytest.approx(g2[k])


def test_regression_gap_oracle():
    g = M.regression_gap([1.0, 3.0], [2.0, 1.0], [0.0, 3.0], det_std=[1.0, 1.0], y=[0.0, 3.0])
    assert g["mean_abs_diff"] == 0.5 and g["rms_diff"] == pytest.approx(math.sqrt(0.5))
    assert g["standardised_mean_diff"] == pytest.approx(0.25)
    # KL(N(1, 4) || N(0, 1)) = log(1/2) + (4 + 1)/2 - 1/2 ; second term 0
    assert g["kl_mc_det"] == pytest.approx((math.log(0.5) + 2.5 - 0.5) / 2)
    assert g["delta_rmse"] == pytest.approx(math.sqrt(0.5))
    assert g["delta_nll"] == pytest.approx(
        M.gaussian_nll([1.0, 3.0], [2.0, 1.0], [0.0, 3.0]) - M.gaussian_nll([0.0, 3.0], [1.0, 1.0], [0.0, 3.0])
    )
