"""ConcreteDropout: the relaxed mask, its gradients, the hard masks, the regulariser and learning p."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from torch import nn

import bayesdrop
from bayesdrop.nn import ConcreteDropout

Z = 4.0  # two-sided z for the statistical tolerances (false alarm about 6e-5)


def _relaxed_keep(u: np.ndarray, p: float, t: float) -> np.ndarray:
    """The scaled relaxed keep mask as a function of the uniform draw u (the layer's formula, float64)."""
    eps = 1e-7
    logits = (np.log(p + eps) - np.log1p(-p + eps) + np.log(u + eps) - np.log1p(-u + eps)) / t
    return (1 - expit(logits)) / (1 - p)


def _quadrature(g, p: float, t: float, n: int = 2_000_000) -> float:
    u = (np.arange(n) + 0.5) / n  # midpoint rule on (0, 1)
    return float(np.mean(g(_relaxed_keep(u, p, t))))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.6])
def test_relaxed_mask_gradient_is_the_gradient_of_its_expectation(p):
    # The pathwise gradient of mean(m^2) w.r.t. p_logit is unbiased for d/dlogit E_u[m(u, p)^2], which a
    # central difference of the quadrature of that 1-D integral gives to about 1e-6.
    torch.manual_seed(0)
    layer = ConcreteDropout(nn.Linear(1, 1), init_p=p).double()
    t = layer.temperature
    h = 1e-4
    logit = math.log(p / (1 - p))
    up, down = 1 / (1 + math.exp(-(logit + h))), 1 / (1 + math.exp(-(logit - h)))
    expected = (_quadrature(np.square, up, t) - _quadrature(np.square, down, t)) / (2 * h)
    grads = []
    for _ in range(20):
        layer.p_logit.grad = None
        m = layer.relaxed_mask(torch.ones(50_000, 1, dtype=torch.float64))
        m.square().mean().backward()
        grads.append(float(layer.p_logit.grad))
    g = np.asarray(grads)
    se = g.std(ddof=1) / math.sqrt(len(g))
    assert abs(g.mean() - expected) < Z * se, (g.mean(), expected, se)
    # the test has power: the hard-Bernoulli derivative d/dlogit 1/(1-p) = p/(1-p) differs from zero by many SE
    assert expected > 10 * se


def test_relaxed_mask_has_the_mean_of_dropout_and_tends_to_bernoulli():
    torch.manual_seed(1)
    p, n = 0.3, 400_000
    layer = ConcreteDropout(nn.Linear(1, 1), init_p=p, temperature=0.01).double()
    m = layer.relaxed_mask(torch.ones(n, 1, dtype=torch.float64)).detach() * (1 - p)  # the keep indicator
    se = math.sqrt(p * (1 - p) / n)
    assert abs(float(m.mean()) - (1 - p)) < Z * se
    # nearly binary at t = 0.01: about 2 t log(99) p (1 - p) = 2% of the draws lie in (0.01, 0.99), as the quadrature says
    soft = float(((m > 0.01) & (m < 0.99)).double().mean())
    q = _quadrature(lambda k: (k * (1 - p) > 0.01) & (k * (1 - p) < 0.99), p, 0.01)
    assert q < 0.03 and abs(soft - q) < Z * math.sqrt(q * (1 - q) / n)
    # at the default t = 0.1 the relaxation moves the mean keep rate by about 0.0014 (not exactly 1 - p)
    assert abs(_quadrature(lambda k: k * (1 - p), p, 0.1) - (1 - p)) < 3e-3


def test_sampling_draws_hard_masks_with_the_learned_rate_and_eval_is_weight_scaling():
    torch.manual_seed(2)
    lin = nn.Linear(8, 8, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(8))
    layer = ConcreteDropout(lin, init_p=0.25).eval()
    x = torch.ones(5000, 8)
    assert torch.equal(layer(x), lin(x))  # eval: E[mask] = 1 folds into the weights
    out = bayesdrop.sample(layer, x, 4, seed=0)
    assert bool(((out == 0) | torch.isclose(out, torch.tensor(1 / 0.75))).all())
    keep = float((out > 0).double().mean())
    n = out.numel()
    assert abs(keep - 0.75) < Z * math.sqrt(0.25 * 0.75 / n)
    # train mode uses the relaxed mask: values strictly between the two hard ones occur
    layer.train()
    relaxed = layer(x).detach()
    assert bool(((relaxed > 1e-3) & (relaxed < 1 / 0.75 - 1e-3)).any())


