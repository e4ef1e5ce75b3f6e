"""Temperature scaling: a planted temperature is recovered; the wrapper works with sample and evaluate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop
from bayesdrop.calibrate import TemperatureScaled, fit_noise_scale, fit_temperature, temperature_scale
from bayesdrop.calibrate import _nll as nll_at
from tests.conftest import z_value


def _standard_error_of_log_t(logits: torch.Tensor, labels: torch.Tensor, t_hat: float) -> float:
    # The NLL summed over n examples is a log-likelihood in log T; its curvature at the estimate (the observed
    # Fisher information) gives the standard error of log T_hat: 1 / sqrt(n * d2 mean-NLL / d(log T)^2).
    log_t = torch.tensor(math.log(t_hat), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(nll_at(logits.double(), labels, log_t), log_t, create_graph=True)
    (h,) = torch.autograd.grad(g, log_t)
    return 1.0 / math.sqrt(len(labels) * float(h))


@pytest.mark.parametrize("mc", [False, True])
def test_a_planted_temperature_is_recovered(mc):
    gen = torch.Generator().manual_seed(0)
    n, k, samples, planted = 20_000, 5, 8 if mc else 1, 2.5
    centre = 3.0 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    logits = centre[None] + (0.8 * torch.randn(samples, n, k, generator=gen, dtype=torch.float64) if mc else 0.0)
    probs = torch.softmax(logits / planted, -1).mean(0)  # the (MC) predictive at the planted temperature
    labels = torch.multinomial(probs, 1, generator=gen)[:, 0]
    t_hat = fit_temperature(logits if mc else logits[0], labels)
    se = _standard_error_of_log_t(logits, labels, t_hat)
    assert abs(math.log(t_hat) - math.log(planted)) <= z_value(2) * se
    assert se < 0.05  # the test has power: a 10% error in T is several standard errors away


def test_one_class_is_refused_and_nan_too():
    z = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"'labels' parameter of fit_temperature holds one class only"):
        fit_temperature(z, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'logits' parameter of fit_temperature contains NaN"):
        fit_temperature(torch.full((4, 3), float("nan")), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"'temperature' parameter of TemperatureScaled must be a float > 0"):
        TemperatureScaled(nn.Linear(2, 2), 0.0)


def test_the_wrapper_divides_every_mc_sample_and_works_with_evaluate():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    x, y = torch.randn(120, 2), torch.randint(0, 3, (120,))
    scaled = TemperatureScaled(net, 2.0)
    torch.testing.assert_close(bayesdrop.sample(scaled, x, 7, seed=1), bayesdrop.sample(net, x, 7, seed=1) / 2)
    fitted = temperature_scale(net, x, y, num_samples=10, seed=3)
    from_loader = temperature_scale(net, DataLoader(TensorDataset(x, y), batch_size=256), num_samples=10, seed=3)
    assert float(fitted.temperature) == pytest.approx(float(from_loader.temperature))
    before = bayesdrop.evaluate(net, x, y, num_samples=10, seed=3).mc["nll"]
    after = bayesdrop.evaluate(fitted, x, y, num_samples=10, seed=3).mc["nll"]
    # Fitted on these very examples with the same seed and batches, so on the same draws: the NLL at the fitted
    # temperature is at most the NLL at T = 1, where the optimiser started.
    assert after <= before + 1e-9
    assert float(fitted.temperature) != pytest.approx(1.0)  # and the optimiser moved


def test_deterministic_temperature_leaves_the_predicted_class():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 4))
    x, y = torch.randn(50, 3), torch.randint(0, 4, (50,))
    scaled = temperature_scale(net, x, y, mc=False)
    net.eval()
    assert torch.equal(scaled(x).argmax(1), net(x).argmax(1))


def test_a_planted_noise_scale_is_recovered():
    # Targets drawn from the MC mixture with every noise std times 1.7: the fitted factor is 1.7 within z * SE,
    # the SE from the curvature of the summed log-likelihood in log s (observed Fisher information).
    gen = torch.Generator().manual_seed(1)
    s_planted, n, t = 1.7, 20_000, 4
    mu = torch.randn(t, n, generator=gen, dtype=torch.float64)
    log_var = torch.randn(t, n, generator=gen, dtype=torch.float64) * 0.3 - 1.0
    pick = torch.randint(0, t, (n,), generator=gen)
    rows = torch.arange(n)
    y = mu[pick, rows] + s_planted * log_var[pick, rows].mul(0.5).exp() * torch.randn(
        n, generator=gen, dtype=torch.float64
    )
    s_hat = fit_noise_scale(mu, log_var, y)

    def mean_nll(log_s: torch.Tensor) -> torch.Tensor:
        v = log_var + 2 * log_s
        log_p = -0.5 * (math.log(2 * math.pi) + v + (y - mu).square() / v.exp())
        return -(torch.logsumexp(log_p, 0) - math.log(t)).mean()

    log_s = torch.tensor(math.log(s_hat), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(mean_nll(log_s), log_s, create_graph=True)
    (h,) = torch.autograd.grad(g, log_s)
    se = 1.0 / math.sqrt(n * float(h))
    assert abs(math.log(s_hat) - math.log(s_planted)) <= z_value(2) * se
    assert abs(float(g.detach())) / float(h) < 0.01 * se  # at the optimum: a Newton step is negligible
    assert se < 0.02


def test_noise_scale_refuses_bad_shapes_and_nan():
    with pytest.raises(ValueError, match="'means' and 'log_vars' parameters of fit_noise_scale"):
        fit_noise_scale(torch.zeros(3, 4), torch.zeros(3, 5), torch.zeros(4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_noise_scale(torch.zeros(3, 4), torch.full((3, 4), float("nan")), torch.zeros(4))
