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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .files import atomic_write
from .mlp import METHODS

__all__ = ["main"]


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


#: A numeric target with at most this many distinct integer values is read as class labels when --task is not
#: given (scikit-learn's type_of_target says "binary" or "multiclass"); text labels are always classes.
MAX_INFERRED_CLASSES = 20


def _refuse_to_overwrite(path: str | os.PathLike[str], overwrite: bool) -> None:
    if Path(path).exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")


def _task_and_target(y_text: np.ndarray, task: str | None, column: str) -> tuple[str, np.ndarray, str]:
    """The task (given, or inferred from the target column), the targets and why: numbers, or text labels."""
    from sklearn.utils.multiclass import type_of_target

    try:
        y: np.ndarray = y_text.astype(np.float64)
    except ValueError:
        y = y_text
    numeric = y.dtype.kind == "f"
    if numeric and not np.isfinite(y).all():
        raise UsageError(f"column {column!r} holds NaN or infinite targets")
    if task == "regression" and not numeric:
        raise UsageError(f"--task regression needs numeric targets; column {column!r} holds text labels")
    if task is None:
        kind, distinct = type_of_target(y), len(np.unique(y))
        few = distinct <= MAX_INFERRED_CLASSES
        task = "classification" if not numeric or (kind in ("binary", "multiclass") and few) else "regression"
        why = f"inferred from column {column!r} ({kind}, {distinct} distinct values; set --task to override)"
    else:
        why = "--task"
    if task == "classification" and numeric:
        if np.any(y != np.round(y)):
            raise UsageError(f"--task classification needs class labels in column {column!r}, not fractional numbers")
        y = y.astype(np.int64)
    return task, y, why


