"""Every method of ``DropoutClassifier`` on scikit-learn's digits, breast_cancer and wine.

For each dataset and seed: a stratified 75/25 train/test split (the seed
picks the split and the network's initialisation), the estimator with its
defaults and only ``method`` changed, test accuracy, NLL and ECE (15 equal-
width bins) of the MC predictive; the table gives the mean and standard error
over the seeds. Results go to a JSONL log as they finish (a rerun skips what
is there).

    python examples/benchmarks/classification.py --seeds 0 1 2 3 4 --out benchmarks/classification.md

``--validation`` scores on the last 25% of each training split instead of
the test split (how the defaults were chosen); ``--set key=value`` overrides
an estimator parameter for every method (for example ``--set epochs=400``).
``--datasets mnist1000 mnist5000 mnist60000`` adds MNIST subsets (the
training rows drawn by the seed, the test file scores; ``--mnist DIR``).
``--smoke`` runs one seed of wine for 5 epochs.
"""

from __future__ import annotations

import argparse
import ast
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
from tqdm.auto import tqdm

from bayesdrop.datasets import load_mnist
from bayesdrop.files import atomic_write
from bayesdrop.metrics import accuracy, ece, nll
from bayesdrop.sklearn import METHODS, DropoutClassifier

LOADERS = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}


#: MNIST subsets: training rows drawn (by the seed) from the 60,000 training images; the test file scores.
MNIST_SIZES = {"mnist1000": 1000, "mnist5000": 5000, "mnist60000": 60000}
MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def mnist_split(dataset: str, seed: int, validation: bool, root: Path) -> tuple[np.ndarray, ...]:
    """A seeded subset of the training images and the test file; ``validation``: the last 10,000 training
    images score and the subset comes from the first 50,000 (so "mnist60000" trains on 50,000)."""
    x, y = load_mnist(root, "train")
    x = x.reshape(len(x), -1).astype(np.float64) / 255.0
    pool = 50000 if validation else 60000
    idx = np.random.default_rng(seed).permutation(pool)[: min(MNIST_SIZES[dataset], pool)]
    if validation:
        return x[idx], x[50000:], y[idx], y[50000:]
    x_te, y_te = load_mnist(root, "test")
    return x[idx], x_te.reshape(len(x_te), -1).astype(np.float64) / 255.0, y[idx], y_te


def data_split(dataset: str, seed: int, validation: bool, mnist: Path) -> tuple[np.ndarray, ...]:
    """X_train, X_score, y_train, y_score: the test split, or with ``validation`` a part of the training split."""
    if dataset in MNIST_SIZES:
        return mnist_split(dataset, seed, validation, mnist)
    X, y = LOADERS[dataset](return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    if validation:
        X_tr, X_te, y_tr, y_te = train_test_split(X_tr, y_tr, test_size=0.25, stratify=y_tr, random_state=seed)
    return X_tr, X_te, y_tr, y_te


def run_one(
    dataset: str, seed: int, method: str, params: dict[str, Any], validation: bool, mnist: Path = MNIST_DIR
) -> dict[str, Any]:
    """Fit one estimator on one split and score it."""
    X_tr, X_te, y_tr, y_te = data_split(dataset, seed, validation, mnist)
    start = time.perf_counter()
    clf = DropoutClassifier(method=method, random_state=seed, **params).fit(X_tr, y_tr)  # type: ignore[arg-type]
    probs = clf.predict_proba(X_te)
    labels = np.searchsorted(clf.classes_, y_te)
    return {
        "dataset": dataset,
        "seed": seed,
        "method": method,
        "params": params,
        "validation": validation,
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": ece(probs, labels, n_bins=15),
        "seconds": time.perf_counter() - start,
        "epochs_run": int(clf.n_iter_),
        "best_epoch": clf.best_epoch_,
        "temperature": clf.temperature_,
    }


def _mean_se(values: list[float]) -> str:
    a = np.asarray(values)
    if len(a) == 1:
        return f"{a[0]:.3f} (1 seed)"
    return f"{a.mean():.3f} ± {a.std(ddof=1) / math.sqrt(len(a)):.3f}"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per dataset and method, mean ± SE over seeds."""
    lines = ["| dataset | method | seeds | accuracy | NLL | ECE |", "|---|---|---|---|---|---|"]
    for d in [*LOADERS, *MNIST_SIZES]:
        for m in METHODS:
            rs = [r for r in results if r["dataset"] == d and r["method"] == m]
            if rs:
                lines.append(
                    f"| {d} | {m} | {len(rs)} | {_mean_se([r['accuracy'] for r in rs])} | "
                    f"{_mean_se([r['nll'] for r in rs])} | {_mean_se([r['ece'] for r in rs])} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=[*LOADERS, *MNIST_SIZES])
    ap.add_argument("--mnist", type=Path, default=MNIST_DIR, help="folder of the MNIST IDX files")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--validation", action="store_true", help="score on a validation part of the training split")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="estimator parameters")
    ap.add_argument("--out", default="classification.md", help="Markdown table (the log is <out>.jsonl)")
    ap.add_argument("--smoke", action="store_true", help="wine, one seed, 5 epochs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: several runs share the cores)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    params: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        params[key] = ast.literal_eval(value)
    if args.smoke:
        args.datasets, args.seeds = ["wine"], [0]
        params["epochs"] = 5
    out = Path(args.out)
    log = out.with_name(out.name + ".jsonl")
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    key = json.dumps(params, sort_keys=True)

    def same(r: dict[str, Any]) -> bool:
        return json.dumps(r["params"], sort_keys=True) == key and r["validation"] == args.validation

    have = {(r["dataset"], r["seed"], r["method"]) for r in done if same(r)}
    tasks = [(d, s, m) for d in args.datasets for s in args.seeds for m in args.methods if (d, s, m) not in have]
    with log.open("a") as fh:
        for d, s, m in tqdm(tasks, desc="classification"):
            r = run_one(d, s, m, params, args.validation, args.mnist)
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done.append(r)
    atomic_write(out, table([r for r in done if same(r)]))  # the file: every run in the log with these settings
    text = table([r for r in done if same(r) and r["dataset"] in args.datasets and r["method"] in args.methods])
    print(text)


if __name__ == "__main__":
    main()
