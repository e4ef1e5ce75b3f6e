"""What limits learned noise on UCI: settings compared by validation log-likelihood.

Every setting (a :class:`bayesdrop.benchmark.LearnedNoise`) is trained on the
first 80% of a UCI training split and scored on the last 20% (the split's test
part is never read), on the same splits of every dataset, as Gal's grid search
chooses (p, tau). Results go to a JSONL log as they finish, so an interrupted
run continues where it stopped; the table prints the mean validation
log-likelihood per dataset, the mean over datasets of the paired difference to
the first setting, the median ratio of the learned noise std to the
validation RMSE (below 1: the noise is learned too small), the mean fraction
of pruned weights and the median learned dropout rate of concrete layers.

    python examples/benchmarks/learned_noise.py --data-dir ../shared/data/uci \\
        --splits 0 1 2 3 4 --log learned_noise.jsonl

``--smoke`` runs two settings on one split of yacht for 20 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bayesdrop.benchmark import (
    LearnedNoise,
    noise_summary,
    score_learned,
    standardise,
    train_learned,
    validation_part,
)
from bayesdrop.datasets import load_uci

BASE = LearnedNoise()  # the previous default: variational, weight alphas, p 0.05, lr 0.01, warm-up 1/2

#: Name -> settings; the first is the reference of the "vs first" column.
SETTINGS: dict[str, LearnedNoise] = {
    "vd-base": BASE,
    "vd-kl0.1": replace(BASE, kl_scale=0.1),
    "vd-input": replace(BASE, alpha="input"),
    "vd-layer": replace(BASE, alpha="layer"),
    "vd-hetero": replace(BASE, heteroscedastic=True),
    "vd-p0.2": replace(BASE, init_p=0.2),
    "vd-nowarmup": replace(BASE, warmup=0.0),
    "vd-lr3e-3-x2": replace(BASE, lr=3e-3, epochs_factor=2.0),
    "vd-w100": replace(BASE, width=100),
    "cd-base": LearnedNoise("concrete", init_p=0.1),
    "cd-l1e-4": LearnedNoise("concrete", init_p=0.1, lengthscale=1e-4),
    "cd-hetero": LearnedNoise("concrete", init_p=0.1, heteroscedastic=True),
    # second round: combinations of what helped, and concrete dropout with a real weight prior
    "vd-hetero-p0.2": replace(BASE, heteroscedastic=True, init_p=0.2),
    "vd-hetero-w100": replace(BASE, heteroscedastic=True, width=100),
    "cd-l1": LearnedNoise("concrete", init_p=0.1, lengthscale=1.0),
    "cd-hetero-l1": LearnedNoise("concrete", init_p=0.1, lengthscale=1.0, heteroscedastic=True),
    # concrete dropout without the KL warm-up (its entropy term is what holds p up)
    "cd-nowarmup": LearnedNoise("concrete", init_p=0.1, warmup=0.0),
    "cd-hetero-nowarmup": LearnedNoise("concrete", init_p=0.1, warmup=0.0, heteroscedastic=True),
    # third round, around the heteroscedastic winner: longer training, a lighter KL
    "vd-hetero-x2": replace(BASE, heteroscedastic=True, epochs_factor=2.0),
    "vd-hetero-kl0.5": replace(BASE, heteroscedastic=True, kl_scale=0.5),
    "vd-hetero-w100-x2": replace(BASE, heteroscedastic=True, width=100, epochs_factor=2.0),
    # the learning-rate schedule: linear decay to zero instead of a constant rate
    "vd-hetero-decay": replace(BASE, heteroscedastic=True, lr_decay=True),
    # issue 23: a floor under the heteroscedastic noise std (standardised units), against the wine collapse
    "vd-hetero-floor0.05": replace(BASE, heteroscedastic=True, min_noise_std=0.05),
    "vd-hetero-floor0.1": replace(BASE, heteroscedastic=True, min_noise_std=0.1),
    "vd-hetero-floor0.2": replace(BASE, heteroscedastic=True, min_noise_std=0.2),
}

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci"

DATASETS = ("bostonHousing", "concrete", "energy", "kin8nm", "wine-quality-red", "yacht")


def validate_learned(
    settings: LearnedNoise,
    x: np.ndarray,
    y: np.ndarray,
    hidden: int,
    epochs: int,
    *,
    num_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``settings`` on the first 80% of a training split (raw ``x``, ``y``) and score the last 20%.

    The split's test part is never read: this is how the learned-noise
    settings are compared.
    Returns :func:`score_learned`'s RMSE, log-likelihood and noise std in the
    targets' units, the fraction of pruned weights and the learned concrete
    rates.
    """
    xa, ya, xv, yv = validation_part(x, y)
    yas, yam, yasd = standardise(ya[:, None], ya[:, None])
    net, lik = train_learned(settings, standardise(xa, xa)[0], yas[:, 0], hidden, epochs, seed)
    r = score_learned(net, lik, standardise(xv, xa)[0], yv, float(yam[0]), float(yasd[0]), num_samples, seed)
    r.update(noise_summary(net))
    return r


