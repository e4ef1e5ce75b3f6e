"""What makes learned dropout rates overconfident: curves over epochs as the network widens and the data shrinks.

For each dataset, training size, width and method (``concrete``,
``variational`` and ``mc`` at a fixed rate), one ReLU MLP of
:func:`bayesdrop.mlp.build_mlp` is trained with the estimators' optimiser
settings (Adam, lr 0.003, batch 64, the KL of variational dropout warmed up
over the first half of the epochs) for a fixed number of epochs, without
early stopping, and every epoch records:

- the training NLL (with the training noise, as :func:`bayesdrop.fit` reports it),
- the validation NLL of the MC predictive (T = 10, the same draws every
  epoch: ``fit(val_samples=10)``) and of the eval-mode pass, on at most
  2,000 validation rows,
- the learned rate of every noisy layer: concrete dropout's p; for
  variational dropout the median over weights of alpha / (1 + alpha) (the
  Bernoulli rate with the same variance) and the fraction of weights with
  log alpha > 3 (pruned).

At the end it adds the MC predictive's validation NLL, accuracy and ECE
(T = 50). Validation data never come from a test split: MNIST's are the
last 10,000 training images (the subsets come from the first 50,000), the
scikit-learn sets' the last 25% of a stratified 75/25 split of the training
part of the classification benchmark's split.

Results append to a JSONL log as runs finish (a rerun skips what is there);
``--report`` writes the summary table and the curves' figure.

    python examples/benchmarks/overconfidence.py --mnist ../shared/data/mnist --log benchmarks/overconfidence.jsonl
    python examples/benchmarks/overconfidence.py --log benchmarks/overconfidence.jsonl --report benchmarks/overconfidence

``--smoke`` runs wine at one width for 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split
from torch import nn

from bayesdrop import Categorical, fit, sample
from bayesdrop.datasets import load_mnist
from bayesdrop.files import atomic_write
from bayesdrop.metrics import accuracy, ece, nll
from bayesdrop.mlp import build_mlp, standardization
from bayesdrop.nn import ConcreteDropout, VariationalLinear

SKLEARN = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}
METHODS = ("concrete", "variational", "mc")
#: Epochs per training size: about the same number of steps where the data are small.
EPOCHS = {1000: 100, 5000: 40, 50000: 12}
#: Validation rows scored every epoch (the final MC scores use them all).
CURVE_ROWS = 2000


def mnist_split(root: str, size: int, seed: int) -> tuple[np.ndarray, ...]:
    """A random ``size`` of the first 50,000 training images, and the last 10,000 as validation."""
    x, y = load_mnist(root, "train")
    x = x.reshape(len(x), -1).astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    idx = rng.permutation(50000)[:size]
    return x[idx], y[idx], x[50000:], y[50000:]


def sklearn_split(name: str, seed: int) -> tuple[np.ndarray, ...]:
    """The classification benchmark's training part, split 75/25 into training and validation."""
    X, y = SKLEARN[name](return_X_y=True)
    X_tr, _, y_tr, _ = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    X_a, X_v, y_a, y_v = train_test_split(X_tr, y_tr, test_size=0.25, stratify=y_tr, random_state=seed)
    return X_a, y_a, X_v, y_v


def rates(net: nn.Module) -> list[dict[str, float]]:
    """The learned noise of every noisy layer, in order."""
    out = []
    for m in net.modules():
        if isinstance(m, ConcreteDropout):
            out.append({"p": float(m.p.detach())})
        elif isinstance(m, VariationalLinear):
            la = m.weight_log_alpha().detach()
            p = torch.sigmoid(la)  # alpha / (1 + alpha)
            out.append({"p": float(p.median()), "pruned": float((la > 3).float().mean())})
    return out


def run_one(
    data: tuple[np.ndarray, ...], method: str, width: int, depth: int, epochs: int, seed: int
) -> dict[str, Any]:
    """Train one network for ``epochs`` and record its curves."""
    X, y, Xv, yv = data
    mean, std = standardization(X)
    x = torch.tensor((X - mean) / std, dtype=torch.float32)
    xv = torch.tensor((Xv - mean) / std, dtype=torch.float32)
    yt, yvt = torch.as_tensor(y), torch.as_tensor(yv)
    torch.manual_seed(seed)
    net = build_mlp(x.shape[1], (width,) * depth, int(max(y.max(), yv.max())) + 1, method, 0.05)  # type: ignore[arg-type]
    curve: list[list[dict[str, float]]] = []
    eval_nll: list[float] = []
    xc, yc = xv[:CURVE_ROWS], yvt[:CURVE_ROWS]

    def record(epoch: int) -> float:
        if epoch < len(curve):  # LambdaLR asks once per parameter group
            return 1.0
        curve.append(rates(net))
        if epoch:  # LambdaLR calls this at construction (epoch 0) and after every epoch
            training = net.training
            net.eval()
            with torch.no_grad():
                eval_nll.append(float(nn.functional.cross_entropy(net(xc), yc)))
            net.train(training)
        return 1.0

    start = time.perf_counter()
    warmup = epochs // 2 if method == "variational" else 0  # the estimators' rule
    hist = fit(net, (x, yt), likelihood=Categorical(), epochs=epochs, lr=3e-3, batch_size=64, val_data=(xc, yc),
               val_samples=10, kl_warmup_epochs=warmup, seed=seed, progress=False,
               scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, record))  # fmt: skip
    seconds = time.perf_counter() - start
    probs = torch.softmax(sample(net, xv, 50, seed=seed).double(), -1).mean(0).numpy()  # float64: no underflow
    labels = yv.astype(np.int64)
    return {
        "train_nll": hist.nll,
        "val_nll": hist.val_nll,
        "eval_val_nll": eval_nll,
        "rates": curve,
        "mc_val_nll": nll(probs, labels),
        "mc_val_acc": accuracy(probs, labels),
        "mc_val_ece": ece(probs, labels, n_bins=15),
        "seconds": seconds,
    }


