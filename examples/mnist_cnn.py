"""A real workload end to end: sparse variational LeNet-5 on MNIST from DataLoaders.

LeNet-5 (the Caffe variant of Molchanov et al. 2017: conv 20@5x5, max-pool,
conv 50@5x5, max-pool, 800-500-10) built from ``VariationalConv2d`` and
``VariationalLinear``, trained by ``bayesdrop.fit`` from a ``DataLoader``
over the original IDX files, evaluated by ``bayesdrop.evaluate`` from a
``DataLoader`` (MC predictive and the deterministic pass), report written.
Training checkpoints after every epoch; rerunning the same command resumes.

Run: ``python examples/mnist_cnn.py --data-dir ../shared/data/mnist --out mnist-report``
(``--smoke``: 1,024 training and 512 test images, one epoch).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop
from bayesdrop.datasets import load_mnist
from bayesdrop.nn import VariationalConv2d, VariationalLinear

#: The example reads MNIST from here unless ``--data-dir`` says otherwise (the test suite skips it without).
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def lenet5(init_log_alpha: float = -4.0) -> nn.Sequential:
    """LeNet-5-Caffe with a learned alpha per weight in every layer."""
    kw = {"init_log_alpha": init_log_alpha}
    return nn.Sequential(
        VariationalConv2d(1, 20, 5, **kw),
        nn.ReLU(),
        nn.MaxPool2d(2),
        VariationalConv2d(20, 50, 5, **kw),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        VariationalLinear(800, 500, **kw),
        nn.ReLU(),
        VariationalLinear(500, 10, **kw),
    )


def mnist(data_dir: str | Path, split: str, limit: int | None = None) -> TensorDataset:
    """MNIST as a TensorDataset of (1, 28, 28) floats in [0, 1] and integer labels."""
    images, labels = load_mnist(data_dir, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    return TensorDataset(x, torch.from_numpy(labels))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kl-warmup-epochs", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=50, help="MC samples T per test image")
    parser.add_argument("--out", default="mnist-report", help="report folder; the checkpoint goes beside it")
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = parser.parse_args(argv)
    n_train, n_test = (1024, 512) if args.smoke else (None, None)
    epochs = 1 if args.smoke else args.epochs
    num_samples = 4 if args.smoke else args.num_samples

    train = mnist(args.data_dir, "train", n_train)
    test = mnist(args.data_dir, "test", n_test)
    torch.manual_seed(0)
    model = lenet5()
    out = Path(args.out)
    checkpoint = out.with_name(out.name + "-checkpoint.pt")
    start = time.perf_counter()
    history = bayesdrop.fit(
        model,
        DataLoader(train, batch_size=args.batch_size, shuffle=True),
        likelihood=bayesdrop.Categorical(),
        epochs=epochs,
        lr=args.lr,
        kl_warmup_epochs=min(args.kl_warmup_epochs, epochs),
        checkpoint=None if args.smoke else checkpoint,
        resume=not args.smoke,
        seed=0,
        progress=not args.smoke,
    )
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    ev = bayesdrop.evaluate(
        model, DataLoader(test, batch_size=500), num_samples=num_samples, seed=0, progress=not args.smoke
    )
    eval_s = time.perf_counter() - start
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (VariationalConv2d, VariationalLinear)))
    sparsity = bayesdrop.sparsity(model)
    per_layer = [
        float((m.log_alpha > m.threshold).float().mean())
        for m in model.modules()
        if isinstance(m, (VariationalConv2d, VariationalLinear))
    ]
    result = {
        "epochs": len(history.epoch),
        "seconds_per_epoch": train_s / max(1, epochs),
        "test_error_mc": 1 - ev.mc["accuracy"],
        "test_error_deterministic": 1 - ev.deterministic["accuracy"],
        "test_errors_mc": round((1 - ev.mc["accuracy"]) * len(ev.targets)),
        "nll_mc": ev.mc["nll"],
        "ece_mc": ev.mc["ece"],
        "ece_deterministic": ev.deterministic["ece"],
        "sparsity": sparsity,
        "compression": 1 / max(1e-12, 1 - sparsity),
        "evaluate_seconds": eval_s,
    }
    print("| quantity | value |\n|---|---|")
    print(f"| epochs run (this call + resumed) | {len(history.epoch)} of {epochs} |")
    print(f"| training time per epoch (s) | {result['seconds_per_epoch']:.1f} |")
    print(f"| test error, MC (T={num_samples}) | {100 * result['test_error_mc']:.2f}% ({result['test_errors_mc']}) |")
    print(f"| test error, deterministic pass | {100 * result['test_error_deterministic']:.2f}% |")
    print(f"| NLL / ECE, MC | {result['nll_mc']:.4f} / {result['ece_mc']:.4f} |")
    print(f"| ECE, deterministic | {result['ece_deterministic']:.4f} |")
    print(f"| weights pruned (log alpha > 3) | {100 * sparsity:.1f}% of {weights:,} ({result['compression']:.1f}x) |")
    print(f"| pruned per layer | {', '.join(f'{100 * s:.1f}%' for s in per_layer)} |")
    print(f"| evaluate time (s) | {eval_s:.1f} |")
    ev.meta.update(example="examples/mnist_cnn.py", **{k: float(v) for k, v in result.items()})
    report = bayesdrop.write_report(ev, out, overwrite=True)  # metrics.json carries the result in "meta"
    print(f"wrote {report}/index.html")
    return result


if __name__ == "__main__":
    main()
