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


def test_ood_histogram_bars_are_densities_on_shared_bins():
    s_in, s_out = np.array([0.0, 0.0, 0.25, 0.75]), np.array([0.75, 1.0])
    out = plots.ood_histogram(s_in, s_out, bins=4)
    np.testing.assert_allclose(out["edges"], [0, 0.25, 0.5, 0.75, 1.0])
    # densities: in has 2, 1, 0, 1 of 4 in bins of width .25 -> 2, 1, 0, 1; out has 0, 0, 0, 2 of 2 -> 0, 0, 0, 4
    np.testing.assert_allclose([b.get_height() for b in out["in"]], [2.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose([b.get_height() for b in out["out"]], [0.0, 0.0, 0.0, 4.0])


def test_ood_roc_draws_one_curve_per_score_with_its_auroc():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50), rng.normal(2, 1, 30)
    out = plots.ood_roc({"good": (a, b), "bad": (b, a)})
    assert set(out["lines"]) == {"good", "bad"}
    auroc = M.ood_detection(a, b)["auroc"]
    assert f"(AUROC {auroc:.3f})" in out["lines"]["good"].get_label()
    x, y = out["lines"]["good"].get_data()
    assert x[0] == 0 and y[-1] == 1 and np.all(np.diff(x) >= 0)


def test_shift_curves_one_panel_per_metric_one_line_per_method():
    results = {
        "mc": {
            0: {"accuracy": 0.99, "nll": 0.05},
            90: {"accuracy": 0.2, "nll": 3.0},
            45: {"accuracy": 0.6, "nll": 1.0},
        },
        "ensemble": {0: {"accuracy": 0.98, "nll": 0.06}, 45: {"accuracy": 0.7, "nll": 0.9}},
    }
    out = plots.shift_curves(results, metric_names=("accuracy", "nll"), xlabel="rotation (degrees)")
    assert len(out["axes"]) == 2 and out["axes"][1].get_title() == "nll"
    x, y = out["lines"]["accuracy"]["mc"].get_data()
    assert list(x) == [0, 45, 90] and list(y) == [0.99, 0.6, 0.2]  # sorted by intensity
    assert list(out["lines"]["nll"]["ensemble"].get_data()[1]) == [0.06, 0.9]
    with pytest.raises(ValueError, match=r"'axes' parameter of shift_curves must hold 2 axes"):
        plots.shift_curves(results, metric_names=("accuracy", "nll"), axes=[out["axes"][0]])
