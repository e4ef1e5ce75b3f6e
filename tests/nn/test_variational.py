from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import VariationalConv, VariationalConv2d, VariationalLinear
from bayesdrop.nn.functional import kl_log_uniform
from tests.conftest import z_value


def _set_log_alpha(layer, values):
    with torch.no_grad():
        if layer.log_sigma2 is not None:
            layer.log_sigma2.copy_(values + torch.log(layer.weight**2 + 1e-16))
        else:
            layer.log_alpha_param.copy_(values)


@pytest.mark.parametrize("mode", ["weight", "input", "layer"])
def test_log_alpha_shapes_and_kl(mode):
    layer = VariationalLinear(5, 3, alpha=mode, init_log_alpha=-2.0)
    shape = {"weight": (3, 5), "input": (5,), "layer": ()}[mode]
    assert layer.log_alpha.shape == shape
    assert torch.allclose(layer.log_alpha, torch.full(shape, -2.0), atol=1e-5)
    assert torch.allclose(layer.kl(), 15 * kl_log_uniform(torch.tensor(-2.0)), rtol=1e-5)


@pytest.mark.parametrize("mode", ["weight", "input", "layer"])
def test_train_moments_match_the_variational_posterior(mode):
    # Each output unit j has mean x theta_j + b_j and variance
    # sum_i x_i^2 alpha_i theta_ji^2 in every mode (marginally).
    torch.manual_seed(0)
    layer = VariationalLinear(4, 3, alpha=mode).double()
    la = {"weight": torch.randn(3, 4), "input": torch.randn(4), "layer": torch.tensor(0.3)}[mode].double()
    _set_log_alpha(layer, la)
    x = torch.randn(1, 4, dtype=torch.float64)
    alpha = layer.weight_log_alpha().exp()
    with torch.no_grad():
        mean = (x @ layer.weight.T + layer.bias)[0]
        var = ((x * x) @ (alpha * layer.weight**2).T)[0]
        n = 200_000
        y = layer.train()(x.expand(n, -1))
    z = z_value(6)
    assert torch.all((y.mean(0) - mean).abs() <= z * (var / n).sqrt())
    assert torch.all((y.var(0) - var).abs() <= z * var * math.sqrt(2 / (n - 1)))


def test_eval_uses_mean_weights_with_pruned_weights_zeroed():
    layer = VariationalLinear(4, 2).eval()
    la = torch.tensor([[-5.0, 4.0, 0.0, 3.5], [2.9, -1.0, 6.0, -8.0]])
    _set_log_alpha(layer, la)
    x = torch.randn(7, 4)
    keep = (layer.log_alpha <= 3.0).float()
    assert keep.sum() == 5
    torch.testing.assert_close(layer(x), x @ (layer.weight * keep).T + layer.bias)
    assert bayesdrop.sparsity(layer) == pytest.approx(3 / 8)
    assert bayesdrop.sparsity(layer, threshold=5.0) == pytest.approx(1 / 8)


def test_nan_in_parameters_is_not_hidden():
    layer = VariationalLinear(3, 2).eval()
    with torch.no_grad():
        layer.log_sigma2[0, 0] = float("nan")
    assert torch.isnan(layer.log_alpha[0, 0])
    assert torch.isnan(layer.kl())
    assert torch.isnan(layer(torch.ones(1, 3))[0, 0])


def test_additive_reparameterization_keeps_gradients_bounded_at_large_alpha():
    torch.manual_seed(0)
    layer = VariationalLinear(20, 10, init_log_alpha=8.0).train()
    loss = layer(torch.randn(64, 20)).pow(2).mean() + layer.kl() / 64
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(layer.log_sigma2.grad).all()
    assert float(layer.weight.grad.abs().max()) < 10.0


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("mode", ["weight", "input", "layer"])
def test_conv_dims_and_modes(dims, mode):
    layer = VariationalConv(2, 4, 3, padding=1, dims=dims, alpha=mode)
    ref = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](2, 4, 3, padding=1)
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(layer.bias)
    x = torch.randn(2, 2, *([5] * dims))
    torch.testing.assert_close(layer.eval()(x), ref(x))  # init log alpha -4 < 3: nothing pruned
    assert layer.train()(x).shape == ref(x).shape
    assert layer.weight_log_alpha().shape == layer.weight.shape
    assert VariationalConv2d is VariationalConv


