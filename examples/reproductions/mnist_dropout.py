"""Dropout lowers MNIST error, and MC averaging reaches weight scaling with about 50 samples.

Claims: Hinton et al. (2012) report about 160 test errors for a 784-800-800-10
net without dropout and about 110 with it (0.2 on the inputs, 0.5 on the
hidden units, max-norm weights); Srivastava et al. (2014, sec. 7.5, fig. 11)
show that averaging the softmax over T sampled masks reaches the error of the
weight-scaled (eval-mode) net at about T = 50.

Both nets train with SGD (momentum 0.9, batch 100, lr 0.05 decaying by 2%
per epoch; max-norm 3.5 on the dropout net, as Srivastava et al.); the MC
curve uses ``bayesdrop.sample`` on the test set with R independent sets of
100 samples (mean ± standard error over the sets).

    python examples/reproductions/mnist_dropout.py --epochs 50 --out reproductions/mnist_dropout
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import DEFAULT_DATA, cli, finish, mlp, save_json, sgd_run, splits  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)

import bayesdrop

T_GRID = (1, 2, 3, 5, 10, 20, 30, 50, 70, 100)


def mc_curve(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int, t_max: int) -> dict[str, list[float]]:
    """Test error of the MC average of the first T softmaxes, per T, mean and SE over ``repeats`` sets."""
    grid = [t for t in T_GRID if t <= t_max]
    errs = np.zeros((repeats, len(grid)))
    for r in range(repeats):
        probs = torch.softmax(bayesdrop.sample(model, x, t_max, seed=1000 + r), -1)  # (T, N, 10)
        running = probs.cumsum(0)
        for j, t in enumerate(grid):
            errs[r, j] = float((running[t - 1].argmax(1) != y).sum())
    se = errs.std(0, ddof=1) / np.sqrt(repeats) if repeats > 1 else np.full(len(grid), np.nan)
    return {"T": grid, "errors": errs.mean(0).tolist(), "se": se.tolist()}


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/mnist_dropout", epochs=50, smoke="2,000 train / 1,000 test images, 1 epoch")
    ap.add_argument("--repeats", type=int, default=3, help="independent sets of 100 MC samples")
    args = ap.parse_args(argv)
    t_max = 10 if args.smoke else 100
    epochs = 1 if args.smoke else args.epochs
    out = Path(args.out)
    x, y, xt, yt = splits(args, 2000, 1000)
    results: dict[str, object] = {"epochs": epochs, "n_train": len(x), "n_test": len(xt)}
    started = time.perf_counter()
    models = {}
    for name, dropout in (("no dropout", False), ("dropout", True)):
        torch.manual_seed(0)
        model = mlp("bernoulli" if dropout else "none")
        history = sgd_run(model, x, y, xt, yt, epochs, name, max_norm=3.5 if dropout else None)
        results[name] = {"test_errors": history[-1]["test_errors"], "history": history}
        models[name] = model
    curve = mc_curve(models["dropout"], xt, yt, args.repeats, t_max)
    results["mc_curve"] = curve
    results["weight_scaling_errors"] = results["dropout"]["test_errors"]  # type: ignore[index]
    results["seconds"] = time.perf_counter() - started
    save_json(out / "results.json", results)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(curve["T"], curve["errors"], yerr=curve["se"], marker="o", capsize=3, label="MC average of T masks")
    ws = results["weight_scaling_errors"]
    ax.axhline(ws, color="k", linestyle="--", label=f"weight scaling (eval pass): {ws}")  # type: ignore[arg-type]
    ax.set_xscale("log")
    ax.set_xlabel("T (sampled masks)")
    ax.set_ylabel(f"test errors (of {len(xt)})")
    ax.set_title("MC averaging vs weight scaling (Srivastava et al. fig. 11)")
    ax.legend()

    no, do = results["no dropout"]["test_errors"], results["dropout"]["test_errors"]  # type: ignore[index]
    t50 = dict(zip(curve["T"], curve["errors"], strict=True))
    settings = f"{epochs} epochs, {len(x)} train / {len(xt)} test, SGD 0.05 momentum 0.9, batch 100"
    return finish(
        out,
        fig,
        "mc_vs_weight_scaling.png",
        [
            ("784-800-800-10 without dropout: test errors", "about 160 (Hinton et al. 2012)", f"{no}", settings),
            ("with dropout 0.2 / 0.5, max-norm 3.5: test errors", "about 110", f"{do}", settings),
            (
                "MC average reaches weight scaling by T = 50",
                "yes (Srivastava et al. sec. 7.5)",
                f"T=50: {t50.get(50, float('nan')):.1f}, T=100: {t50.get(100, float('nan')):.1f}, WS: {do}",
                f"{args.repeats} sets of {t_max} samples",
            ),
        ],
    )


if __name__ == "__main__":
    main()
