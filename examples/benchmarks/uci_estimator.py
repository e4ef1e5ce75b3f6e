"""The default ``DropoutRegressor`` on the UCI splits, against Gal & Ghahramani's published test log-likelihoods.

For each dataset and split: ``DropoutRegressor(random_state=split)`` with
its defaults (``--set key=value`` overrides one), trained on the split's
training rows and scored on its test rows: RMSE of the MC mean and the
log-likelihood of the MC mixture (T = 1,000 samples, the targets' units).
Results append to a JSONL log as they finish (a rerun skips what is there);
the table gives the mean ± standard error over the splits, the median, the
worst split and Gal 2016's numbers.

    python examples/benchmarks/uci_estimator.py --data-dir ../shared/data/uci --out benchmarks/uci_estimator.md

``--validation`` fits on the first 80% of each training split and scores
the last 20% (how defaults are chosen); ``--smoke`` runs one split of yacht
for 5 epochs.
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
from tqdm.auto import tqdm

from bayesdrop import sample
from bayesdrop.benchmark import GAL_2016
from bayesdrop.datasets import load_uci
from bayesdrop.files import atomic_write
from bayesdrop.metrics import mixture_nll, rmse
from bayesdrop.sklearn import DropoutRegressor

DATASETS = ("bostonHousing", "concrete", "energy", "kin8nm", "wine-quality-red", "yacht")
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci"


def run_one(
    data_dir: str, dataset: str, split: int, params: dict[str, Any], num_samples: int, validation: bool = False
) -> dict[str, Any]:
    """Fit the estimator on one split's training rows, score its test rows (or, with ``validation``, fit on
    the first 80% of the training rows and score the last 20%, as the learned-noise study chose settings)."""
    ds = load_uci(dataset, data_dir)
    train, test = ds.splits[split]
    if validation:
        cut = round(0.8 * len(train))
        train, test = train[:cut], train[cut:]
    start = time.perf_counter()
    reg = DropoutRegressor(random_state=split, **params).fit(ds.X[train], ds.y[train])
    out = sample(reg.model_, torch.tensor(ds.X[test], dtype=torch.float32), num_samples, seed=split).double().numpy()
    means, noise = out[..., 0], np.exp(0.5 * out[..., 1])  # raw units, the floor and temperature applied
    return {
        "dataset": dataset,
        "split": split,
        "params": params,
        "validation": validation,
        "rmse": rmse(means.mean(0), ds.y[test]),
        "ll": -mixture_nll(means, ds.y[test], noise),
        "epochs_run": int(reg.n_iter_),
        "best_epoch": reg.best_epoch_,
        "temperature": reg.temperature_,
        "seconds": time.perf_counter() - start,
    }


def _mean_se(values: list[float], digits: int = 2) -> str:
    a = np.asarray(values)
    se = a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else float("nan")
    return f"{a.mean():.{digits}f} ± {se:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    """One row per dataset: RMSE and LL over splits, the median and worst LL, Gal 2016's LL and the verdict."""
    lines = [
        "| dataset | splits | epochs run (median) | test RMSE | test LL | median LL | worst LL | Gal 2016 LL | vs Gal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in DATASETS:
        rs = sorted((r for r in results if r["dataset"] == d), key=lambda r: r["split"])
        if not rs:
            continue
        ll = np.array([r["ll"] for r in rs])
        gal = GAL_2016[d][2]
        se = ll.std(ddof=1) / math.sqrt(len(ll)) if len(ll) > 1 else float("nan")
        verdict = "at or above" if ll.mean() >= gal else ("within 1 SE" if ll.mean() + se >= gal else "below")
        lines.append(
            f"| {d} | {len(rs)} | {int(np.median([r['epochs_run'] for r in rs]))} | "
            f"{_mean_se([r['rmse'] for r in rs])} | {_mean_se(list(ll))} | {np.median(ll):.2f} | "
            f"{ll.min():.2f} (split {rs[int(ll.argmin())]['split']}) | {gal:.2f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="the UCI folder")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--splits", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="estimator parameters")
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--out", default="uci_estimator.md", help="Markdown table (the log is <out>.jsonl)")
    ap.add_argument("--validation", action="store_true", help="score the last 20%% of each training split")
    ap.add_argument("--smoke", action="store_true", help="yacht split 0, 5 epochs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = {k: ast.literal_eval(v) for k, _, v in (item.partition("=") for item in args.set)}
    if args.smoke:
        args.datasets, args.splits, params["epochs"], args.num_samples = ["yacht"], [0], 5, 20
    out = Path(args.out)
    log = out.with_name(out.name + ".jsonl")
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    key = json.dumps(params, sort_keys=True)
    mine = [
        r
        for r in done
        if json.dumps(r["params"], sort_keys=True) == key and r.get("validation", False) == args.validation
    ]
    have = {(r["dataset"], r["split"]) for r in mine}
    tasks = [(d, s) for d in args.datasets for s in args.splits if (d, s) not in have]
    with log.open("a") as fh:
        for d, s in tqdm(tasks, desc="uci"):
            r = run_one(args.data_dir, d, s, params, args.num_samples, args.validation)
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            mine.append(r)
    text = table([r for r in mine if r["dataset"] in args.datasets])
    atomic_write(out, text)
    print(text)


if __name__ == "__main__":
    main()