def run_one(args: tuple[str, str, int, str, dict[str, Any], float, int]) -> dict[str, Any]:
    """Train one setting on 80% of one training split; score it on the other 20%."""
    torch.set_num_threads(1)
    data_dir, dataset, split, name, settings_dict, epochs_scale, num_samples = args
    settings = LearnedNoise(**settings_dict)
    ds = load_uci(dataset, data_dir)
    train = ds.splits[split][0]
    epochs = max(1, round(ds.n_epochs * 10 * epochs_scale))
    start = time.perf_counter()
    r = {"dataset": dataset, "split": split, "setting": name, "epochs": epochs, **asdict(settings)}
    r.update(
        validate_learned(settings, ds.X[train], ds.y[train], ds.n_hidden, epochs, num_samples=num_samples, seed=split)
    )
    r["seconds"] = time.perf_counter() - start
    return r


def table(results: list[dict[str, Any]], names: list[str]) -> str:
    """Mean validation LL per dataset (± SE over splits) and the mean difference to the first setting."""
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in results)]
    by = {(r["setting"], r["dataset"], r["split"]): r["ll"] for r in results}
    lines = [
        "| setting | " + " | ".join(datasets) + " | mean vs first | noise / RMSE | pruned | learned p |",
        "|---|" + "---|" * (len(datasets) + 4),
    ]
    for name in names:
        cells, diffs = [], []
        for d in datasets:
            lls = [v for (n, dd, _), v in by.items() if n == name and dd == d]
            if not lls:
                cells.append("")
                continue
            a = np.asarray(lls)
            se = a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else float("nan")
            cells.append(f"{a.mean():.3f} ± {se:.3f}")
            paired = [v - by[(names[0], dd, s)] for (n, dd, s), v in by.items() if n == name and dd == d]
            paired = [p for p in paired if np.isfinite(p)]
            if paired:
                diffs.append(float(np.mean(paired)))
        mean = f"{np.mean(diffs):+.3f}" if len(diffs) == len(datasets) else ""
        mine = [r for r in results if r["setting"] == name]
        ratio = np.median([r["noise_std"] / r["rmse"] for r in mine])
        pruned = np.mean([r["sparsity"] for r in mine])
        ps = [p for r in mine for p in r["p"]]
        learned = f"{np.median(ps):.2g}" if ps else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} | {ratio:.2f} | {pruned:.2f} | {learned} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA), help="the UCI folder")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="multiplier of the protocol's 10x epochs")
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--log", default="learned_noise.jsonl")
    ap.add_argument("--smoke", action="store_true", help="two settings, yacht split 0, 20 epochs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.datasets, args.splits, args.settings = ["yacht"], [0], ["vd-base", "cd-base"]
        args.epochs_scale, args.num_samples = 0.05, 50
    log = Path(args.log)
    done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    have = {(r["setting"], r["dataset"], r["split"], r["epochs"]) for r in done}
    tasks = []
    for d in args.datasets:
        n_epochs = max(1, round(load_uci(d, args.data_dir).n_epochs * 10 * args.epochs_scale))
        for s in args.splits:
            for name in args.settings:
                if (name, d, s, n_epochs) not in have:
                    settings = asdict(SETTINGS[name])
                    tasks.append((args.data_dir, d, s, name, settings, args.epochs_scale, args.num_samples))
    with log.open("a") as fh, tqdm(total=len(tasks), desc="settings x splits") as bar:

        def record(r: dict[str, Any]) -> None:
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done.append(r)
            bar.update(1)
            bar.set_postfix(last=f"{r['setting']}/{r['dataset']}/{r['split']}: {r['ll']:.3f}")

        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                for r in pool.map(run_one, tasks):
                    record(r)
        else:
            for t in tasks:
                record(run_one(t))
    chosen = [r for r in done if r["setting"] in args.settings and r["dataset"] in args.datasets]
    print(table(chosen, args.settings))


if __name__ == "__main__":
    main()
