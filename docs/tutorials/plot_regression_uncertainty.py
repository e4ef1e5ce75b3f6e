"""
Learned noise in regression: epistemic and aleatoric uncertainty
================================================================

A network with variational dropout layers (:class:`bayesdrop.nn.VariationalLinear`)
and a Gaussian likelihood with a learned noise std is fitted on a 1-D
problem with a gap in its inputs. The MC samples' spread is the epistemic
part (what the weights do not know: it grows in the gap and outside the
data); the learned noise is the aleatoric part (what no amount of data
removes).
"""

# %%
# Data with a gap, and the model
# ------------------------------

import matplotlib.pyplot as plt
import torch
from torch import nn

import bayesdrop

torch.manual_seed(0)
x = torch.cat([torch.empty(100).uniform_(-2.0, -0.5), torch.empty(100).uniform_(0.5, 2.0)])[:, None]
y = torch.sin(2 * x[:, 0]) + 0.15 * torch.randn(200)
net = nn.Sequential(
    bayesdrop.nn.VariationalLinear(1, 64),
    nn.ReLU(),
    bayesdrop.nn.VariationalLinear(64, 64),
    nn.ReLU(),
    bayesdrop.nn.VariationalLinear(64, 1),
)
lik = bayesdrop.Gaussian()  # homoscedastic noise, learned with the weights
# the KL weight grows over the first half: without the warm-up it prunes the net before it fits
history = bayesdrop.fit(
    net, (x, y), likelihood=lik, epochs=300, lr=1e-2, batch_size=50, kl_warmup_epochs=150, seed=0, progress=False
)
print(f"learned noise std {lik.noise_std.item():.3f} (true 0.15); weights pruned: {bayesdrop.sparsity(net):.0%}")

# %%
# The predictive distribution
# ---------------------------
# ``sample`` gives T sampled means per input; their variance is the epistemic
# part, the learned noise variance the aleatoric part.

grid = torch.linspace(-3, 3, 300)[:, None]
means = bayesdrop.sample(net, grid, 200, seed=0)[..., 0]  # (T, N)
mean, epistemic = means.mean(0), means.var(0)
total = (epistemic + lik.noise_std.detach() ** 2).sqrt()

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.fill_between(grid[:, 0], mean - 2 * total, mean + 2 * total, alpha=0.2, label="±2 std, total")
ax.fill_between(
    grid[:, 0], mean - 2 * epistemic.sqrt(), mean + 2 * epistemic.sqrt(), alpha=0.4, label="±2 std, epistemic"
)
ax.plot(grid[:, 0], mean, lw=1.5, label="MC mean")
ax.plot(grid[:, 0], torch.sin(2 * grid[:, 0]), "k--", lw=1, label="truth")
ax.scatter(x[:, 0], y, s=6, c="k", alpha=0.5)
ax.set_xlabel("x")
ax.legend(loc="lower left", fontsize=8)
ax.set_title("variational dropout with a learned noise")
plt.show()

inside = (grid[:, 0].abs() > 0.6) & (grid[:, 0].abs() < 1.9)
gap = grid[:, 0].abs() < 0.4
print(
    f"epistemic std: {epistemic[inside].sqrt().mean():.3f} where the data are, {epistemic[gap].sqrt().mean():.3f} in the gap"
)

# %%
# Calibration of the intervals on fresh data
# ------------------------------------------
# ``evaluate`` with the likelihood reads the outputs as means with the learned
# noise and reports interval coverage, CRPS and NLL.

x_new = torch.cat([torch.empty(500).uniform_(-2.0, -0.5), torch.empty(500).uniform_(0.5, 2.0)])[:, None]
y_new = torch.sin(2 * x_new[:, 0]) + 0.15 * torch.randn(1000)
ev = bayesdrop.evaluate(net, x_new, y_new, likelihood=lik, num_samples=200, seed=0)
print({k: round(v, 3) for k, v in ev.mc.items() if k in ("rmse", "nll", "crps", "coverage_95")})
