"""Sparse variational dropout compresses LeNets with no loss of accuracy (MNIST).

Claims (Molchanov, Ashukha & Vetrov 2017, table 1): with one learned alpha
per weight and the log-uniform prior, LeNet-300-100 reaches 1.92% test error
with 68x fewer weights (98.9%, 97.2% and 62.0% of the weights of its three
layers pruned) and LeNet-5-Caffe 0.75% with 280x fewer weights.

The paper's recipe as we read it (sec. 5 and the authors' code): Adam, batch
100, 200 epochs, the learning rate decayed linearly to zero, the KL term
weighted in from zero, weights with log alpha > 3 pruned at test time. Here:
``bayesdrop.fit`` from DataLoaders with Adam at lr 1e-3 decayed linearly to
zero over the epochs run, the KL warmed up over the first 10% of them, a
checkpoint after every epoch (rerunning the command resumes); the epochs
actually run are in the table. Test error of the deterministic pass (mean
weights, pruned), per-layer sparsity and compression (all weights / kept
weights); the log-alpha histograms of every layer
(``bayesdrop.plots.log_alpha_histogram``).

    python examples/reproductions/sparse_vd.py --epochs 30 --lenet5-epochs 10 --out reproductions/sparse_vd
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _mnist import DEFAULT_DATA, cli, errors, finish, save_json, splits  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)
from mnist_cnn import lenet5

import bayesdrop
from bayesdrop.nn import VariationalConv2d, VariationalLinear

PAPER = {
    "LeNet-300-100": ("1.92%", "68x", "98.9%, 97.2%, 62.0%"),
    "LeNet-5": ("0.75%", "280x", "not quoted here"),
}


def lenet300(init_log_alpha: float = -4.0) -> nn.Sequential:
    v = VariationalLinear
    kw = {"init_log_alpha": init_log_alpha}
    return nn.Sequential(v(784, 300, **kw), nn.ReLU(), v(300, 100, **kw), nn.ReLU(), v(100, 10, **kw))


def layers_of(model: nn.Module) -> list[VariationalLinear | VariationalConv2d]:
    return [m for m in model.modules() if isinstance(m, (VariationalLinear, VariationalConv2d))]


def run(
    name: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    xt: torch.Tensor,
    yt: torch.Tensor,
    epochs: int,
    out: Path,
    smoke: bool,
) -> dict[str, object]:
    start = time.perf_counter()
    history = bayesdrop.fit(
        model,
        DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True),
        likelihood=bayesdrop.Categorical(),
        epochs=epochs,
        lr=1e-3,
        scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: max(0.0, 1 - e / epochs)),
        kl_warmup_epochs=max(1, epochs // 10),
        checkpoint=None if smoke else out / f"{name}-checkpoint.pt",
        resume=not smoke,
        seed=0,
        progress=not smoke,
    )
    layers = layers_of(model)
    total = sum(m.weight.numel() for m in layers)
    kept = sum(int((m.weight_log_alpha() <= m.threshold).sum()) for m in layers)
    return {
        "epochs_run": len(history.epoch),
        "train_seconds_this_call": time.perf_counter() - start,
        "test_errors": errors(model, xt, yt),
        "pruned_per_layer": [float((m.weight_log_alpha() > m.threshold).float().mean()) for m in layers],
        "compression": total / max(1, kept),
        "weights": total,
    }


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/sparse_vd", smoke="2,000 train / 1,000 test images, 1 epoch each")
    ap.add_argument("--epochs", type=int, default=30, help="LeNet-300-100 epochs (the paper: 200)")
    ap.add_argument("--lenet5-epochs", type=int, default=10, help="LeNet-5 epochs (the paper: 200)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y, xt, yt = splits(args, 2000, 1000)
    xi, xti = x.view(-1, 1, 28, 28), xt.view(-1, 1, 28, 28)
    torch.manual_seed(0)
    models = {"LeNet-300-100": lenet300(), "LeNet-5": lenet5()}
    results = {
        "LeNet-300-100": run(
            "lenet300", models["LeNet-300-100"], x, y, xt, yt, 1 if args.smoke else args.epochs, out, args.smoke
        ),
        "LeNet-5": run(
            "lenet5", models["LeNet-5"], xi, y, xti, yt, 1 if args.smoke else args.lenet5_epochs, out, args.smoke
        ),
    }

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        bayesdrop.plots.log_alpha_histogram(model, ax=ax)
        ax.set_title(f"{name} ({results[name]['epochs_run']} epochs)")
    save_json(out / "results.json", results)

    rows = []
    for name, r in results.items():
        err, comp, per = PAPER[name]
        settings = f"{r['epochs_run']} epochs (paper 200), Adam 1e-3 linear decay, {len(x)} train / {len(xt)} test"
        pruned = ", ".join(f"{100 * p:.1f}%" for p in r["pruned_per_layer"])  # type: ignore[attr-defined]
        rows.append((f"{name}: test error", err, f"{100 * r['test_errors'] / len(xt):.2f}%", settings))  # type: ignore[operator]
        rows.append((f"{name}: compression", comp, f"{r['compression']:.0f}x", settings))
        rows.append((f"{name}: weights pruned per layer", per, pruned, settings))
    return finish(out, fig, "log_alpha.png", rows)


if __name__ == "__main__":
    main()