def test_convolutions_lose_whole_input_channels():
    layer = ConcreteDropout(nn.Conv2d(6, 2, 1, bias=False), init_p=0.5).eval()
    with torch.no_grad():
        layer.layer.weight.fill_(1.0)
    x = torch.ones(3, 6, 4, 4)
    with bayesdrop.sampling(layer):
        y = layer(x)
    # 1x1 conv of all-ones weights: each output pixel is the number of kept channels times 2, the same everywhere
    per_image = y[:, 0].flatten(1)
    assert torch.equal(per_image, per_image[:, :1].expand_as(per_image))
    layer.train()
    m = layer.relaxed_mask(x)
    assert m.shape == (3, 6, 1, 1)
    assert layer.units == 6


def test_regulariser_is_the_papers_kl():
    lin = nn.Linear(3, 2)
    layer = ConcreteDropout(lin, init_p=0.2, lengthscale=0.5)
    p = 0.2
    w2, b2 = float(lin.weight.detach().square().sum()), float(lin.bias.detach().square().sum())
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    expected = 0.25 * w2 / (2 * (1 - p)) + 0.25 * b2 / 2 - 3 * entropy
    assert float(layer.kl().detach()) == pytest.approx(expected, rel=1e-5)
    model = nn.Sequential(layer, nn.ReLU(), bayesdrop.nn.VariationalLinear(2, 1))
    total = bayesdrop.kl_divergence(model)
    assert float(total.detach()) == pytest.approx(float((layer.kl() + model[2].kl()).detach()), rel=1e-6)
    # the entropy term pushes p towards 1/2: its gradient at p = 0.2 (lengthscale 0) is negative in p_logit
    bare = ConcreteDropout(nn.Linear(3, 2), init_p=0.2, lengthscale=0.0)
    bare.kl().backward()
    assert float(bare.p_logit.grad) < 0


def _expected_objective(p: float, t: float, c: float, k: int, n: int) -> float:
    """Per-example negative ELBO of the frozen-weight problem under the relaxed mask, by quadrature."""
    mean = _quadrature(lambda m: m, p, t, 200_000)
    var = _quadrature(np.square, p, t, 200_000) - mean**2
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    # data term up to constants: (bias from E[m] != 1 is below 1e-3 and kept) + variance term
    return c * var + c * (mean - 1) ** 2 - k * entropy / n


def _optimum_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """y = x . w exactly, with the minimiser p* of the expected objective (by quadrature over a grid)."""
    gen = torch.Generator().manual_seed(3)
    k, n, sigma = 10, 200, 1.0
    x = torch.randn(n, k, generator=gen)
    w = torch.randn(1, k, generator=gen) * 0.08
    y = (x @ w.T)[:, 0]
    c = float((x.square() * w.square()).sum(1).mean()) / (2 * sigma**2)
    grid = np.linspace(0.02, 0.6, 59)
    objective = [_expected_objective(float(p), 0.1, c, k, n) for p in grid]
    return x, y, w, float(grid[int(np.argmin(objective))])


