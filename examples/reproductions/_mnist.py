"""Shared by the reproduction scripts (not a script itself): MNIST tensors, a training loop, tables."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from bayesdrop.datasets import load_mnist

#: The scripts read MNIST from here unless ``--data-dir`` says otherwise (the test suite skips them without).
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def mnist(data_dir: str | Path, split: str, limit: int | None = None, flat: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST images in [0, 1], ``(n, 784)`` or ``(n, 1, 28, 28)``, and integer labels."""
    images, labels = load_mnist(data_dir, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images).float().div_(255.0)
    x = x.reshape(len(x), -1) if flat else x.unsqueeze(1)
    return x, torch.from_numpy(labels)


def max_norm_(model: nn.Module, c: float) -> None:
    """Srivastava et al.'s max-norm: every unit's incoming weight vector has norm at most ``c``."""
    with torch.no_grad():
        for m in model.modules():
            w = getattr(m, "weight", None)
            if isinstance(w, Tensor) and w.ndim >= 2 and not isinstance(m, nn.modules.batchnorm._BatchNorm):
                norms = w.flatten(1).norm(dim=1).clamp(min=c)
                w.mul_((c / norms).view(-1, *([1] * (w.ndim - 1))))


@torch.no_grad()
def errors(model: nn.Module, x: Tensor, y: Tensor, batch: int = 2000) -> int:
    """Misclassified examples of the deterministic (eval-mode) network."""
    was = model.training
    model.eval()
    wrong = sum(int((model(x[i : i + batch]).argmax(1) != y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    model.train(was)
    return wrong


def train_epochs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    batch_size: int = 100,
    max_norm: float | None = None,
    schedule: Callable[[int], float] | None = None,
    seed: int = 0,
    on_epoch: Callable[[int], dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Minibatch training, one record per epoch as it ends (seconds, mean loss, what ``on_epoch`` adds).

    A generator, so that several models can train epoch by epoch in turn and their times be compared under
    the same load.
    """
    gen = torch.Generator().manual_seed(seed)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    for epoch in range(epochs):
        if schedule is not None:
            for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                g["lr"] = lr * schedule(epoch)
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model, x[idx], y[idx])
            loss.backward()
            optimizer.step()
            if max_norm is not None:
                max_norm_(model, max_norm)
            total += float(loss.detach()) * len(idx)
        record: dict[str, Any] = {"epoch": epoch + 1, "seconds": time.perf_counter() - start, "loss": total / len(x)}
        if on_epoch is not None:
            record.update(on_epoch(epoch))
        yield record


def train(model: nn.Module, x: Tensor, y: Tensor, *, desc: str = "train", **kw: Any) -> list[dict[str, Any]]:
    """:func:`train_epochs` to the end, with a progress bar; the list of epoch records."""
    return list(tqdm(train_epochs(model, x, y, **kw), total=kw["epochs"], desc=desc, leave=False))


def interleaved(runs: dict[str, Iterator[dict[str, Any]]], epochs: int) -> dict[str, list[dict[str, Any]]]:
    """Advance every run one epoch in turn (the same machine load for each), ``epochs`` times."""
    history: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for _ in tqdm(range(epochs), desc="epochs, interleaved", leave=False):
        for name, run in runs.items():
            history[name].append(next(run))
    return history


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return nn.functional.cross_entropy(model(x), y)


def table(rows: list[tuple[str, str, str, str]]) -> str:
    """The markdown table every script prints: claim | paper | ours | settings."""
    lines = ["| claim | paper | ours | settings |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


def save_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON through a temporary name (an interrupted write never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def mlp(noise: str, p_in: float = 0.2, p_hidden: float = 0.5, hidden: int = 800) -> nn.Sequential:
    """784-800-800-10 ReLU with ``noise`` before every linear layer.

    ``"none"``, ``"bernoulli"`` (dropout ``p_in`` on the inputs, ``p_hidden`` on the hidden units),
    ``"gaussian"`` (multiplicative N(1, p/(1-p)) at the same rates) or ``"variational"`` (every linear layer
    a ``VariationalLinear`` with one learned alpha per input unit, initialised at those rates).
    """
    import math

    import bayesdrop

    layers: list[nn.Module] = []
    sizes = [784, hidden, hidden, 10]
    for i in range(3):
        p = p_in if i == 0 else p_hidden
        if noise == "variational":
            la = math.log(p / (1 - p))
            layers.append(bayesdrop.nn.VariationalLinear(sizes[i], sizes[i + 1], alpha="input", init_log_alpha=la))
        else:
            if noise == "bernoulli":
                layers.append(bayesdrop.nn.Dropout(p))
            elif noise == "gaussian":
                layers.append(bayesdrop.nn.GaussianDropout(p))
            elif noise != "none":
                raise ValueError(f"noise must be none, bernoulli, gaussian or variational; got {noise!r}")
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def cli(doc: str, *, out: str, smoke: str, epochs: int | None = None, data: bool = True) -> argparse.ArgumentParser:
    """The options every script shares: --data-dir, --epochs, --out, --smoke."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    if data:
        ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with the MNIST IDX files")
    if epochs is not None:
        ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--out", default=out, help="folder for results.json, table.md and the figure")
    ap.add_argument("--smoke", action="store_true", help=smoke)
    return ap


def splits(args: argparse.Namespace, limit: int, test_limit: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Training and test images (flat), the first ``limit`` / ``test_limit`` of each with ``--smoke``."""
    x, y = mnist(args.data_dir, "train", limit if args.smoke else None)
    xt, yt = mnist(args.data_dir, "test", test_limit if args.smoke else None)
    return x, y, xt, yt


def sgd_epochs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    xt: Tensor,
    yt: Tensor,
    epochs: int,
    *,
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor] = cross_entropy,
    max_norm: float | None = None,
    key: str = "test_errors",
) -> Iterator[dict[str, Any]]:
    """The scripts' classifier recipe: SGD (lr 0.05, momentum 0.9, batch 100, lr x 0.98 per epoch).

    Records ``key``: the errors of the eval-mode net on ``(xt, yt)`` after every epoch.
    """
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return train_epochs(
        model,
        x,
        y,
        epochs=epochs,
        loss_fn=loss_fn,
        optimizer=opt,
        max_norm=max_norm,
        schedule=lambda e: 0.98**e,
        on_epoch=lambda e: {key: errors(model, xt, yt)},
    )


def sgd_run(
    model: nn.Module, x: Tensor, y: Tensor, xt: Tensor, yt: Tensor, epochs: int, desc: str, **kw: Any
) -> list[dict[str, Any]]:
    """:func:`sgd_epochs` to the end, with a progress bar."""
    return list(tqdm(sgd_epochs(model, x, y, xt, yt, epochs, **kw), total=epochs, desc=desc, leave=False))


def finish(out: Path, fig: Any, figure: str, rows: list[tuple[str, str, str, str]]) -> str:
    """Save the figure and table.md in ``out``, print the table and return it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / figure, dpi=120)
    plt.close(fig)
    text = table(rows)
    (out / "table.md").write_text(text)
    print(text)
    return text
