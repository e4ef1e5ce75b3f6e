"""Fast dropout trains faster than sampled dropout (MNIST).

Claim (Wang & Manning 2013, "Fast dropout training"): replacing the sampled
Bernoulli masks by a Gaussian approximation of each unit's pre-activation
(its mean and variance under dropout) trains faster, because one Gaussian
draw per unit has less variance than the masks it stands for. Here: the
784-800-800-10 ReLU net with dropout 0.2 on the inputs and 0.5 on the hidden
units, once with Bernoulli masks (``Dropout`` + ``nn.Linear``) and once with
``FastDropoutLinear`` (the Gaussian pre-activation, the same p), trained
identically (SGD, momentum 0.9, batch 100, lr 0.05 decaying 2% per epoch) on
50,000 training images, the two nets an epoch each in turn (so that both see
the same machine load); the validation error (the other 10,000) after every
epoch; epochs and seconds until it first falls below the target, and the
median seconds per epoch.

    python examples/reproductions/fast_dropout.py --epochs 30 --target 2.0 --out reproductions/fast_dropout
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import DEFAULT_DATA, cli, finish, interleaved, mlp, mnist, save_json, sgd_epochs  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)

import bayesdrop


def fast_net(p_in: float = 0.2, p_hidden: float = 0.5) -> nn.Sequential:
    f = bayesdrop.nn.FastDropoutLinear
    return nn.Sequential(f(784, 800, p_in), nn.ReLU(), f(800, 800, p_hidden), nn.ReLU(), f(800, 10, p_hidden))


def first_below(history: list[dict[str, float]], target_pct: float, n_val: int) -> tuple[int | None, float | None]:
    """Epoch and cumulative seconds at which the validation error first falls below ``target_pct``."""
    seconds = 0.0
    for h in history:
        seconds += h["seconds"]
        if 100 * h["val_errors"] / n_val < target_pct:
            return int(h["epoch"]), seconds
    return None, None


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/fast_dropout", epochs=30, smoke="3,000 images (2,000 / 1,000), 2 epochs")
    ap.add_argument("--target", type=float, default=2.0, help="validation error (%%) to reach")
    args = ap.parse_args(argv)
    x, y = mnist(args.data_dir, "train", 3000 if args.smoke else None)
    cut = 2000 if args.smoke else 50_000
    xa, ya, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    epochs, target = (2, 50.0) if args.smoke else (args.epochs, args.target)
    out = Path(args.out)
    started = time.perf_counter()
    results: dict[str, object] = {"epochs": epochs, "target_pct": target, "n_train": len(xa), "n_val": len(xv)}
    runs = {}
    for name, build in (("sampled masks", lambda: mlp("bernoulli")), ("fast dropout", fast_net)):
        torch.manual_seed(0)
        runs[name] = sgd_epochs(build(), xa, ya, xv, yv, epochs, key="val_errors")
    for name, history in interleaved(runs, epochs).items():  # epoch by epoch in turn: the same load for both
        epoch, seconds = first_below(history, target, len(xv))
        secs = sorted(h["seconds"] for h in history)
        results[name] = {
            "history": history,
            "epoch_to_target": epoch,
            "seconds_to_target": seconds,
            "median_seconds_per_epoch": secs[len(secs) // 2],
        }
    results["seconds"] = time.perf_counter() - started
    save_json(out / "results.json", results)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("sampled masks", "fast dropout"):
        h = results[name]["history"]  # type: ignore[index]
        ax.plot([e["epoch"] for e in h], [100 * e["val_errors"] / len(xv) for e in h], marker=".", label=name)
    ax.axhline(target, color="k", linestyle=":", label=f"target {target}%")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation error (%)")
    ax.set_title("fast dropout vs sampled masks")
    ax.legend()

    def cell(name: str) -> str:
        r = results[name]
        if r["epoch_to_target"] is None:  # type: ignore[index]
            return f"not reached in {epochs} epochs"
        return (
            f"epoch {r['epoch_to_target']}, {r['seconds_to_target']:.0f} s "  # type: ignore[index]
            f"({r['median_seconds_per_epoch']:.1f} s per epoch)"  # type: ignore[index]
        )

    settings = f"784-800-800-10, {len(xa)} train / {len(xv)} validation, up to {epochs} epochs"
    return finish(
        out,
        fig,
        "validation_error.png",
        [
            (f"epochs to {target}% validation error, sampled masks", "slower", cell("sampled masks"), settings),
            (
                f"epochs to {target}% validation error, fast dropout",
                "faster (Wang & Manning 2013)",
                cell("fast dropout"),
                settings,
            ),
        ],
    )


if __name__ == "__main__":
    main()
