"""Dropout makes hidden activations sparser and features less co-adapted (an MNIST autoencoder).

Claims (Srivastava et al. 2014, sec. 7.1-7.2, figures 7 and 8): an autoencoder
with 256 ReLU hidden units trained on MNIST without dropout learns features
that are co-adapted and not individually meaningful; with dropout 0.5 on the
hidden units the features look like strokes and edges, the hidden
activations become sparse (the mean activation of a unit drops from about
2.0 to about 0.7 in their figure 8) and most activations are near zero.

784-256-784 with a ReLU code and a sigmoid output, trained on the training
images with the binary cross-entropy of the reconstruction (Adam, lr 1e-3,
batch 100); measured on the test images with ``bayesdrop.diagnostics``
(eval mode): the units' mean activations, the fraction of zero activations,
the co-adaptation (mean absolute correlation between hidden units), and the
first-layer features as grids.

    python examples/reproductions/features_and_sparsity.py --epochs 20 --out reproductions/features
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import DEFAULT_DATA, cli, finish, save_json, splits, train  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)

import bayesdrop
from bayesdrop.diagnostics import activation_statistics, coadaptation


def autoencoder(p: float, hidden: int = 256) -> nn.Sequential:
    """784-256-784: ReLU code (index 1), dropout ``p`` on it, sigmoid reconstruction."""
    return nn.Sequential(
        nn.Linear(784, hidden), nn.ReLU(), bayesdrop.nn.Dropout(p), nn.Linear(hidden, 784), nn.Sigmoid()
    )


def reconstruction(model: nn.Module, x: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy(model(x), x, reduction="sum") / len(x)


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/features", epochs=20, smoke="2,000 train / 500 test images, 1 epoch")
    args = ap.parse_args(argv)
    epochs = 1 if args.smoke else args.epochs
    out = Path(args.out)
    x, _, xt, _ = splits(args, 2000, 500)
    started = time.perf_counter()
    stats, models, results = {}, {}, {"epochs": epochs, "n_train": len(x)}
    for name, p in (("no dropout", 0.0), ("dropout 0.5", 0.5)):
        torch.manual_seed(0)
        model = autoencoder(p)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        history = train(model, x, x, epochs=epochs, loss_fn=reconstruction, optimizer=opt, desc=name)
        s = activation_statistics(model, xt, ["1"])["1"]
        stats[name], models[name] = s, model
        results[name] = {
            "reconstruction_bce": history[-1]["loss"],
            "mean_activation": float(s.mean.mean()),
            "fraction_zero": s.near_zero,
            "coadaptation": coadaptation(model, xt, "1"),
            "dead_units": int((s.unit_near_zero == 1.0).sum()),
        }
    results["seconds"] = time.perf_counter() - started
    save_json(out / "results.json", results)

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        bayesdrop.plots.feature_grid(model[0].weight[:100], (28, 28), ncols=10, ax=ax)
        ax.set_title(f"{name}: first 100 features")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "features.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    bayesdrop.plots.activation_histograms(stats, which="mean", ax=axes[0])
    bayesdrop.plots.activation_histograms(stats, which="activations", ax=axes[1])
    axes[0].set_title("units' mean activations (fig. 8a)")
    axes[1].set_title("activations (fig. 8b)")

    a, b = results["no dropout"], results["dropout 0.5"]
    settings = f"784-256-784 autoencoder, {epochs} epochs, Adam 1e-3, test set of {len(xt)}"
    return finish(
        out,
        fig,
        "activations.png",
        [
            (
                "mean activation of a hidden unit",
                "about 2.0 -> 0.7 (fig. 8)",
                f"{a['mean_activation']:.2f} -> {b['mean_activation']:.2f}",
                settings,
            ),
            (
                "fraction of zero activations",
                "higher with dropout (fig. 8b)",
                f"{a['fraction_zero']:.2f} -> {b['fraction_zero']:.2f}",
                settings,
            ),
            (
                "co-adaptation (mean abs. correlation of units)",
                "lower with dropout (sec. 7.1)",
                f"{a['coadaptation']:.3f} -> {b['coadaptation']:.3f}",
                settings,
            ),
            ("features", "strokes and edges with dropout (fig. 7)", "features.png", settings),
        ],
    )


if __name__ == "__main__":
    main()
