from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop import metrics as M
from bayesdrop import plots


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_reliability_bars_are_bin_accuracies_and_empty_bins_absent():
    p = np.array([0.125, 0.125, 0.625, 0.625, 0.875])
    y = np.array([0, 1, 1, 1, 1])
    out = plots.reliability_diagram(p, y, n_bins=4, overlay=np.array([0.375, 0.125, 0.625, 0.875, 0.875]))
    heights = [b.get_height() for b in out["bars"]]
    assert heights == [0.5, 1.0, 1.0]  # bin [.25, .5) is empty and not drawn
    assert [b.get_x() for b in out["bars"]] == [0.0, 0.5, 0.75]
    gaps = [b.get_height() for b in out["gaps"]]
    np.testing.assert_allclose(gaps, [0.125 - 0.5, 0.625 - 1.0, 0.875 - 1.0])
    assert [b.get_height() for b in out["hist_bars"]] == [2, 2, 1]
    t2 = M.reliability_table([0.375, 0.125, 0.625, 0.875, 0.875], y, n_bins=4)
    np.testing.assert_allclose(out["overlay"].get_ydata(), t2.accuracy[t2.count > 0])
    labels = [t.get_text() for t in out["ax"].get_legend().get_texts()]
    assert any(f"ECE {M.ece(p, y, n_bins=4):.3f}" in s for s in labels)


def test_regression_calibration_and_other_plots():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=200), np.full(200, 1.0)
    y = mu + rng.normal(size=200)
    out = plots.regression_calibration(mu, s, y)
    e, o = M.regression_calibration_curve(mu, s, y)
    np.testing.assert_array_equal(out["line"].get_ydata(), o)
    assert out["miscalibration_area"] == pytest.approx(M.miscalibration_area(mu, s, y))
    probs = rng.dirichlet([1, 1, 1], size=100)
    labels = rng.integers(0, 3, size=100)
    rc = plots.risk_coverage(probs, labels)
    cov, risk = M.risk_coverage_curve(probs, labels)
    np.testing.assert_array_equal(rc["line"].get_ydata(), risk)
    ue = plots.uncertainty_vs_error(np.arange(100.0), np.arange(100.0) * 2, n_bins=4)
    np.testing.assert_allclose(ue["bin_error"], [24.0, 74.0, 124.0, 174.0])  # 2 x mean of each quarter
    gh = plots.gap_histogram(np.array([0.0, 0.1, 0.1, 0.3]), bins=3)
    assert gh["counts"].sum() == 4


def test_convergence_plot_band_and_bad_metric():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    ev = bayesdrop.evaluate(net, torch.randn(30, 2), torch.randint(0, 2, (30,)), num_samples=10, seed=0)
    out = plots.convergence(ev, "nll")
    np.testing.assert_allclose(out["line"].get_ydata(), ev.convergence["nll"]["value"])
    assert out["det_line"].get_ydata()[0] == pytest.approx(ev.deterministic["nll"])
    with pytest.raises(ValueError, match="'metric' parameter of convergence must be one of 'accuracy'"):
        plots.convergence(ev, "auc")


def test_given_ax_is_used():
    fig, ax = plt.subplots()
    out = plots.reliability_diagram([0.25, 0.75], [0, 1], ax=ax, hist=False)
    assert out["ax"] is ax and "hist_ax" not in out