def _cmd_fit(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .model_file import estimator_state
    from .sklearn import DropoutClassifier, DropoutRegressor
    from .training import save_atomic

    _refuse_to_overwrite(args.out, args.overwrite)
    X, y_text, names = read_csv(args.data, target=args.target, text_target=True)
    assert y_text is not None
    task, y, why = _task_and_target(y_text, args.task, args.target)
    common = {"hidden_layer_sizes": tuple(args.hidden), "random_state": args.seed}
    common["progress"] = _show_progress(args)
    for key in ("method", "p", "epochs", "lr", "batch_size"):  # None: the estimator's default for the task
        if getattr(args, key) is not None:
            common[key] = getattr(args, key)
    est: Any = (
        DropoutClassifier(**common)
        if task == "classification"
        else DropoutRegressor(heteroscedastic=args.heteroscedastic, **common)
    )
    print(f"fitting a {task} model ({est.method}) on {len(X)} rows, {len(names)} features; task {why}")
    est.fit(X, y)
    state = estimator_state(est)
    state.update(task=task, feature_names=names, target=args.target)
    state["metadata"] = {
        "bayesdrop_version": __version__,
        "train_file": str(args.data),
        "train_rows": len(X),
        "final_loss": float(est.history_.loss[-1]),
    }
    save_atomic(state, args.out)
    print(f"wrote {args.out}: {task} model ({est.method}) on {len(X)} rows, {len(names)} features")


def _cmd_predict(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .metrics import mutual_information, predictive_entropy
    from .model_file import load_model

    _refuse_to_overwrite(args.out, args.overwrite)
    loaded: tuple[Any, dict[str, Any]] = load_model(args.model)
    est, state = loaded
    X, _, _ = read_csv(args.data, features=state["feature_names"])
    est.num_samples = args.num_samples
    est.random_state = args.seed
    buf = io.StringIO()
    writer = csv.writer(buf)
    if state["task"] == "regression":
        mean, std, lower, upper = est.predict(X, return_std=True, return_interval=args.level)  # one set of draws
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
    print(f"wrote {args.out}: {len(X)} predictions ({est.method}) from {args.num_samples} samples")


def _cmd_report(args: argparse.Namespace) -> None:
    from .datasets import read_csv
    from .evaluation import evaluate
    from .likelihoods import Gaussian
    from .model_file import load_model
    from .report import write_report

    _refuse_to_overwrite(args.out, args.overwrite)
    loaded: tuple[Any, dict[str, Any]] = load_model(args.model)
    est, state = loaded
    X, y, _ = read_csv(args.data, target=args.target, features=state["feature_names"], text_target=True)
    assert y is not None
    x = torch.tensor(X, dtype=torch.float32)
    if state["task"] == "classification":
        values = [v.item() for v in _task_and_target(y, "classification", args.target)[1]]  # ints, or text
        lookup = {c.item(): i for i, c in enumerate(est.classes_)}
        unknown = sorted({str(v) for v in values if v not in lookup})
        if unknown:
            raise UsageError(f"labels {unknown[:5]} in column {args.target!r} were not seen in training")
        labels = np.array([lookup[v] for v in values])
        ev = evaluate(est.model_, x, labels, num_samples=args.num_samples, seed=args.seed)
    else:
        lik = Gaussian(heteroscedastic=True)  # the estimator's model returns means and log-variances
        targets = _task_and_target(y, "regression", args.target)[1]
        ev = evaluate(est.model_, x, targets, likelihood=lik, num_samples=args.num_samples, seed=args.seed)
    ev.meta.update(model=str(args.model), data=str(args.data), method=state["params"]["method"])
    out = write_report(ev, args.out, overwrite=args.overwrite)
    print(f"wrote {out}/index.html")
    for k, v in ev.mc.items():
        print(f"  {k:24s} MC {v:9.4f}   deterministic {ev.deterministic.get(k, float('nan')):9.4f}")


def _show_progress(args: argparse.Namespace) -> bool | None:
    """--quiet: off; --progress: on; neither: on when stderr is a terminal."""
    if args.quiet:
        return False
    return True if args.progress else None


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(Path(args.out), overwrite=args.overwrite, quick=args.quick, progress=_show_progress(args))


def _cmd_bench(args: argparse.Namespace) -> None:
    from .benchmark import run_uci
    from .datasets import UCI_DATASETS

    for d in args.datasets:
        if d not in UCI_DATASETS:
            raise UsageError(f"unknown dataset {d!r}; choose from {', '.join(UCI_DATASETS)}")
    options = {"epochs_multiplier": args.epochs_multiplier, "num_samples": args.num_samples, "jobs": args.jobs}
    results = run_uci(args.data_dir, args.datasets, args.splits, args.methods, args.out, **options,
                      progress=_show_progress(args))  # fmt: skip
    print(Path(args.out).read_text())
    print(f"{len(results)} results in {args.out} (log: {args.out}.jsonl)")


def _number(convert: Callable[[str], Any], allowed: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)``, refused with "expected <allowed>" unless ``ok`` holds."""

    def parse(text: str) -> Any:
        try:
            v = convert(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return v

    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_level = _number(float, "a number in (0, 1)", lambda v: 0 < v < 1)
_rate = _number(float, "a dropout rate in [0, 1)", lambda v: 0 <= v < 1)
_positive_float = _number(float, "a positive number", lambda v: 0 < v < float("inf"))


def _progress_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument(
        "--progress", action="store_true", help="progress bars even when stderr is not a terminal (a log)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesdrop", description="Bayesian uncertainty from dropout networks.")
    parser.add_argument("--version", action="version", version=f"bayesdrop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_fit, _add_predict, _add_report, _add_demo, _add_bench):
        add(sub)
    return parser


def _add_fit(sub: Any) -> None:
    f = sub.add_parser("fit", help="fit a model with learned noise on a CSV file")
    f.add_argument("data", help="CSV file with a header row")
    f.add_argument("--target", required=True, help="target column")
    f.add_argument(
        "--task",
        choices=("regression", "classification"),
        default=None,
        help="by default inferred from the target column: text labels, or integers with at most "
        f"{MAX_INFERRED_CLASSES} distinct values, are classification; other numbers are regression",
    )
    f.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help="the noise (the estimator's default: variational for regression, concrete for classification)",
    )
    f.add_argument("--hidden", type=_positive_int, nargs="+", default=[50], help="hidden layer widths (50)")
    f.add_argument(
        "--p",
        type=_rate,
        default=None,
        help="dropout rate in [0, 1), the initial rate for variational and concrete (0.05; 0.1 for concrete "
        "classification)",
    )
    f.add_argument("--epochs", type=_positive_int, default=None, help="(regression 400, classification 200)")
    f.add_argument("--lr", type=_positive_float, default=None, help="(regression 0.01, classification 0.003)")
    f.add_argument("--batch-size", type=_positive_int, default=None, help="(regression 128, classification 64)")
    f.add_argument(
        "--heteroscedastic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="learn a per-input noise (regression; on by default)",
    )
    f.add_argument("--seed", type=int, default=0)
    _progress_flags(f)
    f.add_argument("--out", required=True, help="model file to write (.pt)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    f.set_defaults(run=_cmd_fit)


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with uncertainty from a model file")
    _model_and_data(p, "CSV file to write", "predictions file")
    p.add_argument("--level", type=_level, default=0.95, help="interval level (regression)")
    p.set_defaults(run=_cmd_predict)


def _model_and_data(parser: argparse.ArgumentParser, out_help: str, what: str) -> None:
    """The arguments predict and report share: the model file, the CSV, --out, --num-samples, --seed, --overwrite."""
    parser.add_argument("model", help="model file written by bayesdrop fit")
    parser.add_argument("data", help="CSV file with the model's feature columns")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--num-samples", type=_positive_int, default=200, help="MC samples T (200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")


def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="write a calibration report for labelled data")
    _model_and_data(r, "report folder", "report folder")
    r.add_argument("--target", required=True, help="target column")
    r.set_defaults(run=_cmd_report)


def _add_demo(sub: Any) -> None:
    d = sub.add_parser("demo", help="fit learned-noise models on built-in data and write reports")
    d.add_argument("--out", default="bayesdrop-demo", help="output folder (bayesdrop-demo)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    d.add_argument("--quick", action="store_true", help="tiny settings (for tests)")
    _progress_flags(d)
    d.set_defaults(run=_cmd_demo)


def _add_bench(sub: Any) -> None:
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
    u.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    u.add_argument("--epochs-multiplier", type=_positive_int, default=10)
    u.add_argument("--num-samples", type=_positive_int, default=10_000)
    u.add_argument("--jobs", type=_positive_int, default=1)
    _progress_flags(u)
    u.add_argument("--out", required=True, help="Markdown results file")
    u.set_defaults(run=_cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesdrop`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on bad input (the message goes to stderr).
    """
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
