"""``bayesdrop demo``: learned-noise models on built-in data, compared and reported.

Fits each estimator's default learned-noise model (concrete dropout for the
digits classifier, variational dropout with a heteroscedastic noise for the
diabetes regressor) and an MC-dropout (fixed rate) MLP on scikit-learn's
digits (classification) and diabetes (regression),
evaluates each with the MC predictive and with the deterministic eval-mode
pass, and writes one report folder per model plus ``summary.md`` and an
``index.html`` that links them.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split

from .evaluation import Evaluation, evaluate
from .files import atomic_write
from .likelihoods import Gaussian
from .mlp import Method
from .report import write_report
from .sklearn import DropoutClassifier, DropoutRegressor

__all__ = ["run_demo"]

_SHOWN = {
    "classification": ("accuracy", "nll", "brier", "ece"),
    "regression": ("rmse", "nll", "crps", "coverage_95"),
}


def _runs(quick: bool, progress: bool | None) -> list[tuple[str, str, Any, Any]]:
    """(dataset, method, estimator, data) for the four demo models."""
    cls_epochs, reg_epochs = (3, 5) if quick else (60, 300)
    plan: list[tuple[str, Any, tuple[int, ...], int, float, tuple[tuple[Method, float | None], ...], Any]] = [
        ("digits", DropoutClassifier, (128,), cls_epochs, 3e-3, (("concrete", None), ("mc", 0.2)), load_digits),
        ("diabetes", DropoutRegressor, (50,), reg_epochs, 1e-2, (("variational", 0.05), ("mc", 0.1)), load_diabetes),
    ]
    return [
        (
            name,
            method,
            cls(hidden, method, p, epochs=epochs, lr=lr, num_samples=100, random_state=0, progress=progress),
            loader(return_X_y=True),
        )
        for name, cls, hidden, epochs, lr, methods, loader in plan
        for method, p in methods
    ]


def run_demo(
    out: Path, *, overwrite: bool = False, quick: bool = False, progress: bool | None = None
) -> list[dict[str, Any]]:
    """Run the demo into ``out``; returns one summary row per model.

    Parameters
    ----------
    out : Path
        The folder to write (one report per model and ``index.html``).
    overwrite : bool
        Replace an existing folder.
    quick : bool
        Few epochs and samples (the tests' smoke mode).
    progress : bool, optional
        Progress bars; None shows them in a terminal only.

    Returns
    -------
    list of dict
        Dataset, method, and the MC and deterministic metrics of each model.
    """
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    if out.exists() and overwrite:
        shutil.rmtree(out)
    rows = []
    for dataset, method, est, (X, y) in _runs(quick, progress):
        task = "classification" if dataset == "digits" else "regression"
        strat = y if task == "classification" else None
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=strat)
        print(f"[{dataset}] fitting {method} ({type(est).__name__}, {len(Xtr)} training rows)", flush=True)
        est.fit(Xtr, ytr)
        x = torch.tensor(Xte, dtype=torch.float32)
        if task == "classification":
            labels = np.searchsorted(est.classes_, yte)
            ev: Evaluation = evaluate(est.model_, x, labels, num_samples=est.num_samples, seed=0)
        else:
            lik = Gaussian(heteroscedastic=True)  # the estimator's model returns means and log-variances
            ev = evaluate(est.model_, x, yte, likelihood=lik, num_samples=est.num_samples, seed=0)
        ev.meta.update(dataset=dataset, method=method)
        folder = write_report(ev, out / f"{dataset}-{method}", overwrite=True)
        row = {"dataset": dataset, "method": method, "report": folder.name, "mc": ev.mc, "det": ev.deterministic}
        rows.append(row)
    _summary(out, rows)
    return rows


_HEADLINE = {"classification": "reliability.png", "regression": "regression_calibration.png"}


def _summary(out: Path, rows: list[dict[str, Any]]) -> None:
    """summary.md (markdown, for the README) and index.html (an HTML table a browser shows as a table)."""
    lines = ["| dataset | method | metric | MC predictive | deterministic (eval mode) |", "|---|---|---|---|---|"]
    for r in rows:
        task = "classification" if r["dataset"] == "digits" else "regression"
        for k in _SHOWN[task]:
            lines.append(f"| {r['dataset']} | {r['method']} | {k} | {r['mc'][k]:.4f} | {r['det'][k]:.4f} |")
    table = "\n".join(lines) + "\n"
    atomic_write(out / "summary.md", table)
    atomic_write(out / "index.html", _page(rows))
    print("\n" + table)
    print(f"reports in {out}/ (open {out}/index.html in a browser)")


def _page(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    body = []
    for r in rows:
        task = "classification" if r["dataset"] == "digits" else "regression"
        link = f"{esc(r['report'])}/index.html"
        figure = f"{esc(r['report'])}/{_HEADLINE[task]}"
        metrics = "".join(
            f"<tr><td>{esc(k)}</td><td>{r['mc'][k]:.4f}</td><td>{r['det'][k]:.4f}</td></tr>" for k in _SHOWN[task]
        )
        body.append(
            f"<tr><td><b>{esc(r['dataset'])}</b><br>{esc(r['method'])}<br><a href='{link}'>full report</a></td>"
            f"<td><a href='{link}'><img src='{figure}' alt='{esc(_HEADLINE[task])} of {esc(r['report'])}'></a></td>"
            "<td><table class='m'><tr><th>metric</th><th>MC predictive</th><th>deterministic</th></tr>"
            f"{metrics}</table></td></tr>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:6px 10px;vertical-align:top}"
        "table.m td{text-align:right}table.m td:first-child{text-align:left}img{width:300px}"
    )
    intro = (
        "<p>Each model was fitted on 70% of a scikit-learn dataset and evaluated on the rest: the MC predictive "
        "(T = 100 stochastic passes) beside the deterministic eval-mode pass. Click a figure for the full report.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>bayesdrop demo</title><style>{style}</style>"
        f"</head><body><h1>bayesdrop demo</h1>{intro}<table><tr><th>model</th><th>headline figure</th>"
        f"<th>metrics</th></tr>{''.join(body)}</table></body></html>"
    )