def configs(mnist: str | None, smoke: bool) -> list[dict[str, Any]]:
    """Every run of the study, cheap ones first."""
    if smoke:
        return [{"dataset": "wine", "size": 0, "width": 16, "depth": 2, "method": m, "epochs": 3} for m in METHODS]
    out = []
    for name in SKLEARN:
        for width, depth in ((50, 1), (256, 2)):
            out += [{"dataset": name, "size": 0, "width": width, "depth": depth, "method": m, "epochs": 200}
                    for m in METHODS]  # fmt: skip
    if mnist:
        for size in EPOCHS:
            for width in (256, 800):
                out += [{"dataset": "mnist", "size": size, "width": width, "depth": 2, "method": m,
                         "epochs": EPOCHS[size]} for m in METHODS]  # fmt: skip
    return out


def key(cfg: dict[str, Any]) -> str:
    return json.dumps({k: cfg[k] for k in ("dataset", "size", "width", "depth", "method", "epochs")}, sort_keys=True)


def run_all(args: argparse.Namespace) -> None:
    log = Path(args.log)
    done = set()
    if log.exists():
        done = {key(json.loads(line)) for line in log.read_text().splitlines() if line.strip()}
    for cfg in configs(args.mnist, args.smoke):
        if key(cfg) in done:
            continue
        if cfg["dataset"] == "mnist":
            data = mnist_split(args.mnist, cfg["size"], seed=0)
        else:
            data = sklearn_split(cfg["dataset"], seed=0)
        result = run_one(data, cfg["method"], cfg["width"], cfg["depth"], cfg["epochs"], seed=0)
        with open(log, "a") as f:
            f.write(json.dumps({**cfg, **result}) + "\n")
        print(f"{cfg['dataset']} {cfg['size']} {cfg['depth']}x{cfg['width']} {cfg['method']}: "
              f"best val NLL {min(result['val_nll']):.3f} at epoch {int(np.argmin(result['val_nll'])) + 1}, "
              f"last {result['val_nll'][-1]:.3f}, MC {result['mc_val_nll']:.3f}, {result['seconds']:.0f} s",
              flush=True)  # fmt: skip


def label(r: dict[str, Any]) -> str:
    size = f" {r['size']}" if r["dataset"] == "mnist" else ""
    return f"{r['dataset']}{size}, {r['depth']}x{r['width']}"


def rate_text(r: dict[str, Any], at: int) -> str:
    layers = r["rates"][at]
    if not layers:
        return "0.05 (fixed)"
    return " / ".join(f"{layer['p']:.2g}" for layer in layers)


def table(rows: list[dict[str, Any]]) -> str:
    """One line per run: best and last validation NLL, the gap to the training NLL, the rates."""
    lines = [
        "| data, net | method | MC val NLL: best (epoch) | last | eval-mode val NLL: best (epoch) | last "
        "| train NLL, last | all validation rows, last: MC NLL / acc / ECE | rates at the MC-best epoch "
        "| rates, last | pruned, last |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        best = int(np.argmin(r["val_nll"]))
        pruned = [layer.get("pruned") for layer in r["rates"][-1]]
        pr = " / ".join(f"{p:.2f}" for p in pruned if p is not None)
        ev = r["eval_val_nll"]
        ev_best = int(np.argmin(ev))
        lines.append(
            f"| {label(r)} | {r['method']} | {r['val_nll'][best]:.3f} ({best + 1}/{r['epochs']}) | "
            f"{r['val_nll'][-1]:.3f} | {ev[ev_best]:.3f} ({ev_best + 1}) | {ev[-1]:.3f} | {r['train_nll'][-1]:.3f} | {r['mc_val_nll']:.3f} / {r['mc_val_acc']:.3f} / "
            f"{r['mc_val_ece']:.3f} | {rate_text(r, best + 1)} | {rate_text(r, -1)} | {pr} |"
        )
    return "\n".join(lines) + "\n"


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation (MC and eval-mode) and training NLL over epochs, one panel per data and net."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(label(r), []).append(r)
    cols = 4
    n_rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4 * cols, 3 * n_rows), squeeze=False)
    colors = {"concrete": "C0", "variational": "C1", "mc": "C2"}
    for ax, (name, runs) in zip(axes.flat, groups.items(), strict=False):
        for r in runs:
            epochs = np.arange(1, len(r["val_nll"]) + 1)
            ax.plot(epochs, r["val_nll"], color=colors[r["method"]], label=f"{r['method']} val, MC")
            ax.plot(epochs, r["eval_val_nll"], color=colors[r["method"]], ls="--", lw=0.8, label="val, eval mode")
            ax.plot(epochs, r["train_nll"], color=colors[r["method"]], ls=":", label=f"{r['method']} train")
        ax.set_title(name, fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("NLL (log scale)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder with the MNIST IDX files (omit to run the scikit-learn sets only)")
    parser.add_argument(
        "--log", default="overconfidence.jsonl", help="JSONL log (appended; a rerun skips what is there)"
    )
    parser.add_argument("--report", help="write REPORT.md (the table) and REPORT.png (the curves) from the log")
    parser.add_argument("--smoke", action="store_true", help="wine, a small net, 3 epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    if not args.report:
        run_all(args)
        return
    rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
    atomic_write(Path(args.report + ".md"), table(rows))
    figure(rows, Path(args.report + ".png"))
    print(table(rows))


if __name__ == "__main__":
    main()
