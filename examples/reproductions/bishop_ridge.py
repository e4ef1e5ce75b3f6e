"""Training with input noise is Tikhonov (ridge) regularisation (Bishop 1995).

Claim: for a linear model, least squares on inputs corrupted by Gaussian
noise N(0, sigma^2), in expectation over the noise, is ridge regression with
penalty lambda = N sigma^2 (N the number of training rows):
E ||y - (X + E) w||^2 = ||y - X w||^2 + N sigma^2 ||w||^2. With K noisy copies
of the data the least-squares solution converges to the ridge one as K
grows (its distance falls like 1/sqrt(K)).

On scikit-learn's diabetes data (standardised inputs, centred target):
the ridge solution at lambda = N sigma^2, against least squares on K copies
of X corrupted by ``bayesdrop.nn.GaussianNoise(sigma)``, for K = 1 ... 10,000;
the relative distance ||w_K - w_ridge|| / ||w_ridge|| (mean over 5 seeds) and
the same for ordinary least squares.

    python examples/reproductions/bishop_ridge.py --out reproductions/bishop_ridge
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_diabetes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import cli, finish, save_json

import bayesdrop


def noisy_least_squares(x: torch.Tensor, y: torch.Tensor, sigma: float, copies: int, seed: int) -> torch.Tensor:
    """Least squares on ``copies`` noisy copies of (x, y), accumulated copy by copy (normal equations)."""
    torch.manual_seed(seed)
    layer = bayesdrop.nn.GaussianNoise(sigma).train()
    xtx = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    xty = torch.zeros(x.shape[1], dtype=torch.float64)
    for _ in range(copies):
        xn = layer(x)
        xtx += xn.T @ xn
        xty += xn.T @ y
    return torch.linalg.solve(xtx, xty)


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/bishop_ridge", smoke="K up to 100, 2 seeds", data=False)
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    ks = (1, 10, 100) if args.smoke else (1, 10, 100, 1000, 10_000)
    seeds = 2 if args.smoke else args.seeds
    X, y = load_diabetes(return_X_y=True)
    x = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float64)
    t = torch.tensor(y - y.mean(), dtype=torch.float64)
    n, d = x.shape
    lam = n * args.sigma**2
    ridge = torch.linalg.solve(x.T @ x + lam * torch.eye(d, dtype=torch.float64), x.T @ t)
    ols = torch.linalg.solve(x.T @ x, x.T @ t)
    rel = {}
    for k in ks:
        dists = [
            float((noisy_least_squares(x, t, args.sigma, k, s) - ridge).norm() / ridge.norm()) for s in range(seeds)
        ]
        rel[k] = (float(np.mean(dists)), float(np.std(dists, ddof=1) / np.sqrt(seeds)))
    ols_rel = float((ols - ridge).norm() / ridge.norm())
    out = Path(args.out)
    save_json(out / "results.json", {"sigma": args.sigma, "lambda": lam, "relative_distance": rel, "ols": ols_rel})

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        list(rel),
        [v[0] for v in rel.values()],
        yerr=[v[1] for v in rel.values()],
        marker="o",
        capsize=3,
        label="noisy copies",
    )
    ax.plot(list(rel), [rel[ks[0]][0] / np.sqrt(k) for k in ks], "k:", label="1/sqrt(K)")
    ax.axhline(ols_rel, color="r", linestyle="--", label="ordinary least squares")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("K (noisy copies of the data)")
    ax.set_ylabel("||w_K - w_ridge|| / ||w_ridge||")
    ax.set_title(f"input noise sigma = {args.sigma} vs ridge lambda = N sigma^2 = {lam:.0f}")
    ax.legend()

    settings = f"diabetes (N = {n}, {d} inputs), sigma = {args.sigma}, {seeds} seeds"
    rows = [
        (f"K = {k} noisy copies: distance to ridge", "-> 0 as K grows", f"{m:.4f} ± {se:.4f}", settings)
        for k, (m, se) in rel.items()
    ]
    rows.append(("ordinary least squares: distance to ridge", "(reference)", f"{ols_rel:.4f}", settings))
    return finish(out, fig, "noise_vs_ridge.png", rows)


if __name__ == "__main__":
    main()
