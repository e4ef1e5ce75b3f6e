"""The dropout family: DropConnect, fast dropout, spatial, max-pooling, depth, noise, placement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
import bayesdrop.nn.functional as BF
from bayesdrop.nn import (
    DropConnectConv,
    DropConnectLinear,
    Dropout,
    DropPath,
    DropPathJoin,
    FastDropoutLinear,
    GaussianNoise,
    MaxPoolDropout2d,
    SpatialDropout,
    StochasticDepth,
    conv_block,
    linear_decay,
    moment_propagation,
    variance_shift,
)
from tests.conftest import z_value


# --- DropConnect ---------------------------------------------------------------------------
def _two_weight_layer(activation: str, inference: str = "weight_scaling", p: float = 0.4) -> DropConnectLinear:
    layer = DropConnectLinear(
        2, 1, p, activation=activation, inference=inference, num_inference_samples=200_000
    ).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.5, -2.0]], dtype=torch.float64))
        layer.bias.fill_(0.25)
    return layer


def _enumerate(layer: DropConnectLinear, x: torch.Tensor, act) -> torch.Tensor:
    q = 1 - layer.p
    total = torch.zeros(x.shape[0], 1, dtype=torch.float64)
    for m in itertools.product([0, 1], repeat=2):
        mask = torch.tensor([m], dtype=torch.float64)
        prob = q ** sum(m) * layer.p ** (2 - sum(m))
        total += prob * act(x @ (layer.weight * mask).T + layer.bias)
    return total


def test_dropconnect_weight_scaling_is_the_exact_mean_of_a_linear_unit():
    layer = _two_weight_layer("identity").eval()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.25]], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _enumerate(layer, x, lambda t: t))


def test_dropconnect_moment_matching_against_enumeration_and_gaussian():
    # With a ReLU the enumeration over the 4 masks gives the exact expectation;
    # moment matching averages relu(u + b) over u ~ N(qWx, q(1-q)W^2x^2): its
    # value equals relu_moments of that Gaussian within the MC error of the
    # 200k inference draws (SE sqrt(Var relu(u) / 200k)).
    layer = _two_weight_layer("relu", "moment_matching").eval()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.25], [2.0, 0.5]], dtype=torch.float64)
    q = 0.6
    with torch.no_grad():
        mm = layer(x)
        mean = q * x @ layer.weight.T + layer.bias
        var = q * (1 - q) * (x * x) @ (layer.weight**2).T
        m1, v1 = BF.relu_moments(mean, var)
    assert torch.all((mm - m1).abs() <= z_value(3) * (v1 / 200_000).sqrt())
    exact = _enumerate(layer, x, torch.relu).detach()
    assert torch.all(exact >= 0) and not torch.allclose(mm, exact)  # an approximation of it, not the same


def test_dropconnect_sampling_moments_and_independent_masks():
    # Pre-activation per example: mean q W x + b, variance q(1-q) (W^2)(x^2).
    layer = _two_weight_layer("identity").eval()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    n = 100_000
    s = bayesdrop.sample(layer, x, n, seed=0)[:, 0, 0]
    q = 0.6
    with torch.no_grad():
        mean = float(q * x @ layer.weight.T + layer.bias)
        var = float(q * (1 - q) * (x * x) @ (layer.weight**2).T)
    assert abs(float(s.mean()) - mean) <= z_value(2) * math.sqrt(var / n)
    c4 = float(((s - s.mean()) ** 4).mean())
    assert abs(float(s.var()) - var) <= z_value(2) * math.sqrt((c4 - var**2) / n)
    # tiled copies never share one weight mask (baal's DropConnect does)
    wide = DropConnectLinear(64, 1, 0.5, bias=False)
    with torch.no_grad():
        wide.weight.copy_(2.0 ** torch.arange(64, dtype=torch.float32) / 2**40)
    out = bayesdrop.sample(wide, torch.ones(4, 64), 50, seed=1).flatten()
    assert torch.unique(out).numel() == out.numel()


def test_dropconnect_conv_matches_linear_masks_in_expectation():
    torch.manual_seed(0)
    conv = DropConnectConv(2, 3, 3, p=0.3, padding=1).double().eval()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(x, 0.7 * conv.weight, conv.bias, padding=1)
        torch.testing.assert_close(conv(x), ref)
        n = 4000
        s = bayesdrop.sample(conv, x, n, seed=0)[:, 0]
        var = torch.nn.functional.conv2d(x * x, 0.7 * 0.3 * conv.weight**2, padding=1)[0]
    z = z_value(var.numel())
    assert torch.all((s.mean(0) - ref[0]).abs() <= z * (var / n).sqrt() + 1e-12)


# --- fast dropout --------------------------------------------------------------------------
@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.5, 0.5), (-1.0, 2.0), (0.3, 0.01)])
def test_relu_moments_against_monte_carlo(mu, s):
    n = 400_000
    z = mu + s * torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r = torch.relu(z)
    m, v = BF.relu_moments(torch.tensor(mu, dtype=torch.float64), torch.tensor(s * s, dtype=torch.float64))
    zz = z_value(8)
    assert abs(float(r.mean()) - float(m)) <= zz * float(r.std()) / math.sqrt(n)
    c = r - r.mean()
    se_var = math.sqrt(float((c**4).mean()) - float(c.var()) ** 2) / math.sqrt(n)
    assert abs(float(r.var()) - float(v)) <= zz * se_var


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.5, 0.5), (-1.0, 2.0)])
def test_sigmoid_probit_moments_against_monte_carlo(mu, s):
    # The probit approximations have their own error (Wang & Manning 2013):
    # measured below 0.005 for E sigma(z) and 0.015 for E sigma(z)^2 on these
    # points (sigma(x)^2 ~ sigma(a(x + b)) is off by 0.013 at x = 0), so the
    # variance carries an absolute error of about 0.015.
    n = 400_000
    z = mu + s * torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g = torch.sigmoid(z)
    m, v = BF.sigmoid_moments(torch.tensor(mu, dtype=torch.float64), torch.tensor(s * s, dtype=torch.float64))
    zz = z_value(6)
    assert abs(float(g.mean()) - float(m)) <= 0.005 + zz * float(g.std()) / math.sqrt(n)
    second = float(v + m * m)
    assert abs(float((g * g).mean()) - second) <= 0.015 + zz * float((g * g).std()) / math.sqrt(n)


def test_fast_dropout_layer_moments_are_exact_against_mc():
    # Dropout -> Linear has exactly the propagated mean and variance.
    torch.manual_seed(0)
    layer = FastDropoutLinear(5, 3, p=0.3).double()
    net = nn.Sequential(Dropout(0.3), nn.Linear(5, 3)).double()
    with torch.no_grad():
        net[1].weight.copy_(layer.weight)
        net[1].bias.copy_(layer.bias)
    x = torch.randn(1, 5, dtype=torch.float64)
    m, v = moment_propagation(nn.Sequential(layer), x)
    m2, v2 = moment_propagation(net, x)
    torch.testing.assert_close(m, m2)
    torch.testing.assert_close(v, v2)
    n = 200_000
    for model in (net, layer):  # Bernoulli and its Gaussian approximation: same two moments
        s = bayesdrop.sample(model, x, n, seed=2)[:, 0]
        c = s - s.mean(0)
        assert torch.all((s.mean(0) - m[0]).abs() <= z_value(12) * (v[0] / n).sqrt())
        se = ((c**4).mean(0) - c.var(0) ** 2).sqrt() / math.sqrt(n)
        assert torch.all((s.var(0) - v[0]).abs() <= z_value(12) * se)


def test_moment_propagation_network_against_mc_and_as_objective():
    # Through a ReLU network the Gaussian assumption is an approximation:
    # the propagated mean is within 5% of the MC mean, the variance within 20%.
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(0.2), nn.Linear(4, 64), nn.ReLU(), Dropout(0.5), nn.Linear(64, 1)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    m, v = moment_propagation(net, x)
    s = bayesdrop.sample(net, x, 100_000, seed=0)[..., 0]
    scale = s.std(0)
    assert torch.all((m[:, 0] - s.mean(0)).abs() <= 0.05 * scale + z_value(6) * scale / math.sqrt(100_000))
    assert torch.all((v[:, 0] / s.var(0) - 1).abs() <= 0.2)
    # as a training objective: the expected Gaussian NLL is differentiable and decreases
    fd = nn.Sequential(FastDropoutLinear(4, 32, 0.2), nn.ReLU(), FastDropoutLinear(32, 1, 0.2))
    y = x.sum(1, keepdim=True).float()
    opt = torch.optim.Adam(fd.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        mean, var = moment_propagation(fd, x.float())
        loss = BF.expected_gaussian_nll(mean, var, y, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(TypeError, match=r"cannot propagate layer 0 \(Tanh\)"):
        moment_propagation(nn.Sequential(nn.Tanh()), x)


# --- spatial and time-consistent dropout -----------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_spatial_dropout_drops_whole_maps_with_scaling(dims):
    layer = SpatialDropout(0.5, dims=dims).train()
    x = torch.ones(16, 8, *([4] * dims))
    y = layer(x).flatten(2)
    assert torch.equal(y.amin(-1), y.amax(-1))  # constant per feature map
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    with pytest.raises(ValueError, match="'dims' parameter of SpatialDropout"):
        SpatialDropout(0.5, dims=4)


# --- max-pooling dropout -------------------------------------------------------------------
@pytest.mark.parametrize(
    "values", [[0.5, 2.0, 1.0, 3.0], [-1.0, 2.0, -3.0, 0.5], [-1.0, -2.0, -0.5, -4.0], [1.0, 1.0, 0.0, 2.0]]
)
def test_max_pool_dropout_eval_is_the_exact_expectation(values):
    p = 0.3
    x = torch.tensor(values, dtype=torch.float64).view(1, 1, 2, 2)
    exact = 0.0
    for m in itertools.product([0, 1], repeat=4):
        prob = math.prod((1 - p) if k else p for k in m)
        exact += prob * float((x.flatten() * torch.tensor(m, dtype=torch.float64)).max())
    layer = MaxPoolDropout2d(2, p).eval()
    assert float(layer(x)) == pytest.approx(exact, rel=1e-12, abs=1e-15)
    if min(values) >= 0:  # Wu & Gu's probabilistic weighted pooling
        a = sorted(values)
        pwp = sum((1 - p) * p ** (4 - i) * a[i - 1] for i in range(1, 5))
        assert float(layer(x)) == pytest.approx(pwp)


def test_max_pool_dropout_train_mean_and_shape_errors():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    layer = MaxPoolDropout2d(3, 0.5, stride=3)
    n = 20_000
    s = bayesdrop.sample(layer, x, n, seed=0)
    exact = layer.eval()(x)
    c = s - s.mean(0)
    assert torch.all((s.mean(0) - exact).abs() <= z_value(exact.numel()) * (c.var(0) / n).sqrt() + 1e-12)
    assert s.shape[1:] == torch.nn.functional.max_pool2d(x, 3).shape
    with pytest.raises(RuntimeError):  # torch's own error for a kernel larger than the input
        MaxPoolDropout2d(8, 0.5).eval()(x)


# --- stochastic depth and drop-path ------------------------------------------------------------
def test_drop_path_drops_whole_examples():
    layer = DropPath(0.5).train()
    y = layer(torch.ones(2000, 3, 4))
    per = y.flatten(1)
    assert torch.equal(per.amin(1), per.amax(1)) and set(torch.unique(per).tolist()) == {0.0, 2.0}
    frac = float((per[:, 0] == 0).double().mean())
    assert abs(frac - 0.5) <= z_value() * math.sqrt(0.25 / 2000)
    assert torch.equal(DropPath(0.5).eval()(torch.ones(3)), torch.ones(3))


def test_stochastic_depth_and_linear_decay():
    block = nn.Linear(4, 4)
    sd = StochasticDepth(block, 0.5).eval()
    x = torch.randn(8, 4)
    torch.testing.assert_close(sd(x), x + block(x))
    with bayesdrop.sampling(sd):
        out = sd(x)
    branch = (out - x).detach()
    kept = ~torch.isclose(branch, torch.zeros_like(branch)).all(1)
    torch.testing.assert_close(branch[kept], 2 * block(x)[kept].detach())
    decay = linear_decay(5, 0.5)
    survival = [1 - d for d in decay]
    assert survival == pytest.approx([1 - (l / 5) * (1 - 0.5) for l in range(1, 6)])


def test_drop_path_join_local_global_and_eval():
    torch.manual_seed(0)
    join = DropPathJoin(3, p_local=0.5, p_global=0.0).train()
    paths = torch.stack([torch.full((500, 2), v) for v in (1.0, 2.0, 4.0)], 1)
    out = join(paths)
    possible = {1.0, 2.0, 4.0, 1.5, 2.5, 3.0, 7 / 3}
    assert set(np.round(out[:, 0].tolist(), 6)) <= {round(v, 6) for v in possible}  # never empty
    assert len(set(np.round(out[:, 0].tolist(), 6))) > 3
    glob = DropPathJoin(3, p_local=0.5, p_global=1.0).train()
    g = glob(paths)
    assert torch.unique(g).numel() == 1 and float(g[0, 0]) in (1.0, 2.0, 4.0)  # one path for the batch
    torch.testing.assert_close(join.eval()(paths), paths.mean(1))
    with bayesdrop.sampling(glob):
        s = glob(paths)
    assert torch.unique(s[:, 0]).numel() == 3  # per example under sampling
    with pytest.raises(ValueError, match=r"'num_paths' parameter of DropPathJoin must be an int >= 2. Got 1"):
        DropPathJoin(1)


# --- noise as a regulariser --------------------------------------------------------------------
def test_bishop_additive_noise_matches_ridge():
    # Least squares on K noisy copies of X (GaussianNoise, variance s^2) converges
    # to ridge with penalty N s^2 (Bishop 1995). SE from 10 disjoint groups of copies.
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    n, s = 40, 0.5
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=n)
    ridge = Ridge(alpha=n * s**2, fit_intercept=False).fit(X, y).coef_
    noisy = bayesdrop.sample(GaussianNoise(s), torch.tensor(X), 20_000, seed=0).numpy()  # (K, N, 3)
    ys = np.broadcast_to(y, noisy.shape[:2])

    def lstsq(xs, yy):
        a = np.einsum("kni,knj->ij", xs, xs)
        return np.linalg.solve(a, np.einsum("kni,kn->i", xs, yy))

    w = lstsq(noisy, ys)
    groups = np.array([lstsq(noisy[i::10], ys[i::10]) for i in range(10)])
    se = groups.std(0, ddof=1) / math.sqrt(10)
    assert np.all(np.abs(w - ridge) <= z_value(3) * se + 1e-3 * np.abs(ridge))
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.all(np.abs(ridge - ols) > 10 * se)  # the penalty is visible at this precision


def test_salt_and_pepper_statistics():
    n = 200_000
    x = torch.full((n,), 0.5)
    y = BF.salt_and_pepper(x, 0.2, generator=torch.Generator().manual_seed(0))
    z = z_value(2)
    for value, prob in ((0.0, 0.1), (1.0, 0.1)):
        frac = float((y == value).double().mean())
        assert abs(frac - prob) <= z * math.sqrt(prob * (1 - prob) / n)
    assert set(torch.unique(y).tolist()) == {0.0, 0.5, 1.0}


# --- placement -------------------------------------------------------------------------------
def test_variance_shift_dropout_before_batchnorm_vs_cai_order():
    # Same layers, two orders. Dropout right before BatchNorm: the running
    # variance, collected with the dropout noise, exceeds the eval variance.
    # Cai's block (BN -> ReLU -> Dropout -> Conv): the BN sees no dropout.
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    before = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Dropout(0.5), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3)
    )
    cai = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), conv_block(8, 8, 0.5))
    for model in (before, cai):
        model.train()
        with torch.no_grad():
            for _ in range(100):
                model(x)
    shift_before = variance_shift(before, x)["3"]
    shift_cai = variance_shift(cai, x)["1.0"]
    assert shift_before > 0.5
    assert abs(shift_cai) < 0.05
    assert before.training  # mode restored
    with pytest.raises(ValueError, match="needs a model with BatchNorm"):
        variance_shift(nn.Linear(2, 2), torch.randn(2, 2))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: DropConnectLinear(2, 2, p=1.0),
            ValueError,
            r"'p' parameter of DropConnectLinear must be a float in \[0, 1\). Got 1.0",
        ),
        (
            lambda: DropConnectLinear(2, 2, inference="mean"),
            ValueError,
            r"'inference' parameter of DropConnectLinear must be one of 'weight_scaling', 'moment_matching'",
        ),
        (
            lambda: DropConnectLinear(2, 2, activation="gelu"),
            ValueError,
            r"'activation' parameter of DropConnectLinear must be one of",
        ),
        (
            lambda: MaxPoolDropout2d(2, p=-0.5),
            ValueError,
            r"'p' parameter of MaxPoolDropout2d must be a float in \[0, 1\). Got -0.5",
        ),
        (lambda: DropPath(2.0), ValueError, r"'p' parameter of DropPath"),
        (
            lambda: GaussianNoise(-1.0),
            ValueError,
            r"'std' parameter of GaussianNoise must be a float in \[0, inf\]. Got -1.0",
        ),
        (lambda: FastDropoutLinear(2, 2, p=1.0), ValueError, r"'p' parameter of FastDropoutLinear"),
        (lambda: linear_decay(0), ValueError, r"'num_blocks' parameter of linear_decay must be an int >= 1. Got 0"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
