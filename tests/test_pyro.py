"""The Pyro bridge against closed forms: Bayesian linear regression, importance sampling, analytic W2."""

from __future__ import annotations

import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from pyro.ops.stats import effective_sample_size
from torch import nn

import bayesdrop
from bayesdrop import plots
from bayesdrop.pyro import reference_posterior
from tests.conftest import z_value

FAST = {"compile": False, "progress": False, "init_steps": 100}


def _ess(pred: torch.Tensor, chains: int) -> torch.Tensor:
    """Effective sample size of each column of (S, M) draws stored chain after chain."""
    return effective_sample_size(pred.reshape(chains, -1, pred.shape[-1]), chain_dim=0, sample_dim=1)


def _blr_posterior(x, y, sigma, prior_var):
    """Exact Gaussian posterior of (w, b) for y = x w + b + N(0, sigma^2), prior N(0, diag(prior_var))."""
    phi = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    cov = torch.linalg.inv(torch.diag(1 / prior_var) + phi.T @ phi / sigma**2)
    return cov @ phi.T @ y / sigma**2, cov


@pytest.mark.parametrize("scale_by_fan_in", [True, False])
def test_no_hidden_layer_is_bayesian_linear_regression(scale_by_fan_in):
    # Linear(2, 1) with a Gaussian likelihood of known noise: the posterior predictive of f(x*) is
    # N(phi*^T m, phi*^T S phi*). Ten points and a prior of scale 0.5 make the prior matter, so a wrong
    # prior scale (fan-in or not) moves the mean by many standard errors.
    gen = torch.Generator().manual_seed(1)
    n, d, sigma, scale = 10, 2, 0.5, 0.5
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = (
        x @ torch.tensor([1.0, -0.5], dtype=torch.float64)
        + 0.3
        + sigma * torch.randn(n, generator=gen, dtype=torch.float64)
    )
    ref = reference_posterior(
        nn.Linear(d, 1).double(),
        x,
        y,
        likelihood=bayesdrop.Gaussian(noise_std=sigma),
        prior_scale=scale,
        scale_by_fan_in=scale_by_fan_in,
        num_samples=800,
        warmup_steps=200,
        num_chains=2,
        parallel=scale_by_fan_in,  # both ways of running chains
        seed=0,
        **FAST,
    )
    w_var = scale**2 / d if scale_by_fan_in else scale**2
    mean, cov = _blr_posterior(x, y, sigma, torch.tensor([w_var] * d + [scale**2], dtype=torch.float64))
    xt = torch.tensor([[0.0, 0.0], [2.0, -2.0], [-3.0, 1.0]], dtype=torch.float64)
    pt = torch.cat([xt, torch.ones(3, 1, dtype=torch.float64)], 1)
    pm, pv = pt @ mean, ((pt @ cov) * pt).sum(1)
    out = ref.predict(xt)
    assert out.shape == (1600, 3, 2)
    torch.testing.assert_close(out[..., 1], torch.full((1600, 3), 2 * math.log(sigma), dtype=torch.float64))
    f = out[..., 0]
    ess = _ess(f, 2)
    assert ess.min() > 300 and ref.r_hat < 1.05 and ref.divergences == 0
    z = z_value(6)
    # MC error of a mean: sqrt(var / ESS); of a Gaussian's variance: var * sqrt(2 / ESS)
    assert torch.all((f.mean(0) - pm).abs() <= z * torch.sqrt(pv / ess)), (f.mean(0), pm)
    assert torch.all((f.var(0) - pv).abs() <= z * pv * torch.sqrt(2 / ess)), (f.var(0), pv)
    # the raw samples are the weights: their mean is the posterior mean
    assert ref.samples["weight"].shape == (1600, 1, 2) and ref.samples["bias"].shape == (1600, 1)
    w_ess = _ess(ref.samples["weight"].reshape(1600, 2), 2)
    sd = torch.sqrt(torch.diagonal(cov)[:2])
    assert torch.all((ref.samples["weight"].reshape(1600, 2).mean(0) - mean[:2]).abs() <= z * sd / torch.sqrt(w_ess))


