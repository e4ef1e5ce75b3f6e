"""Stochastic depth: shorter epochs and no loss of accuracy (a residual network on MNIST).

Claim (Huang et al. 2016, "Deep networks with stochastic depth"): dropping
whole residual blocks during training, with the linear-decay rule (block l of
L dropped with probability l / L * p_L, p_L = 0.5), cuts the training time by
about 25% (the expected depth is 3/4 of the network) and lowers the test
error against the same network at constant depth.

A residual MLP on flattened MNIST: 784 -> 128, then 20 blocks
x + f(x), f = Linear-ReLU-Linear (128 units), then ReLU -> 10. Three runs:
constant depth; ``bayesdrop.nn.StochasticDepth`` with ``linear_decay`` (one
coin per example, so every branch is still computed: the regularisation of
stochastic depth without its saving); and Huang et al.'s form, one coin per
mini-batch that skips the dropped blocks' computation (defined here, 15
lines). Adam 1e-3, batch 128, the three models an epoch each in turn (the
same machine load for each); median seconds per epoch and test errors.

    python examples/reproductions/stochastic_depth.py --epochs 10 --out reproductions/stochastic_depth
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import DEFAULT_DATA, cli, cross_entropy, errors, finish, interleaved, save_json, splits, train_epochs  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)

import bayesdrop

BLOCKS, WIDTH = 20, 128


class SkipBlock(nn.Module):
    """Huang et al.'s stochastic depth: in training the whole mini-batch skips the branch with probability p.

    Eval: ``x + (1 - p) f(x)`` (their test rule).
    """

    def __init__(self, block: nn.Module, p: float) -> None:
        super().__init__()
        self.block, self.p = block, p

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            if float(torch.rand(())) < self.p:
                return x  # the branch is not computed at all
            return x + self.block(x)
        return x + (1 - self.p) * self.block(x)


class Residual(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def resnet(kind: str) -> nn.Sequential:
    ps = bayesdrop.nn.linear_decay(BLOCKS, 0.5)
    blocks: list[nn.Module] = []
    for p in ps:
        f = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH))
        if kind == "constant":
            blocks.append(Residual(f))
        elif kind == "per example":
            blocks.append(bayesdrop.nn.StochasticDepth(f, p))
        else:
            blocks.append(SkipBlock(f, p))
    return nn.Sequential(nn.Linear(784, WIDTH), *blocks, nn.ReLU(), nn.Linear(WIDTH, 10))


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/stochastic_depth", epochs=10, smoke="2,000 train / 1,000 test, 1 epoch")
    args = ap.parse_args(argv)
    epochs = 1 if args.smoke else args.epochs
    out = Path(args.out)
    x, y, xt, yt = splits(args, 2000, 1000)
    started = time.perf_counter()
    results: dict[str, object] = {"epochs": epochs, "blocks": BLOCKS, "width": WIDTH}
    kinds = ("constant", "per example", "per mini-batch, skipped")
    runs = {}
    for kind in kinds:
        torch.manual_seed(0)
        model = resnet(kind)
        runs[kind] = train_epochs(
            model,
            x,
            y,
            epochs=epochs,
            loss_fn=cross_entropy,
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
            batch_size=128,
            on_epoch=lambda e, m=model: {"test_errors": errors(m, xt, yt)},
        )
    for kind, history in interleaved(runs, epochs).items():  # an epoch of each in turn: the same load for all
        secs = sorted(h["seconds"] for h in history)
        results[kind] = {
            "test_errors": history[-1]["test_errors"],
            "median_seconds_per_epoch": secs[len(secs) // 2],
            "history": history,
        }
    results["seconds"] = time.perf_counter() - started
    save_json(out / "results.json", results)

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind in kinds:
        h = results[kind]["history"]  # type: ignore[index]
        t = [sum(e["seconds"] for e in h[: i + 1]) for i in range(len(h))]
        ax.plot(t, [100 * e["test_errors"] / len(xt) for e in h], marker=".", label=kind)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"{BLOCKS}-block residual MLP: stochastic depth")
    ax.legend()

    c, e, b = (results[k] for k in kinds)
    settings = f"{BLOCKS} blocks x {WIDTH}, {epochs} epochs, Adam 1e-3, {len(x)} train / {len(xt)} test"
    ratio_e = e["median_seconds_per_epoch"] / c["median_seconds_per_epoch"]  # type: ignore[index]
    ratio_b = b["median_seconds_per_epoch"] / c["median_seconds_per_epoch"]  # type: ignore[index]
    return finish(
        out,
        fig,
        "test_error_vs_time.png",
        [
            ("time per epoch vs constant depth (mini-batch skip)", "about 0.75", f"{ratio_b:.2f}", settings),
            (
                "time per epoch vs constant depth (per-example DropPath)",
                "(computes every branch)",
                f"{ratio_e:.2f}",
                settings,
            ),
            (
                "test errors: constant / per example / mini-batch",
                "lower with stochastic depth",
                f"{c['test_errors']} / {e['test_errors']} / {b['test_errors']}",  # type: ignore[index]
                settings,
            ),
        ],
    )


if __name__ == "__main__":
    main()
