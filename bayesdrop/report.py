"""Write an evaluation report folder: metrics.json, PNG figures, index.html.

The folder is built under a temporary name beside ``out_dir`` and renamed
into place at the end, so an interrupted run never leaves a half-written
report; an existing folder is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import plots
from .files import atomic_dir

if TYPE_CHECKING:
    from .evaluation import Evaluation

__all__ = ["write_report"]


#: One line per metric: what it measures and which way is better (shown beside the table).
METRIC_NOTES = {
    "accuracy": "fraction of examples whose most probable class is right (higher is better)",
    "nll": "mean negative log-likelihood of the true label or target, nats (lower is better)",
    "brier": "mean squared error of the probability vector against the one-hot label (lower is better)",
    "ece": "expected calibration error: |accuracy - confidence| averaged over 15 confidence bins (lower is better)",
    "mce": "maximum calibration error: the worst bin's |accuracy - confidence| (lower is better)",
    "aurc": "area under the risk-coverage curve, ranking by confidence (lower is better)",
    "misclassification_auroc": "how well confidence separates right from wrong predictions, 0.5 is chance (higher is better)",
    "rmse": "root mean squared error of the predictive mean (lower is better)",
    "crps": "continuous ranked probability score of the Gaussian predictive (lower is better)",
    "coverage_95": "fraction of targets inside the central 95% interval (0.95 is calibrated)",
    "width_95": "mean width of the central 95% interval (narrower is better at the right coverage)",
    "miscalibration_area": "area between observed and expected interval coverage (lower is better)",
    "mixture_nll": "NLL of the MC mixture of the T sampled Gaussians (defined for the MC predictive only)",
}


def _classification_figures(ev: Evaluation) -> list[tuple[str, str, Callable[[Any], Any]]]:
    y = ev.targets.astype(int)
    per = ev.per_example
    return [
        ("reliability", "Reliability diagram of the MC predictive (bars) and the deterministic pass (line).",
         lambda ax: plots.reliability_diagram(ev.mc_predictive, y, ax=ax, overlay=ev.det_predictive)),
        ("risk_coverage", "Selective risk against coverage, ranked by confidence.",
         lambda ax: plots.risk_coverage(ev.mc_predictive, y, ax=ax, overlay=ev.det_predictive)),
        ("uncertainty_vs_error", "Error against predictive entropy (mean per decile).",
         lambda ax: plots.uncertainty_vs_error(per["entropy"], per["error"], ax=ax,
                                               xlabel="predictive entropy (nats)", ylabel="error rate")),
        ("gap_histogram", "Per-example KL between the MC and deterministic predictives.",
         lambda ax: plots.gap_histogram(per["gap_kl"], ax=ax)),
        ("convergence", "MC nll against the number of samples T, with jackknife standard errors.",
         lambda ax: plots.convergence(ev, "nll", ax=ax)),
    ]  # fmt: skip


def _regression_figures(ev: Evaluation) -> list[tuple[str, str, Callable[[Any], Any]]]:
    # D targets: every (example, target) pair is one point of the figures.
    mean, std = ev.mc_predictive[..., 0].ravel(), ev.mc_predictive[..., 1].ravel()
    y, error, det_mean = ev.targets.ravel(), ev.per_example["abs_error"].ravel(), ev.det_predictive[..., 0].ravel()
    return [
        ("regression_calibration", "Observed against expected coverage of central intervals (MC predictive).",
         lambda ax: plots.regression_calibration(mean, std, y, ax=ax, label="MC predictive")),
        ("uncertainty_vs_error", "Absolute error against the predictive std (mean per decile).",
         lambda ax: plots.uncertainty_vs_error(std, error, ax=ax, xlabel="predictive std", ylabel="|error|")),
        ("gap_histogram", "Per-example difference between the MC mean and the deterministic mean.",
         lambda ax: plots.gap_histogram(mean - det_mean, ax=ax, xlabel="MC mean - deterministic mean")),
        ("convergence", "MC rmse against the number of samples T, with jackknife standard errors.",
         lambda ax: plots.convergence(ev, "rmse", ax=ax)),
    ]  # fmt: skip


def _ood_figures(ev: Evaluation) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """With OOD data: the in/out histograms of the best-separating MC score and the ROC curves of every score."""
    if not ev.ood:
        return []
    found = ev.ood["metrics"]
    best = max((k for k in found if k.startswith("mc_")), key=lambda k: found[k]["auroc"])
    pairs = {k: (ev.ood["scores_in"][k], ev.ood["scores_out"][k]) for k in found}
    return [
        ("ood_histogram", f"In- and out-of-distribution values of {best} (the MC score with the highest AUROC).",
         lambda ax: plots.ood_histogram(*pairs[best], ax=ax, xlabel=f"{best} (higher = more likely OOD)")),
        ("ood_roc", "OOD detection: ROC curve of every score.", lambda ax: plots.ood_roc(pairs, ax=ax)),
    ]  # fmt: skip


def _selective_figure(ev: Evaluation) -> list[tuple[str, str, Callable[[Any], Any]]]:
    from .evaluation import selective_scores

    if not ev.selective:
        return []
    name, values, scores = selective_scores(ev)
    marks = tuple(c for c in ev.selective["coverage"] if c < 1)
    caption = (
        f"Selective prediction: {name} of the kept examples as the most uncertain are rejected (points: the table)."
    )
    metric: Any = name  # "accuracy" or "rmse"
    return [("selective", caption, lambda ax: plots.selective(values, scores, metric=metric, marks=marks, ax=ax))]


def _selective_table(ev: Evaluation) -> str:
    sel = ev.selective
    head = "".join(f"<th>{c:g}</th>" for c in sel["coverage"])
    rows = "".join(
        f"<tr><td>{html.escape(score)}</td>{''.join(_cell(v) for v in values)}</tr>"
        for score, values in sel["by_score"].items()
    )
    return (
        f"<h2>Selective prediction: {sel['metric']} at each coverage</h2><p>The examples with the highest "
        "uncertainty (by each score) are rejected until the coverage is left.</p>"
        f"<table><tr><th>score / coverage</th>{head}</tr>{rows}</table>"
    )


def _ood_table(ev: Evaluation) -> str:
    if not ev.ood:
        return ""
    names = ("auroc", "aupr_in", "aupr_out", "fpr95")
    head = "".join(f"<th>{n}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{html.escape(score)}</td>{''.join(_cell(m[n]) for n in names)}</tr>"
        for score, m in ev.ood["metrics"].items()
    )
    return (
        f"<h2>Out-of-distribution detection ({ev.ood['num_examples']} OOD examples)</h2>"
        "<p>Higher scores mean more likely OOD. AUROC: chance that an OOD example scores above an in-distribution "
        "one (0.5 is chance); AUPR: average precision with in- or out-of-distribution as the positive class; "
        "FPR95: fraction of OOD examples accepted when 95% of in-distribution ones are (lower is better).</p>"
        f"<table><tr><th>score</th>{head}</tr>{rows}</table>"
    )


def _figure_sections(ev: Evaluation, folder: Path) -> list[str]:
    """Draw each figure into ``folder`` as a PNG and return the page's ``<figure>`` elements (images inlined)."""
    import matplotlib.pyplot as plt

    specs = _classification_figures(ev) if ev.task == "classification" else _regression_figures(ev)
    specs += _ood_figures(ev) + _selective_figure(ev)
    sections = []
    for name, caption, draw in specs:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        draw(ax)
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        sections.append(
            f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    return sections


def _cell(value: float | None) -> str:
    """A metric's value, or "not defined" where it does not apply (a NaN, or absent on that side)."""
    if value is None or not math.isfinite(value):
        return '<td class="na">not defined</td>'
    return f"<td>{value:.4f}</td>"


def _table(ev: Evaluation) -> str:
    keys = list(dict.fromkeys([*ev.mc, *ev.deterministic]))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td>{_cell(ev.mc.get(k))}{_cell(ev.deterministic.get(k))}"
        f'<td class="note">{html.escape(METRIC_NOTES.get(k.split("[")[0], ""))}</td></tr>'
        for k in keys
    )
    gap = "".join(f"<tr><td>{html.escape(k)}</td>{_cell(v)}</tr>" for k, v in ev.gap.items())
    return (
        "<h2>Metrics</h2><table><tr><th>metric</th><th>MC predictive</th><th>deterministic</th><th class='text'>meaning</th></tr>"
        f"{rows}</table><h2>Gap: MC ensemble vs deterministic</h2><table><tr><th>measure</th><th>value</th></tr>"
        f"{gap}</table>{_selective_table(ev) if ev.selective else ''}{_ood_table(ev)}"
    )


