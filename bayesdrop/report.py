"""Write an evaluation report folder: metrics.json, PNG figures, index.html.

The folder is built under a temporary name beside ``out_dir`` and renamed
into place at the end, so an interrupted run never leaves a half-written
report; an existing folder is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import plots
from ._io import atomic_dir

if TYPE_CHECKING:
    from .evaluation import Evaluation

__all__ = ["write_report"]


def _figures(ev: Evaluation) -> dict[str, Any]:
    """name -> (draw function taking ax, caption)."""
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}

    def new() -> Any:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        return fig, ax

    def add(name: str, caption: str, draw: Any) -> None:
        fig, ax = new()
        draw(ax)
        fig.tight_layout()
        figs[name] = (fig, caption)

    if ev.task == "classification":
        y = ev.targets.astype(int)
        add(
            "reliability",
            "Reliability diagram of the MC predictive (bars) and the deterministic pass (line).",
            lambda ax: plots.reliability_diagram(ev.mc_predictive, y, ax=ax, overlay=ev.det_predictive),
        )
        add(
            "risk_coverage",
            "Selective risk against coverage, ranked by confidence.",
            lambda ax: plots.risk_coverage(ev.mc_predictive, y, ax=ax, overlay=ev.det_predictive),
        )
        add(
            "uncertainty_vs_error",
            "Error against predictive entropy (mean per decile).",
            lambda ax: plots.uncertainty_vs_error(
                ev.per_example["entropy"],
                ev.per_example["error"],
                ax=ax,
                xlabel="predictive entropy (nats)",
                ylabel="error rate",
            ),
        )
        add(
            "gap_histogram",
            "Per-example KL between the MC and deterministic predictives.",
            lambda ax: plots.gap_histogram(ev.per_example["gap_kl"], ax=ax),
        )
        metric = "nll"
    else:
        # D targets: every (example, target) pair is one point of the figures.
        mean, std = ev.mc_predictive[..., 0].ravel(), ev.mc_predictive[..., 1].ravel()
        add(
            "regression_calibration",
            "Observed against expected coverage of central intervals (MC predictive).",
            lambda ax: plots.regression_calibration(mean, std, ev.targets.ravel(), ax=ax, label="MC predictive"),
        )
        add(
            "uncertainty_vs_error",
            "Absolute error against the predictive std (mean per decile).",
            lambda ax: plots.uncertainty_vs_error(
                std, ev.per_example["abs_error"].ravel(), ax=ax, xlabel="predictive std", ylabel="|error|"
            ),
        )
        add(
            "gap_histogram",
            "Per-example difference between the MC mean and the deterministic mean.",
            lambda ax: plots.gap_histogram(
                mean - ev.det_predictive[..., 0].ravel(), ax=ax, xlabel="MC mean - deterministic mean"
            ),
        )
        metric = "rmse"
    add(
        "convergence",
        f"MC {metric} against the number of samples T, with jackknife standard errors.",
        lambda ax: plots.convergence(ev, metric, ax=ax),
    )
    return figs


def _table(ev: Evaluation) -> str:
    keys = list(dict.fromkeys([*ev.mc, *ev.deterministic]))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{ev.mc.get(k, float('nan')):.4f}</td>"
        f"<td>{ev.deterministic.get(k, float('nan')):.4f}</td></tr>"
        for k in keys
    )
    gap = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in ev.gap.items())
    return (
        "<h2>Metrics</h2><table><tr><th>metric</th><th>MC predictive</th><th>deterministic</th></tr>"
        f"{rows}</table><h2>Gap: MC ensemble vs deterministic</h2><table><tr><th>measure</th><th>value</th></tr>"
        f"{gap}</table>"
    )


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
        raise FileExistsError(f"Report folder {out} exists; pass overwrite=True to replace it.")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(evaluation.to_dict(), indent=2, allow_nan=False))
        with matplotlib.rc_context({"backend": "Agg"}):
            import matplotlib.pyplot as plt

            sections = []
            for name, (fig, caption) in _figures(evaluation).items():
                path = tmp / f"{name}.png"
                fig.savefig(path, dpi=100)
                plt.close(fig)
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                sections.append(
                    f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        title = f"bayesdrop report: {evaluation.task}, T={evaluation.num_samples}, N={len(evaluation.targets)}"
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}figure{display:inline-block;margin:8px}"
            f"img{{max-width:520px}}</style></head><body><h1>{html.escape(title)}</h1>{_table(evaluation)}"
            f"<h2>Figures</h2>{''.join(sections)}</body></html>"
        )
        (tmp / "index.html").write_text(page)
    return out