def _learned_p(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, init: float, min_p: float = 0.0) -> float:
    """Train only the rate (weights frozen at w) and return its mean over the last 500 of 1,500 steps."""
    torch.manual_seed(4)
    lin = nn.Linear(x.shape[1], 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    lin.weight.requires_grad_(False)
    layer = ConcreteDropout(lin, init_p=init, lengthscale=0.0, min_p=min_p).train()
    opt = torch.optim.Adam([layer.p_logit], lr=0.02)
    lik = bayesdrop.Gaussian(noise_std=1.0)
    trace = []
    for step in range(1500):
        opt.zero_grad()
        loss = bayesdrop.elbo_loss(layer, lik, layer(x), y, dataset_size=len(y))
        loss.backward()
        opt.step()
        if step >= 1000:
            trace.append(float(layer.p.detach()))
    assert min(trace) >= min_p - 1e-6  # float32
    return float(np.mean(trace))


def test_learned_p_moves_to_the_optimum_of_the_objective():
    # weights frozen at w: the expected per-example loss is c Var[m] (+ c (E[m]-1)^2), with
    # c = mean sum_k x_k^2 w_k^2 / (2 sigma^2), against -K H(p) / N from the regulariser (lengthscale 0). Its
    # minimiser p* is where training p must go, from below and from above.
    x, y, w, p_star = _optimum_problem()
    assert 0.1 < p_star < 0.4, p_star  # an interior optimum, far from both starts
    for init in (0.02, 0.7):
        learned = _learned_p(x, y, w, init)
        assert abs(learned - p_star) < 0.03, (init, learned, p_star)


def test_a_floor_below_the_optimum_changes_nothing_and_one_above_it_holds_the_rate():
    x, y, w, p_star = _optimum_problem()
    for init in (0.06, 0.7):  # from just above the floor the rate still rises to p*
        below = _learned_p(x, y, w, init=init, min_p=0.05)
        assert abs(below - p_star) < 0.03, (init, below, p_star)
    held = _learned_p(x, y, w, init=0.7, min_p=0.5)  # p* < 0.4: the objective pushes the rate into the floor
    assert 0.5 <= held < 0.52, held
    layer = ConcreteDropout(nn.Linear(3, 2), init_p=0.2, min_p=0.1)
    assert float(layer.p.detach()) == pytest.approx(0.2)  # starts at init_p
    assert "min_p=0.1" in repr(layer)


def test_fit_learns_p_without_weight_decay_on_it():
    torch.manual_seed(5)
    x = torch.randn(64, 4)
    y = x[:, 0]
    model = nn.Sequential(ConcreteDropout(nn.Linear(4, 16)), nn.ReLU(), ConcreteDropout(nn.Linear(16, 1)))
    logits = [m.p_logit for m in model if isinstance(m, ConcreteDropout)]
    before = [float(p.detach()) for p in logits]
    groups: list[dict] = []

    def sgd(gs: list[dict]) -> torch.optim.Optimizer:
        groups.extend(dict(g) for g in gs)  # as fit made them (the optimiser fills in its own defaults)
        return torch.optim.SGD(gs, lr=0.05)

    bayesdrop.fit(model, (x, y), likelihood=bayesdrop.Gaussian(), epochs=5, optimizer=sgd, seed=0, progress=False)
    after = [float(p.detach()) for p in logits]
    assert all(a != b for a, b in zip(after, before, strict=True))  # the rates are learned
    # fit puts them in its no-decay group (weight_decay 0), the weights in the other
    no_decay = next(g for g in groups if g.get("weight_decay") == 0.0)
    assert all(any(p is q for q in no_decay["params"]) for p in logits)
    assert not any(q is model[0].layer.weight for q in no_decay["params"])


def test_bad_input_names_the_parameter():
    with pytest.raises(TypeError, match=r"'layer' parameter of ConcreteDropout must be an nn.Linear .* Got ReLU"):
        ConcreteDropout(nn.ReLU())
    with pytest.raises(ValueError, match=r"'init_p' parameter of ConcreteDropout must be a float in \(0, 1\)"):
        ConcreteDropout(nn.Linear(2, 2), init_p=0.0)
    with pytest.raises(ValueError, match=r"'init_p' parameter of ConcreteDropout"):
        ConcreteDropout(nn.Linear(2, 2), init_p=1.0)
    with pytest.raises(ValueError, match=r"'temperature' parameter of ConcreteDropout"):
        ConcreteDropout(nn.Linear(2, 2), temperature=0.0)
    with pytest.raises(ValueError, match=r"'lengthscale' parameter of ConcreteDropout"):
        ConcreteDropout(nn.Linear(2, 2), lengthscale=-1.0)
    with pytest.raises(
        ValueError, match=r"'min_p' parameter of ConcreteDropout must be a float in \[0, 0.2\)\. Got 0.2"
    ):
        ConcreteDropout(nn.Linear(2, 2), init_p=0.2, min_p=0.2)
    with pytest.raises(ValueError, match=r"'min_p' parameter of ConcreteDropout"):
        ConcreteDropout(nn.Linear(2, 2), min_p=-0.1)