def test_conv_moments_local_reparameterization():
    torch.manual_seed(1)
    layer = VariationalConv2d(2, 3, 3, alpha="weight").double().train()
    _set_log_alpha(layer, torch.randn(3, 2, 3, 3, dtype=torch.float64))
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        mean = torch.nn.functional.conv2d(x, layer.weight, layer.bias)[0]
        var = torch.nn.functional.conv2d(x * x, layer.weight_log_alpha().exp() * layer.weight**2)[0]
        n = 100_000
        y = layer(x.expand(n, -1, -1, -1))
    z = z_value(2 * var.numel())
    assert torch.all((y.mean(0) - mean).abs() <= z * (var / n).sqrt())
    assert torch.all((y.var(0) - var).abs() <= z * var * math.sqrt(2 / (n - 1)))


def test_grouped_conv_input_alpha_maps_channels():
    layer = VariationalConv(4, 6, 1, groups=2, alpha="input")
    _set_log_alpha(layer, torch.tensor([-1.0, -2.0, -3.0, -4.0]))
    wla = layer.weight_log_alpha()[:, :, 0, 0]
    # output channels 0-2 see inputs 0-1, outputs 3-5 see inputs 2-3
    assert torch.equal(wla[0], torch.tensor([-1.0, -2.0])) and torch.equal(wla[5], torch.tensor([-3.0, -4.0]))


def test_kl_divergence_sums_layers_and_zero_without_any():
    model = nn.Sequential(VariationalLinear(3, 4), nn.ReLU(), VariationalConv(1, 1, 1, dims=1))
    assert torch.allclose(bayesdrop.kl_divergence(model), model[0].kl() + model[2].kl())
    assert float(bayesdrop.kl_divergence(nn.Linear(2, 2))) == 0.0
    with pytest.raises(ValueError, match="needs a model with variational layers"):
        bayesdrop.sparsity(nn.Linear(2, 2))


def test_to_variational_keeps_predictions_and_moments():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).double()
    vnet = bayesdrop.to_variational(net)
    assert isinstance(vnet[3], VariationalLinear) and isinstance(vnet[2], nn.Identity)
    assert isinstance(net[3], nn.Linear)  # the input is left intact
    assert torch.allclose(vnet[3].log_alpha, torch.zeros(3, 16, dtype=torch.float64), atol=1e-6)  # log(0.5/0.5)
    x = torch.randn(1, 5, dtype=torch.float64)
    net.eval()
    vnet.eval()
    torch.testing.assert_close(vnet(x), net(x))
    # Pre-activation variance after Bernoulli dropout: sum_i h_i^2 theta_ji^2 p/(1-p);
    # the converted layer has the same variance (Gaussian moment matching).
    n = 200_000
    s_v = bayesdrop.sample(vnet, x, n, seed=0)[:, 0]
    s_d = bayesdrop.sample(net, x, n, seed=0)[:, 0]
    with torch.no_grad():
        h = net[1](net[0](x))
        mean = net[3](h)[0]
        var = ((h * h) @ (net[3].weight ** 2).T)[0]
    z = z_value(12)
    for s in (s_v, s_d):
        assert torch.all((s.mean(0) - mean).abs() <= z * (var / n).sqrt())
    # Bernoulli outputs are not Gaussian: SE of the variance from the 4th moment.
    for s in (s_v, s_d):
        c = s - s.mean(0)
        se = ((c**4).mean(0) - var**2).clamp_min(0).sqrt() / math.sqrt(n)
        assert torch.all((s.var(0) - var).abs() <= z * se + 1e-12)


