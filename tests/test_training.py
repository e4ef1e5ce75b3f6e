from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.likelihoods import Categorical, Gaussian
from bayesdrop.nn import VariationalLinear
from bayesdrop.training import fit, load_checkpoint


def _net(out: int = 1) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        VariationalLinear(1, 64), nn.ReLU(), VariationalLinear(64, 64), nn.ReLU(), VariationalLinear(64, out)
    )


def _data(n: int, seed: int, hetero: bool):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 4 - 2
    std = 0.15 + 0.1 * x[:, 0] ** 2 if hetero else torch.full((n,), 0.3)
    y = torch.sin(2 * x[:, 0]) + std * torch.randn(n, generator=g)
    return x, y, std


def _coverage(model: nn.Module, x: torch.Tensor, y: torch.Tensor, level: float = 0.9) -> float:
    out = bayesdrop.sample(model, x, 200, seed=1)  # (T, N, 2): mean, log-variance
    mean = out[..., 0].mean(0)
    var = out[..., 0].var(0, unbiased=False) + out[..., 1].exp().mean(0)
    return bayesdrop.metrics.interval_coverage(mean, var.sqrt(), y, level)


def test_fit_recovers_a_homoscedastic_noise():
    x, y, _ = _data(2000, 0, hetero=False)
    net, lik = _net(), Gaussian()
    fit(net, (x, y), likelihood=lik, epochs=100, lr=1e-2, seed=0, progress=False)
    assert abs(float(lik.noise_std[0]) - 0.3) <= 0.15 * 0.3
    xt, yt, _ = _data(2000, 1, hetero=False)
    cov = _coverage(nn.Sequential(net, lik), xt, yt)
    assert 0.85 <= cov <= 0.95


def test_fit_recovers_a_heteroscedastic_noise():
    x, y, _ = _data(3000, 2, hetero=True)
    net, lik = _net(2), Gaussian(heteroscedastic=True)
    fit(net, (x, y), likelihood=lik, epochs=100, lr=1e-2, seed=0, progress=False)
    grid = torch.tensor([[-1.5], [-0.75], [0.0], [0.75], [1.5]])
    with torch.no_grad():
        learned = net.eval()(grid)[:, 1].mul(0.5).exp()
    truth = 0.15 + 0.1 * grid[:, 0] ** 2
    assert torch.all((learned - truth).abs() <= 0.15 * truth), (learned, truth)
    xt, yt, _ = _data(2000, 3, hetero=True)
    assert 0.85 <= _coverage(nn.Sequential(net, lik), xt, yt) <= 0.95


def test_kl_scaling_and_warmup():
    # One batch per epoch: the recorded loss is exactly NLL + scale * KL, with
    # scale = 1/N by default and a linear warm-up (t / warm-up epochs).
    x, y, _ = _data(100, 4, hetero=False)
    h = fit(_net(), (x, y), likelihood=Gaussian(), epochs=4, batch_size=100, seed=0, progress=False, kl_warmup_epochs=2)
    assert h.kl_weight == 1 / 100
    assert h.kl_scale == pytest.approx([0.5 / 100, 1 / 100, 1 / 100, 1 / 100])
    for loss, nll, kl, s in zip(h.loss, h.nll, h.kl, h.kl_scale):
        assert loss == pytest.approx(nll + s * kl, rel=1e-5)
    h0 = fit(_net(), (x, y), likelihood=Gaussian(), epochs=2, batch_size=100, kl_scale=0.0, seed=0, progress=False)
    assert h0.loss == pytest.approx(h0.nll)


def test_seed_makes_fit_deterministic_and_keeps_global_rng():
    x, y, _ = _data(200, 5, hetero=False)
    state = torch.get_rng_state()
    a, b = _net(), _net()
    fit(a, (x, y), likelihood=Gaussian(), epochs=3, seed=7, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    fit(b, (x, y), likelihood=Gaussian(), epochs=3, seed=7, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


class _Interrupt:
    """Raise KeyboardInterrupt at the n-th NLL evaluation."""

    def __init__(self, lik: Gaussian, n: int) -> None:
        self.calls, self.n, self.nll = 0, n, lik.nll

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.nll(*args)


@pytest.mark.parametrize("stop_at", [7, 16, 17])  # mid-epoch, last batch of an epoch, first of the next
def test_interrupt_and_resume_equal_an_uninterrupted_run(tmp_path, stop_at):
    x, y, _ = _data(256, 6, hetero=False)  # 4 batches of 64 per epoch
    kw = dict(epochs=6, batch_size=64, lr=1e-2, seed=3, progress=False, val_data=(x[:50], y[:50]))
    ref, ref_lik = _net(), Gaussian()
    h_ref = fit(ref, (x, y), likelihood=ref_lik, **kw)

    ckpt = tmp_path / "run.pt"
    net, lik = _net(), Gaussian()
    lik.nll = _Interrupt(lik, stop_at)
    with pytest.raises(KeyboardInterrupt):
        fit(net, (x, y), likelihood=lik, checkpoint=ckpt, **kw)
    state = load_checkpoint(ckpt)
    assert state["format"] == "bayesdrop-checkpoint"
    net2, lik2 = _net(), Gaussian()  # a fresh process would start from scratch objects
    h = fit(net2, (x, y), likelihood=lik2, checkpoint=ckpt, resume=True, **kw)
    for pa, pb in zip(ref.parameters(), net2.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(ref_lik.log_var, lik2.log_var)
    assert h.loss == pytest.approx(h_ref.loss, rel=1e-6) and h.val_nll == h_ref.val_nll


def test_early_stopping_restores_the_best_weights():
    x, y, _ = _data(300, 7, hetero=False)
    xv, yv, _ = _data(100, 8, hetero=False)
    net, lik = _net(), Gaussian()
    h = fit(
        net, (x, y), likelihood=lik, epochs=200, lr=3e-2, val_data=(xv, yv), early_stopping=3, seed=0, progress=False
    )
    assert h.stopped_early and len(h.val_nll) < 200
    with torch.no_grad():
        best = float(lik.nll(net.eval()(xv), yv))
    assert best == pytest.approx(min(h.val_nll), rel=1e-5)
    assert h.best_epoch == int(np.argmin(h.val_nll)) + 1


def test_categorical_fit_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), bayesdrop.nn.Dropout(0.1), nn.Linear(16, 2))
    h = fit(net, (x, y), likelihood=Categorical(), epochs=30, lr=1e-2, seed=0, progress=False)
    assert h.nll[-1] < 0.3 < math.log(2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"epochs": 0}, ValueError, r"'epochs' parameter of fit must be an int >= 1. Got 0"),
        ({"lr": -1.0}, ValueError, r"'lr' parameter of fit must be a float in \(0, inf\]. Got -1.0"),
        ({"early_stopping": 2}, ValueError, "needs val_data"),
        ({"resume": True}, ValueError, "needs a checkpoint path"),
        ({"likelihood": nn.MSELoss()}, TypeError, "must be a Gaussian or Categorical. Got MSELoss"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    x, y, _ = _data(10, 0, hetero=False)
    args = {"likelihood": Gaussian(), "epochs": 1, "progress": False, **kwargs}
    with pytest.raises(exc, match=match):
        fit(_net(), (x, y), **args)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit(_net(), (x, y * float("nan")), likelihood=Gaussian(), epochs=1, progress=False)
    with pytest.raises(TypeError, match="pair"):
        fit(_net(), x, likelihood=Gaussian(), epochs=1, progress=False)
