"""Quick start: a dropout regressor, MC predictive mean and variance.

Fits a small network with bayesdrop's Dropout on scikit-learn's diabetes data,
draws T predictive samples with ``bayesdrop.sample`` and prints the MC mean and
variance next to the deterministic (eval-mode) prediction.

Run: ``python examples/quickstart.py`` (``--smoke`` for a tiny run).
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_diabetes
from torch import nn

import bayesdrop


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = parser.parse_args(argv)
    steps, num_samples = (20, 10) if args.smoke else (500, 200)

    torch.manual_seed(0)
    X, y = load_diabetes(return_X_y=True)
    x = torch.tensor(X, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    t = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), bayesdrop.nn.Dropout(0.2), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x).squeeze(-1), t).backward()
        opt.step()

    samples = bayesdrop.sample(model, x[:5], num_samples, seed=0).squeeze(-1)  # (T, 5)
    mean, var = samples.mean(0), samples.var(0, unbiased=False)
    det = model.eval()(x[:5]).squeeze(-1).detach()
    for i in range(5):
        print(f"x[{i}]: MC mean {mean[i]:+.3f}  MC var {var[i]:.4f}  deterministic {det[i]:+.3f}  target {t[i]:+.3f}")
    return {"mean": float(mean.mean()), "var": float(var.mean())}


if __name__ == "__main__":
    main()