def _about(ev: Evaluation) -> str:
    """Model, data, likelihood, T, N and the date, from the evaluation's ``meta`` where the caller gave them."""
    meta = ev.meta
    items = [
        ("model", meta.get("model", "not given (set evaluation.meta['model'])")),
        ("method", meta.get("method")),
        ("data", meta.get("data", "not given (set evaluation.meta['data'])")),
        ("likelihood", meta.get("likelihood")),
        ("MC samples T", ev.num_samples),
        ("examples N", len(ev.targets)),
        ("written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    rows = "".join(
        f'<tr><th>{html.escape(k)}</th><td class="text">{html.escape(str(v))}</td></tr>'
        for k, v in items
        if v is not None
    )
    return f"<table>{rows}</table>"


def write_report(evaluation: Evaluation, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``metrics.json``, the PNG figures and a self-contained ``index.html``.

    Parameters
    ----------
    evaluation : Evaluation
        The result of :func:`bayesdrop.evaluate`.
    out_dir : path
        The report folder to create.
    overwrite : bool
        Replace an existing folder (otherwise ``FileExistsError``).

    Notes
    -----
    The page names the model, the method and the data from
    ``evaluation.meta`` (keys ``"model"``, ``"method"``, ``"data"``; set them
    before writing), the likelihood, T, N and the date; every metric has a
    one-line explanation, and a metric that does not apply to one side shows
    "not defined".

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists and ``overwrite`` is False.
    """
    import matplotlib

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"Report folder {out} exists; pass overwrite=True (bayesdrop report: --overwrite) to replace it."
        )
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(evaluation.to_dict(), indent=2, allow_nan=False))
        with matplotlib.rc_context({"backend": "Agg"}):
            sections = _figure_sections(evaluation, tmp)
        name = evaluation.meta.get("model")
        title = f"bayesdrop report: {evaluation.task}" + (f", {name}" if name else "")
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td.note,td.text,th.text{text-align:left}"
            "td.note{color:#555;font-size:90%}td.na{color:#888;font-style:italic}"
            "figure{display:inline-block;margin:8px}"
            f"img{{max-width:520px}}</style></head><body><h1>{html.escape(title)}</h1>{_about(evaluation)}"
            f"{_table(evaluation)}<h2>Figures</h2>{''.join(sections)}</body></html>"
        )
        (tmp / "index.html").write_text(page)
    return out