def test_to_variational_conv_and_errors():
    net = nn.Sequential(nn.Sequential(nn.Dropout(0.2), nn.Conv2d(2, 3, 3)))
    v = bayesdrop.to_variational(net, alpha="input")
    assert isinstance(v[0][1], VariationalConv) and v[0][1].log_alpha.shape == (2,)
    assert torch.allclose(v[0][1].log_alpha, torch.full((2,), math.log(0.25)))
    with pytest.raises(ValueError, match="found no dropout layer"):
        bayesdrop.to_variational(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(
        ValueError, match="'alpha' parameter of to_variational must be one of 'weight', 'input', 'layer'"
    ):
        bayesdrop.to_variational(net, alpha="unit")
    # Channel-wise dropout has no per-element variational equivalent: refused, not converted element-wise.
    for drop in (nn.Dropout2d(0.2), bayesdrop.nn.Dropout(0.2, shared_dims=(2, 3))):
        with pytest.raises(ValueError, match=r"cannot convert '0' .* drops whole channels"):
            bayesdrop.to_variational(nn.Sequential(drop, nn.Conv2d(2, 3, 3)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"alpha": "neuron"},
            ValueError,
            r"'alpha' parameter of VariationalLinear must be one of 'weight', 'input', 'layer'. Got 'neuron'",
        ),
        (
            {"init_log_alpha": 9.0},
            ValueError,
            r"'init_log_alpha' parameter of VariationalLinear must be a float in \[-8, 8\]. Got 9.0",
        ),
        ({"threshold": "3"}, TypeError, r"'threshold' parameter"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        VariationalLinear(3, 2, **kwargs)
    with pytest.raises(ValueError, match=r"'in_features' parameter of VariationalLinear must be an int >= 1. Got 0"):
        VariationalLinear(0, 2)
    with pytest.raises(ValueError, match=r"'dims' parameter of VariationalConv must be one of 1, 2, 3. Got 4"):
        VariationalConv(1, 1, 1, dims=4)


def test_input_alpha_acts_on_features_for_any_leading_shape():
    # (N, T, F) with T == F: output[..., t, j] = xi_{t j} with variance alpha_j (per feature), whatever t.
    # The old bug applied alpha per time step (variance alpha_t). The sample variance of n Gaussian draws has
    # SE sqrt(2 / (n - 1)) alpha; 9 checks.
    alpha = torch.tensor([1.0, 0.01, 0.25])
    layer = VariationalLinear(3, 3, bias=False, alpha="input")
    with torch.no_grad():
        layer.weight.copy_(torch.eye(3))
        layer.log_alpha_param.copy_(alpha.log())
    n = 20_000
    s = bayesdrop.sample(layer, torch.ones(1, 3, 3), n, seed=0)[:, 0].double()  # (n, T, F)
    var = s.var(0)
    se = alpha.double() * math.sqrt(2 / (n - 1))
    assert torch.all((var - alpha.double()).abs() <= z_value(9) * se), var


def test_input_alpha_of_a_convolution_acts_on_channels():
    alpha = torch.tensor([0.5, 0.02])
    conv = bayesdrop.nn.VariationalConv(2, 2, 1, bias=False, dims=1, alpha="input")
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2)[..., None])
        conv.log_alpha_param.copy_(alpha.log())
    n = 20_000
    s = bayesdrop.sample(conv, torch.ones(1, 2, 2), n, seed=1)[:, 0].double()  # (n, C, L) with C == L
    se = alpha.double()[:, None] * math.sqrt(2 / (n - 1))
    assert torch.all((s.var(0) - alpha.double()[:, None]).abs() <= z_value(4) * se)


def test_sparsity_uses_each_layers_own_threshold():
    # The fraction must be what eval mode zeroes: layer a prunes at log alpha > 1, layer b at > 5.
    torch.manual_seed(0)
    a, b = VariationalLinear(10, 10, threshold=1.0), VariationalLinear(10, 30, threshold=5.0)
    a.reset_log_alpha(2.0)  # pruned by a's threshold, not by the default 3
    b.reset_log_alpha(4.0)  # pruned by the default 3, not by b's threshold
    model = nn.Sequential(a, b).eval()
    zeroed = sum(int((m.eval_weight() == 0).sum()) for m in (a, b)) / 400
    assert bayesdrop.sparsity(model) == zeroed == 0.25  # a's 100 weights (the default 3 would give b's 300)
    assert bayesdrop.sparsity(model, threshold=3.0) == 0.75  # an explicit threshold for all: b pruned, a kept
    assert bayesdrop.sparsity(model, threshold=0.0) == 1.0