def test_categorical_on_a_tiny_problem_matches_importance_sampling():
    # Logistic regression with 2 classes, Linear(1, 2), 6 points: a long "chain" is self-normalised importance
    # sampling from the prior (200,000 draws), exact as the draws grow. Predictive P(y=1 | x*) at 3 points.
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 0, 1, 1])
    xt = torch.tensor([[-3.0], [0.0], [1.5]], dtype=torch.float64)
    ref = reference_posterior(
        nn.Linear(1, 2).double(),
        x,
        y,
        likelihood=bayesdrop.Categorical(),
        prior_scale=2.0,
        num_samples=1000,
        warmup_steps=200,
        num_chains=1,
        seed=3,
        **FAST,
    )
    probs = torch.softmax(ref.predict(xt), -1)[..., 1]  # (S, 3)
    ess = _ess(probs, 1)
    # prior: weights N(0, 2^2 / fan_in=1), biases N(0, 2^2)
    m = 200_000
    w = 2.0 * torch.randn(m, 2, generator=gen, dtype=torch.float64)
    b = 2.0 * torch.randn(m, 2, generator=gen, dtype=torch.float64)
    logits = x[None, :, 0, None] * w[:, None, :] + b[:, None, :]  # (M, N, 2)
    log_w = torch.log_softmax(logits, -1).gather(-1, y[None, :, None].expand(m, -1, 1)).sum((1, 2))
    weights = torch.softmax(log_w, 0)
    pt = torch.softmax(xt[None, :, 0, None] * w[:, None, :] + b[:, None, :], -1)[..., 1]  # (M, 3)
    is_mean = weights @ pt
    is_ess = 1 / (weights**2).sum()
    assert is_ess > 5000
    var = probs.var(0)
    se = torch.sqrt(var / ess + var / is_ess)
    assert torch.all((probs.mean(0) - is_mean).abs() <= z_value(3) * se), (probs.mean(0), is_mean)


def test_learned_and_heteroscedastic_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 40, dtype=torch.float64)[:, None]
    y = 2 * x[:, 0] + 0.2 * torch.randn(40, generator=gen, dtype=torch.float64)
    ref = reference_posterior(
        nn.Linear(1, 1).double(),
        x,
        y,
        likelihood=bayesdrop.Gaussian(),
        num_samples=400,
        warmup_steps=200,
        num_chains=1,
        seed=0,
        **FAST,
    )
    noise = ref.samples["noise_std"]
    assert noise.shape == (400, 1)
    # the residual std of a 2-parameter fit of 40 points with true noise 0.2: the posterior sits near it
    assert 0.13 < float(noise.median()) < 0.3
    out = ref.predict(x[:3])
    assert torch.allclose(out[..., 1], 2 * torch.log(noise).expand(400, 3))
    het = reference_posterior(
        nn.Linear(1, 2).double(),
        x,
        y,
        likelihood=bayesdrop.Gaussian(heteroscedastic=True),
        num_samples=50,
        warmup_steps=50,
        num_chains=1,
        seed=0,
        **FAST,
    )
    assert "noise_std" not in het.samples
    out = het.predict(x[:3])
    w, b = het.samples["weight"], het.samples["bias"]
    expected = x[None, :3, 0, None] * w[:, None, :, 0] + b[:, None, :]
    torch.testing.assert_close(out, expected)


def test_seed_reproduces_and_leaves_the_global_rng_alone():
    x = torch.linspace(-1, 1, 10)[:, None]
    y = x[:, 0]
    kw = dict(likelihood=bayesdrop.Gaussian(noise_std=0.5), num_samples=20, warmup_steps=20, num_chains=1, **FAST)
    net = nn.Linear(1, 1)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = reference_posterior(net, x, y, seed=7, **kw)
    assert torch.equal(torch.get_rng_state(), before)
    b = reference_posterior(net, x, y, seed=7, **kw)
    c = reference_posterior(net, x, y, seed=8, **kw)
    assert torch.equal(a.samples["weight"], b.samples["weight"])
    assert not torch.equal(a.samples["weight"], c.samples["weight"])
    d = a.diagnostics()
    assert d["num_samples"] == 20 and d["num_chains"] == 1 and d["seconds"] > 0


