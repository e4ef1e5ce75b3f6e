"""diagnostics on hand-made networks whose answers are known."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop
from bayesdrop.diagnostics import activation_statistics, coadaptation, tile_features, unit_correlations


def _copies_net(units: int = 5) -> nn.Sequential:
    """Every hidden unit is the same function of the input: units that are copies of each other."""
    lin = nn.Linear(3, units)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([1.0, -2.0, 0.5]).expand(units, 3))
        lin.bias.zero_()
    return nn.Sequential(lin, nn.Tanh(), nn.Linear(units, 1))


def test_units_that_are_copies_have_coadaptation_one():
    x = torch.randn(500, 3)
    assert coadaptation(_copies_net(), x, "1") == pytest.approx(1.0, abs=1e-12)
    corr = unit_correlations(_copies_net(), x, "1")
    np.testing.assert_allclose(corr, np.ones((5, 5)), atol=1e-10)


def test_independent_units_have_coadaptation_near_zero():
    # each unit reads its own independent input: the correlations are sample noise of SE about 1/sqrt(N)
    n = 20_000
    net = nn.Sequential(nn.Identity())
    x = torch.randn(n, 6)
    c = coadaptation(net, x, "0")
    # mean |r| of independent pairs is sqrt(2 / (pi N)); 5x that bound cannot be reached by chance
    assert c < 5 * np.sqrt(2 / (np.pi * n))
    # and a layer mixing them (unit j = x_0 + 0.5 x_j) shows the shared part: r = 1 / (1 + 0.25) = 0.8
    mix = nn.Linear(6, 6, bias=False)
    with torch.no_grad():
        mix.weight.copy_(torch.eye(6) * 0.5)
        mix.weight[:, 0] += 1.0
        mix.weight[0, 0] = 1.5
    r = unit_correlations(nn.Sequential(mix), x, "0")
    assert r[1, 2] == pytest.approx(0.8, abs=5 * 0.36 / np.sqrt(n) + 0.01)


def test_relu_fed_negative_inputs_has_sparsity_one():
    lin = nn.Linear(4, 8)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(8, 4))  # positive weights
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU())
    stats = activation_statistics(net, -torch.rand(300, 4))
    s = stats["1"]
    assert s.near_zero == 1.0 and np.all(s.unit_near_zero == 1.0) and np.all(s.mean == 0.0)
    assert s.num_units == 8 and s.num_observations == 300
    # positive inputs: no zeros, and the mean activation is the data mean of the pre-activation
    x = torch.rand(300, 4)
    s = activation_statistics(net, x)["1"]
    assert s.near_zero == 0.0
    np.testing.assert_allclose(s.mean, lin(x).mean(0).detach().double().numpy(), rtol=1e-5)
    assert s.counts.sum() == 300 * 8 and len(s.edges) == 51 and s.mean_counts.sum() == 8


def test_half_the_units_dead_and_streamed_batches_give_the_same_answer():
    lin = nn.Linear(2, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.rand(101, 2) + 0.1
    whole = activation_statistics(net, x, hist_range=(0.0, 2.0))["1"]
    np.testing.assert_array_equal(whole.unit_near_zero, [0.0, 0.0, 1.0, 1.0])
    assert whole.near_zero == 0.5
    loader = DataLoader(TensorDataset(x, torch.zeros(101)), batch_size=16)  # (x, y) batches, uneven last one
    streamed = activation_statistics(net, loader, hist_range=(0.0, 2.0), batch_size=7)["1"]
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-12)
    np.testing.assert_array_equal(streamed.counts, whole.counts)
    # conv outputs: channels are the units, each pixel one observation
    conv = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    with torch.no_grad():
        conv[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv[0].bias.zero_()
    c = activation_statistics(conv, torch.rand(3, 1, 4, 4) + 0.1)["1"]
    assert c.num_units == 2 and c.num_observations == 48
    np.testing.assert_array_equal(c.unit_near_zero, [0.0, 1.0])


def test_train_mode_measures_the_noisy_network_and_modes_are_restored():
    net = nn.Sequential(nn.Linear(3, 200), nn.ReLU(), bayesdrop.nn.Dropout(0.5), nn.Identity())
    with torch.no_grad():
        net[0].weight.fill_(0.1)
        net[0].bias.fill_(1.0)
    net.train()
    x = torch.rand(200, 3)
    det = activation_statistics(net, x, ["3"])["3"]
    noisy = activation_statistics(net, x, ["3"], train_mode=True)["3"]
    assert det.near_zero == 0.0
    n = 200 * 200
    assert abs(noisy.near_zero - 0.5) < 4 * np.sqrt(0.25 / n)  # half the units dropped
    assert all(m.training for m in net.modules())  # the caller's modes are back


def test_feature_grid_layout_and_scaling():
    w = torch.stack([torch.arange(4.0), -torch.arange(4.0), torch.ones(4)])
    g = tile_features(w, (2, 2), ncols=2, pad=1)
    assert g.shape == (5, 5)
    np.testing.assert_allclose(g[:2, :2], [[0, 1 / 3], [2 / 3, 1]])  # scaled to [0, 1]
    np.testing.assert_allclose(g[:2, 3:], [[1, 2 / 3], [1 / 3, 0]])
    np.testing.assert_allclose(g[3:, :2], 0.0)  # a constant feature maps to 0
    assert np.isnan(g[2]).all() and np.isnan(g[3:, 3:]).all()  # padding and the empty slot


def test_plots_draw_the_statistics():
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
    a = activation_statistics(net, torch.randn(100, 4))["1"]
    b = activation_statistics(net, torch.randn(100, 4) - 1)["1"]
    out = bayesdrop.plots.activation_histograms({"no dropout": a, "dropout": b})
    assert set(out["bars"]) == {"no dropout", "dropout"}
    labels = [t.get_text() for t in out["ax"].get_legend().get_texts()]
    assert labels[0] == f"no dropout (sparsity {a.near_zero:.2f})"
    out = bayesdrop.plots.activation_histograms({"x": a}, which="activations")
    assert out["ax"].get_yscale() == "log"
    grid = bayesdrop.plots.feature_grid(net[0].weight, (2, 2))
    assert grid["grid"].shape == (4 * 3 - 1, 4 * 3 - 1)


def test_log_alpha_histogram_counts_every_weight():
    model = nn.Sequential(bayesdrop.nn.VariationalLinear(4, 3), nn.ReLU(), bayesdrop.nn.VariationalLinear(3, 2))
    with torch.no_grad():
        model[0].log_sigma2.copy_(torch.log(model[0].weight ** 2) + 5.0)  # every weight of layer 0 above 3: pruned
    out = bayesdrop.plots.log_alpha_histogram(model)
    assert {k: v.sum() for k, v in out["counts"].items()} == {"0": 12, "2": 6}
    labels = [t.get_text() for t in out["ax"].get_legend().get_texts()]
    assert labels[0] == "0 (100.0% pruned)" and labels[1] == "2 (0.0% pruned)"
    with pytest.raises(ValueError, match="must contain variational layers"):
        bayesdrop.plots.log_alpha_histogram(nn.Linear(2, 2))


def test_bad_input_names_the_parameter():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match=r"'layers' parameter of activation_statistics must name modules .*'9'"):
        activation_statistics(net, torch.randn(4, 2), ["9"])
    with pytest.raises(ValueError, match=r"'layers' parameter of activation_statistics is needed"):
        activation_statistics(nn.Sequential(nn.Linear(2, 2)), torch.randn(4, 2))
    with pytest.raises(TypeError, match=r"'data' parameter must be a tensor"):
        activation_statistics(net, {"x": torch.randn(4, 2)})
    with pytest.raises(ValueError, match=r"'hist_range' parameter of activation_statistics"):
        activation_statistics(net, torch.randn(4, 2), hist_range=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"'weight' parameter of tile_features must have shape \(units, 4\)"):
        tile_features(torch.randn(3, 5), (2, 2))
    with pytest.raises(ValueError, match="fewer than two units that vary"):
        coadaptation(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), -torch.rand(10, 2) * 0, "1")


def test_the_old_name_of_tile_features_still_works_with_a_deprecation_warning():
    import bayesdrop.diagnostics as diagnostics

    with pytest.warns(DeprecationWarning, match="renamed tile_features"):
        assert diagnostics.feature_grid is tile_features
