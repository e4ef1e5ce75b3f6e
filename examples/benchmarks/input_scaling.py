"""How the estimators' input standardisation treats near-constant columns (MNIST pixels), on validation data.

Per-column standardisation divides a pixel that is 0 in all but a few training images by a tiny standard
deviation; a validation image with that pixel on then enters the network at hundreds of standard deviations.
This compares, on a validation split, the estimators' ``input_scaling`` options (``"column"``, the old default;
``"global"``, one pooled standard deviation for every column; ``"auto"``, the classifier's default now) and a per-column deviation floored
at a tenth of the median column's (``"floor"``, measured here only). Results are
appended to a JSONL log (a rerun skips what is there)::

    python examples/benchmarks/input_scaling.py --datasets mnist5000 --seeds 0 1 --out benchmarks/input_scaling_validation.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classification import MNIST_DIR, data_split, run_one

import bayesdrop.sklearn as skl
from bayesdrop.mlp import standardization


def floored(ref: npt.ArrayLike, scaling: str = "column") -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-column deviations floored at a tenth of the median column's (a variant measured, not an option).

    ``scaling`` is ignored: it keeps the signature of :func:`bayesdrop.mlp.standardization`, which it stands in for.
    """
    mean, std = standardization(ref)
    a = np.asarray(ref, dtype=np.float64)
    if a.ndim == 2:
        std = np.maximum(std, 0.1 * np.median(a.std(0)))
    return mean, std


def run(args: argparse.Namespace, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (dataset, seed, method, variant) not yet in the log; the new rows."""
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    new = []
    for d in args.datasets:
        for s in args.seeds:
            X_tr, X_va, _, _ = data_split(d, s, True, args.mnist)
            for m in args.methods:
                for v in args.variants:
                    key = (d, s, m, v, list(args.hidden))
                    if any((r["dataset"], r["seed"], r["method"], r["variant"], r["hidden"]) == key for r in done):
                        continue
                    mean, std = floored(X_tr) if v == "floor" else standardization(X_tr, v)
                    if v == "floor":  # the estimators read it at fit time
                        skl.standardization = floored
                    try:
                        r = run_one(
                            d, s, m, {**params, "input_scaling": "column" if v == "floor" else v}, True, args.mnist
                        )
                    finally:
                        skl.standardization = standardization
                    r.update(variant=v, hidden=list(args.hidden), max_abs_z=float(np.abs((X_va - mean) / std).max()))
                    print(json.dumps({k: r[k] for k in ("dataset", "seed", "method", "variant", "nll", "accuracy")}))
                    with args.out.open("a") as fh:
                        fh.write(json.dumps(r) + "\n")
                    new.append(r)
    return new


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["mnist5000"])
    ap.add_argument("--methods", nargs="+", default=["mc", "concrete", "gaussian"])
    ap.add_argument("--variants", nargs="+", default=["column", "global", "floor"], help="column, global, auto, floor")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--hidden", type=int, nargs="+", default=[800, 800])
    ap.add_argument("--mnist", type=Path, default=MNIST_DIR)
    ap.add_argument("--out", type=Path, default=Path("input_scaling_validation.jsonl"))
    ap.add_argument("--smoke", action="store_true", help="digits, one seed, mc, 3 epochs")
    args = ap.parse_args(argv)
    params: dict[str, Any] = {"hidden_layer_sizes": tuple(args.hidden)}
    if args.smoke:
        args.datasets, args.seeds, args.methods, args.hidden = ["digits"], [0], ["mc"], [16]
        params = {"hidden_layer_sizes": (16,), "epochs": 3}
    run(args, params)


if __name__ == "__main__":
    main()