def test_dropout_layers_are_ignored_and_linear_variants_stripped():
    x = torch.randn(8, 3)
    y = torch.randn(8)
    model = nn.Sequential(
        bayesdrop.nn.Dropout(0.5),
        bayesdrop.nn.VariationalLinear(3, 4),
        nn.ReLU(),
        nn.Dropout(0.2),
        bayesdrop.nn.DropConnectLinear(4, 4, activation="tanh"),
        bayesdrop.nn.FastDropoutLinear(4, 4),
        bayesdrop.nn.ConcreteDropout(nn.Linear(4, 1)),
    )
    ref = reference_posterior(
        model,
        x,
        y,
        likelihood=bayesdrop.Gaussian(noise_std=1.0),
        num_samples=10,
        warmup_steps=5,
        num_chains=1,
        seed=0,
        **FAST,
    )
    names = set(ref.samples)
    assert names == {"1.weight", "1.bias", "4.0.weight", "4.0.bias", "5.weight", "5.bias", "6.weight", "6.bias"}
    net = ref.model
    assert type(net[1]) is nn.Linear and isinstance(net[4][1], nn.Tanh) and type(net[5]) is nn.Linear
    assert type(net[6]) is nn.Linear
    assert not net.training
    # a draw's prediction is the deterministic network with those weights (dropout ignored)
    params = {k: v[3] for k, v in ref.samples.items()}
    expected = torch.func.functional_call(net, params, (x,))
    torch.testing.assert_close(ref.predict(x)[3, :, :1], expected)
    assert isinstance(model[1], bayesdrop.nn.VariationalLinear)  # the user's model is untouched
    assert isinstance(model[6], bayesdrop.nn.ConcreteDropout)


def test_bad_input_names_the_parameter():
    x, y = torch.randn(5, 2), torch.randn(5)
    gauss = bayesdrop.Gaussian(noise_std=1.0)
    conv = nn.Sequential(bayesdrop.nn.VariationalConv(1, 1, 3, dims=1))
    with pytest.raises(ValueError, match=r"'model' parameter of reference_posterior .* VariationalConv at '0'"):
        reference_posterior(conv, x, y, likelihood=gauss)
    with pytest.raises(TypeError, match=r"'likelihood' parameter of reference_posterior must be a bayesdrop.Gaussian"):
        reference_posterior(nn.Linear(2, 1), x, y, likelihood=nn.MSELoss())
    with pytest.raises(ValueError, match=r"'num_chains' parameter of reference_posterior must be an int >= 1. Got 0"):
        reference_posterior(nn.Linear(2, 1), x, y, likelihood=gauss, num_chains=0)
    with pytest.raises(ValueError, match=r"'x' and 'y' parameters .* same number"):
        reference_posterior(nn.Linear(2, 1), x, y[:3], likelihood=gauss)
    with pytest.raises(ValueError, match=r"'y' parameter .* integer class indices"):
        reference_posterior(nn.Linear(2, 3), x, y, likelihood=bayesdrop.Categorical())
    with pytest.raises(ValueError, match=r"expects 2 output column"):
        reference_posterior(nn.Linear(2, 1), x, y, likelihood=bayesdrop.Gaussian(heteroscedastic=True))
    with pytest.raises(ValueError, match=r"'prior_scale' parameter of reference_posterior must be a float in \(0"):
        reference_posterior(nn.Linear(2, 1), x, y, likelihood=gauss, prior_scale=0.0)


def test_missing_pyro_is_an_import_error_that_says_how_to_install():
    code = "import sys; sys.modules['pyro'] = None; import bayesdrop.pyro"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "pip install pyro-ppl" in out.stderr


# --------------------------------------------------------------------------- the plot


def test_posterior_comparison_plot():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 12)
    ref = rng.normal(size=(50, 12)) + x
    mc = np.stack([rng.normal(size=(40, 12)), np.zeros((40, 12))], -1)
    out = plots.posterior_comparison({"mc": mc}, ref, x, x_train=x, y_train=x)
    assert out["mode"] == "1d"
    order = np.argsort(x)
    np.testing.assert_allclose(out["lines"]["mc"].get_ydata(), mc[..., 0].mean(0)[order])
    band = out["reference"].get_paths()[0].vertices[:, 1]
    m, s = ref.mean(0)[order], ref.std(0)[order]
    assert np.isclose(band.max(), (m + 2 * s).max()) and np.isclose(band.min(), (m - 2 * s).min())
    plt.close("all")
    out = plots.posterior_comparison({"mc": mc}, ref)
    assert out["mode"] == "std"
    np.testing.assert_allclose(out["lines"]["mc"].get_offsets(), np.stack([ref.std(0), mc[..., 0].std(0)], 1))
    with pytest.raises(ValueError, match="must have the reference's 12 inputs"):
        plots.posterior_comparison({"mc": mc[:, :3]}, ref)
    plt.close("all")
