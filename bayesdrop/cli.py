"""The ``bayesdrop`` command: fit, predict, report, demo, bench.

Bad input (a missing file or column, non-numeric features, NaN, a file that is
not a bayesdrop model) prints one line ``bayesdrop: error: ...`` and exits
with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from ._io import atomic_write

__all__ = ["main"]


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def load_model(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Load a model file written by ``bayesdrop fit`` (``weights_only=True``)."""
    from .sklearn import from_state

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        state = torch.load(p, weights_only=True)
    except Exception as exc:  # unpickling errors of every kind
        raise UsageError(f"{p} is not a bayesdrop model file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != "bayesdrop-model":
        raise UsageError(f"{p} is not a bayesdrop model file (no 'format': 'bayesdrop-model' entry)")
    return from_state(state), state


def _cmd_fit(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .sklearn import DropoutClassifier, DropoutRegressor
    from .training import save_atomic

    X, y, names = read_csv(args.data, target=args.target)
    assert y is not None
    common = {
        "hidden_layer_sizes": tuple(args.hidden),
        "p": args.p,
        "random_state": args.seed,
        "progress": not args.quiet,
    }
    for key in ("method", "epochs", "lr", "batch_size"):  # None: the estimator's default for the task
        if getattr(args, key) is not None:
            common[key] = getattr(args, key)
    if args.task == "classification":
        if np.any(y != np.round(y)):
            raise UsageError(f"--task classification needs integer class labels in column {args.target!r}")
        est: Any = DropoutClassifier(**common).fit(X, y.astype(np.int64))
    else:
        est = DropoutRegressor(heteroscedastic=args.heteroscedastic, **common).fit(X, y)
    state = est.to_state()
    state.update(
        task=args.task,
        feature_names=names,
        target=args.target,
        metadata={
            "bayesdrop_version": __version__,
            "train_file": str(args.data),
            "train_rows": len(X),
            "final_loss": float(est.history_.loss[-1]),
        },
    )
    save_atomic(state, args.out)
    print(f"wrote {args.out}: {args.task} model ({args.method}) on {len(X)} rows, {len(names)} features")


def _cmd_predict(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .metrics import mutual_information, predictive_entropy

    est, state = load_model(args.model)
    X, _, _ = read_csv(args.data, features=state["feature_names"])
    est.num_samples = args.num_samples
    est.random_state = args.seed
    buf = io.StringIO()
    writer = csv.writer(buf)
    if state["task"] == "regression":
        mean, std = est.predict(X, return_std=True)
        lower, upper = est.predict_interval(X, level=args.level)
        writer.writerow(["mean", "std", f"lower_{args.level:g}", f"upper_{args.level:g}"])
        writer.writerows(zip(mean, std, lower, upper, strict=True))
    else:
        samples = est.sample_predictive(X)
        probs = samples.mean(0)
        pred = est.classes_[probs.argmax(1)]
        writer.writerow([*(f"prob_{c}" for c in est.classes_), "predicted", "entropy", "mutual_information"])
        for row in zip(probs, pred, predictive_entropy(samples), mutual_information(samples), strict=True):
            writer.writerow([*row[0], row[1], row[2], row[3]])
    atomic_write(Path(args.out), buf.getvalue())
    print(f"wrote {args.out}: {len(X)} predictions from {args.num_samples} samples")


def _cmd_report(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .evaluation import evaluate
    from .likelihoods import Gaussian
    from .report import write_report

    est, state = load_model(args.model)
    X, y, _ = read_csv(args.data, target=args.target, features=state["feature_names"])
    assert y is not None
    x = torch.tensor(X, dtype=torch.float32)
    if state["task"] == "classification":
        lookup = {float(c): i for i, c in enumerate(est.classes_)}
        unknown = sorted({v for v in y.tolist() if v not in lookup})
        if unknown:
            raise UsageError(f"labels {unknown[:5]} in column {args.target!r} were not seen in training")
        ev = evaluate(
            est.model_, x, np.array([lookup[v] for v in y.tolist()]), num_samples=args.num_samples, seed=args.seed
        )
    else:
        lik = Gaussian(heteroscedastic=True)  # the estimator's model returns means and log-variances
        ev = evaluate(est.model_, x, y, likelihood=lik, num_samples=args.num_samples, seed=args.seed)
    ev.meta.update(model=str(args.model), data=str(args.data), method=state["params"]["method"])
    out = write_report(ev, args.out, overwrite=args.overwrite)
    print(f"wrote {out}/index.html")
    for k, v in ev.mc.items():
        print(f"  {k:24s} MC {v:9.4f}   deterministic {ev.deterministic.get(k, float('nan')):9.4f}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(Path(args.out), overwrite=args.overwrite, quick=args.quick, progress=not args.quiet)


def _cmd_bench(args: argparse.Namespace) -> None:
    from .benchmark import METHODS, run_uci
    from .datasets import UCI_DATASETS

    for d in args.datasets:
        if d not in UCI_DATASETS:
            raise UsageError(f"unknown dataset {d!r}; choose from {', '.join(UCI_DATASETS)}")
    for m in args.methods:
        if m not in METHODS:
            raise UsageError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    results = run_uci(
        args.data_dir,
        args.datasets,
        args.splits,
        args.methods,
        args.out,
        epochs_multiplier=args.epochs_multiplier,
        num_samples=args.num_samples,
        jobs=args.jobs,
        progress=not args.quiet,
    )
    print(Path(args.out).read_text())
    print(f"{len(results)} results in {args.out} (log: {args.out}.jsonl)")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesdrop", description="Bayesian uncertainty from dropout networks.")
    parser.add_argument("--version", action="version", version=f"bayesdrop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a model with learned noise on a CSV file")
    f.add_argument("data", help="CSV file with a header row")
    f.add_argument("--target", required=True, help="target column")
    f.add_argument("--task", choices=("regression", "classification"), default="regression")
    f.add_argument(
        "--method",
        choices=("variational", "mc", "gaussian", "concrete"),
        default=None,
        help="the noise (the estimator's default: variational for regression, concrete for classification)",
    )
    f.add_argument("--hidden", type=_positive_int, nargs="+", default=[50], help="hidden layer widths (50)")
    f.add_argument("--p", type=float, default=0.05, help="dropout rate (initial rate for variational, concrete)")
    f.add_argument("--epochs", type=_positive_int, default=None, help="(regression 400, classification 200)")
    f.add_argument("--lr", type=float, default=None, help="(regression 0.01, classification 0.003)")
    f.add_argument("--batch-size", type=_positive_int, default=None, help="(regression 128, classification 64)")
    f.add_argument(
        "--heteroscedastic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="learn a per-input noise (regression; on by default)",
    )
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.add_argument("--out", required=True, help="model file to write (.pt)")
    f.set_defaults(run=_cmd_fit)

    p = sub.add_parser("predict", help="predict with uncertainty from a model file")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--num-samples", type=_positive_int, default=200)
    p.add_argument("--level", type=_level, default=0.95, help="interval level (regression)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_predict)

    r = sub.add_parser("report", help="write a calibration report for labelled data")
    r.add_argument("model")
    r.add_argument("data")
    r.add_argument("--target", required=True)
    r.add_argument("--out", required=True, help="report folder")
    r.add_argument("--num-samples", type=_positive_int, default=200)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    r.set_defaults(run=_cmd_report)

    d = sub.add_parser("demo", help="fit learned-noise models on built-in data and write reports")
    d.add_argument("--out", default="bayesdrop-demo", help="output folder (bayesdrop-demo)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    d.add_argument("--quick", action="store_true", help="tiny settings (for tests)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(run=_cmd_demo)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    u = bsub.add_parser("uci", help="UCI regression benchmark (Gal & Ghahramani 2016 protocol)")
    u.add_argument("--data-dir", required=True, help="folder with the UCI dataset folders")
    u.add_argument(
        "--datasets",
        nargs="+",
        default=["bostonHousing", "concrete", "energy", "kin8nm", "wine-quality-red", "yacht"],
    )
    u.add_argument("--splits", type=int, nargs="+", default=None, help="split indices (all by default)")
    u.add_argument("--methods", nargs="+", default=["mc", "variational", "gaussian", "concrete"])
    u.add_argument("--epochs-multiplier", type=_positive_int, default=10)
    u.add_argument("--num-samples", type=_positive_int, default=10_000)
    u.add_argument("--jobs", type=_positive_int, default=1)
    u.add_argument("--quiet", action="store_true")
    u.add_argument("--out", required=True, help="Markdown results file")
    u.set_defaults(run=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (UsageError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"bayesdrop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bayesdrop: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
