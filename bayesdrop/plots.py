"""Matplotlib figures of calibration and uncertainty; matplotlib is imported lazily.

Each function computes with :mod:`bayesdrop.metrics`, draws on ``ax`` (a new
figure when ``None``) and returns a dict of the matplotlib objects it made,
so that callers and tests can inspect the artists.

References
----------
- Guo et al. 2017, arXiv:1706.04599, fig. 1 (reliability diagrams).
- Kuleshov et al. 2018, arXiv:1807.00263 (regression calibration plots).
- Geifman & El-Yaniv 2017, arXiv:1705.08500 (risk-coverage curves).
- Ovadia et al. 2019, arXiv:1906.02530, fig. 1-2 (metrics against shift intensity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import metrics
from .metrics._arrays import ArrayLike, as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .active import ActiveHistory
    from .diagnostics import ActivationStats
    from .evaluation import Evaluation

__all__ = [
    "activation_histograms",
    "active_learning_curves",
    "convergence",
    "feature_grid",
    "gap_histogram",
    "log_alpha_histogram",
    "ood_histogram",
    "ood_roc",
    "posterior_comparison",
    "regression_calibration",
    "reliability_diagram",
    "risk_coverage",
    "selective",
    "shift_curves",
    "uncertainty_vs_error",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=(5, 5))
    return new


def reliability_diagram(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    n_bins: int = 15,
    binning: Literal["width", "mass"] = "width",
    ax: Axes | None = None,
    label: str = "MC dropout",
    overlay: ArrayLike | None = None,
    overlay_label: str = "deterministic",
    hist: bool = True,
) -> dict[str, Any]:
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Bars show each non-empty bin's accuracy (empty bins are not drawn), with
    the gap to the bin's mean confidence drawn as hatched bars; the legend
    gives the ECE. ``overlay`` draws a second path (e.g. the deterministic
    probabilities) as a step line with its own ECE; ``hist`` adds the
    confidence histogram in an axis beneath.

    Returns
    -------
    dict
        ``ax``, ``bars`` (accuracy bars), ``gaps`` (gap bars), ``table``
        (the :class:`~bayesdrop.metrics.ReliabilityTable`), and when drawn
        ``overlay`` (Line2D), ``hist_ax``, ``hist_bars``.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Probabilities of the MC predictive.
    labels : array (N,)
        Integer labels.
    n_bins, binning
        As in :func:`bayesdrop.metrics.reliability_table`.
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    label : str
        Legend label of the bars.
    overlay : array, optional
        A second set of probabilities (the deterministic pass) drawn as a step line.
    overlay_label : str
        Its legend label.
    hist : bool
        Add the confidence histogram beneath.
    """
    ax = _axes(ax)
    table = metrics.reliability_table(probs, labels, n_bins=n_bins, binning=binning)
    score = metrics.ece(probs, labels, n_bins=n_bins, binning=binning)
    keep = table.count > 0
    lower, upper = table.lower[keep], table.upper[keep]
    width = np.maximum(upper - lower, 1e-3)
    bars = ax.bar(
        lower,
        table.accuracy[keep],
        width=width,
        align="edge",
        edgecolor="black",
        color="#4c72b0",
        label=f"{label} (ECE {score:.3f})",
    )
    gaps = ax.bar(
        lower,
        table.confidence[keep] - table.accuracy[keep],
        bottom=table.accuracy[keep],
        width=width,
        align="edge",
        color="#dd8452",
        alpha=0.4,
        hatch="//",
        edgecolor="#dd8452",
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    out: dict[str, Any] = {"ax": ax, "bars": bars, "gaps": gaps, "table": table}
    if overlay is not None:
        out["overlay"], out["overlay_table"] = _reliability_line(ax, overlay, labels, n_bins, binning, overlay_label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize="small")
    if hist:
        out["hist_ax"], out["hist_bars"] = _confidence_histogram(ax, lower, table.count[keep], width)
    return out


def _reliability_line(ax: Axes, probs: ArrayLike, labels: ArrayLike, n_bins: int, binning: Any, label: str) -> Any:
    """A second path on a reliability diagram: accuracy at each non-empty bin's middle, with its ECE."""
    table = metrics.reliability_table(probs, labels, n_bins=n_bins, binning=binning)
    score = metrics.ece(probs, labels, n_bins=n_bins, binning=binning)
    keep = table.count > 0
    mids = (table.lower[keep] + table.upper[keep]) / 2
    (line,) = ax.plot(mids, table.accuracy[keep], "o-", color="#c44e52", label=f"{label} (ECE {score:.3f})")
    return line, table


def _confidence_histogram(ax: Axes, lower: Any, counts: Any, width: Any) -> tuple[Axes, Any]:
    """The bins' counts in an axis beneath ``ax``, sharing its x axis."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    hax = make_axes_locatable(ax).append_axes("bottom", size="25%", pad=0.5, sharex=ax)
    hbars = hax.bar(lower, counts, width=width, align="edge", color="#8c8c8c", edgecolor="black")
    hax.set_ylabel("count")
    hax.set_xlabel("confidence")
    ax.set_xlabel("")
    return hax, hbars


def regression_calibration(
    mean: ArrayLike, std: ArrayLike, y: ArrayLike, *, ax: Axes | None = None, label: str = "model"
) -> dict[str, Any]:
    """Observed against expected coverage of central intervals, area shaded.

    Parameters
    ----------
    mean : array (N,)
        Predictive means.
    std : array (N,)
        Predictive standard deviations.
    y : array (N,)
        Targets.
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    label : str
        Legend label.

    Returns
    -------
    dict
        ``ax``, ``line``, ``area`` (the PolyCollection), the arrays ``expected`` and ``observed`` and the
        ``miscalibration_area``.
    """
    ax = _axes(ax)
    expected, observed = metrics.regression_calibration_curve(mean, std, y)
    area = metrics.miscalibration_area(mean, std, y)
    (line,) = ax.plot(expected, observed, "-", color="#4c72b0", label=f"{label} (area {area:.3f})")
    fill = ax.fill_between(expected, expected, observed, color="#4c72b0", alpha=0.25)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlabel("expected coverage of the central interval")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize="small")
    return {
        "ax": ax,
        "line": line,
        "area": fill,
        "expected": expected,
        "observed": observed,
        "miscalibration_area": area,
    }


def risk_coverage(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    ax: Axes | None = None,
    label: str = "MC dropout",
    overlay: ArrayLike | None = None,
    overlay_label: str = "deterministic",
) -> dict[str, Any]:
    """Selective risk against coverage (examples ranked by confidence), AURC in the legend.

    Parameters
    ----------
    probs : array (N, K) or (N,)
        Probabilities of the MC predictive.
    labels : array (N,)
        Integer labels.
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    label : str
        Legend label of ``probs``.
    overlay : array, optional
        A second set of probabilities (the deterministic pass) drawn dashed.
    overlay_label : str
        Its legend label.

    Returns
    -------
    dict
        ``ax``, ``line``, the ``coverage`` and ``risk`` arrays and, when drawn, ``overlay``.
    """
    ax = _axes(ax)
    cov, risk = metrics.risk_coverage_curve(probs, labels)
    (line,) = ax.plot(cov, risk, "-", label=f"{label} (AURC {metrics.aurc(probs, labels):.3f})")
    out: dict[str, Any] = {"ax": ax, "line": line, "coverage": cov, "risk": risk}
    if overlay is not None:
        c2, r2 = metrics.risk_coverage_curve(overlay, labels)
        (out["overlay"],) = ax.plot(c2, r2, "--", label=f"{overlay_label} (AURC {metrics.aurc(overlay, labels):.3f})")
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (error rate among accepted)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize="small")
    return out


def uncertainty_vs_error(
    uncertainty: ArrayLike,
    error: ArrayLike,
    *,
    ax: Axes | None = None,
    n_bins: int = 10,
    xlabel: str = "uncertainty",
    ylabel: str = "error",
) -> dict[str, Any]:
    """Per-example error against uncertainty: a scatter plus the mean error per uncertainty decile.

    Parameters
    ----------
    uncertainty : array (N,)
        Per-example uncertainty (entropy, predictive std, ...).
    error : array (N,)
        Per-example error (0/1 or absolute error).
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    n_bins : int
        Equal-mass bins of the uncertainty for the mean line.
    xlabel, ylabel : str
        Axis labels.

    Returns
    -------
    dict
        ``ax``, ``scatter``, ``line`` and the binned ``bin_uncertainty`` and ``bin_error``.
    """
    ax = _axes(ax)
    u, e = as_float(uncertainty, "uncertainty"), as_float(error, "error")
    metrics._arrays.same_length("uncertainty", u, "error", e)
    order = np.argsort(u, kind="stable")
    groups = [g for g in np.array_split(order, n_bins) if len(g)]
    bu = np.array([u[g].mean() for g in groups])
    be = np.array([e[g].mean() for g in groups])
    scatter = ax.scatter(u, e, s=6, alpha=0.3, color="#8c8c8c")
    (line,) = ax.plot(bu, be, "o-", color="#c44e52", label="mean per decile")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return {"ax": ax, "scatter": scatter, "line": line, "bin_uncertainty": bu, "bin_error": be}


def convergence(evaluation: Evaluation, metric: str, *, ax: Axes | None = None) -> dict[str, Any]:
    """An MC metric against the number of samples T, with a ±1 standard-error band.

    The deterministic (eval-mode) value is drawn as a horizontal line when the
    evaluation has it.

    Parameters
    ----------
    evaluation : Evaluation
        The result of :func:`bayesdrop.evaluate`.
    metric : str
        A key of ``evaluation.convergence`` other than ``"T"``.
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).

    Returns
    -------
    dict
        ``ax``, ``line``, ``band`` (the standard-error band) and, when drawn, ``det_line``.
    """
    if metric not in evaluation.convergence or metric == "T":
        options = ", ".join(repr(k) for k in evaluation.convergence if k != "T")
        raise ValueError(f"The 'metric' parameter of convergence must be one of {options}. Got {metric!r} instead.")
    ax = _axes(ax)
    t = np.asarray(evaluation.convergence["T"], dtype=float)
    v = np.asarray(evaluation.convergence[metric]["value"], dtype=float)
    se = np.nan_to_num(np.asarray(evaluation.convergence[metric]["se"], dtype=float))
    (line,) = ax.plot(t, v, "o-", label=f"MC {metric}")
    band = ax.fill_between(t, v - se, v + se, alpha=0.25)
    out: dict[str, Any] = {"ax": ax, "line": line, "band": band}
    if metric in evaluation.deterministic:
        out["det_line"] = ax.axhline(evaluation.deterministic[metric], color="k", ls="--", lw=1, label="deterministic")
    ax.set_xscale("log")
    ax.set_xlabel("number of MC samples T")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return out


def gap_histogram(
    values: ArrayLike, *, ax: Axes | None = None, bins: int = 30, xlabel: str = "KL(MC || deterministic) per example"
) -> dict[str, Any]:
    """Histogram of a per-example gap between the MC and deterministic predictions.

    Parameters
    ----------
    values : array (N,)
        Per-example gap (e.g. ``Evaluation.per_example["gap_kl"]``).
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    bins : int
        Histogram bins.
    xlabel : str
        Label of the x axis.

    Returns
    -------
    dict
        ``ax``, ``counts``, ``edges``, ``patches``.
    """
    ax = _axes(ax)
    v = as_float(values, "values")
    counts, edges, patches = ax.hist(v, bins=bins, color="#55a868", edgecolor="black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("examples")
    return {"ax": ax, "counts": counts, "edges": edges, "patches": patches}


def _means_of(samples: ArrayLike, name: str) -> Any:
    """(S, N) sampled means from (S, N), (S, N, 1) or (S, N, 2) mean/log-variance samples."""
    s = np.asarray(samples.detach().cpu().double() if hasattr(samples, "detach") else samples, dtype=np.float64)
    if s.ndim == 3 and s.shape[-1] in (1, 2):
        s = s[..., 0]
    if s.ndim != 2:
        raise ValueError(
            f"The '{name}' parameter of posterior_comparison must be (S, N), (S, N, 1) or (S, N, 2). Got {s.shape} instead."
        )
    return s


def posterior_comparison(
    methods: dict[str, ArrayLike],
    reference: ArrayLike,
    x: ArrayLike | None = None,
    *,
    x_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
    num_std: float = 2.0,
    ax: Axes | None = None,
) -> dict[str, Any]:
    """Each method's predictive over the reference posterior's (regression, function space).

    With 1-D inputs ``x`` (N,): the reference's mean and a band of
    ``num_std`` standard deviations of its sampled means, shaded grey, and
    each method's mean and band edges as lines, with the training points.
    Without ``x`` (or with several input columns): each method's per-example
    std of the sampled means against the reference's on log-log axes, with
    the diagonal.

    Parameters
    ----------
    methods : dict of str to array
        Samples of each method, ``(S, N)``, ``(S, N, 1)`` or ``(S, N, 2)``
        (means then log-variances; the log-variances are not drawn).
    reference : array
        The reference samples on the same N inputs (for example
        :meth:`bayesdrop.pyro.ReferencePosterior.predict`).
    x : array (N,) or (N, 1), optional
        The inputs, for the 1-D view.
    x_train, y_train : array, optional
        Training points drawn as dots in the 1-D view.
    num_std : float
        Half-width of the bands in standard deviations.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax``, ``mode`` ("1d" or "std"), ``reference`` (the band or the
        diagonal line), and ``lines`` (method name to its mean line in 1-D, to
        its scatter otherwise).
    """
    ax = _axes(ax)
    ref = _means_of(reference, "reference")
    data = {name: _means_of(s, name) for name, s in methods.items()}
    for name, s in data.items():
        if s.shape[1] != ref.shape[1]:
            raise ValueError(
                f"The samples of '{name}' in posterior_comparison must have the reference's {ref.shape[1]} inputs. "
                f"Got {s.shape[1]} instead."
            )
    xs = None if x is None else as_float(x, "x")
    if xs is not None and xs.ndim == 2 and xs.shape[1] == 1:
        xs = xs[:, 0]
    if xs is not None and xs.ndim == 1:
        if xs.shape[0] != ref.shape[1]:
            raise ValueError(
                f"The 'x' parameter of posterior_comparison must have {ref.shape[1]} rows. Got {xs.shape[0]} instead."
            )
        train = None if x_train is None or y_train is None else (x_train, y_train)
        return _posterior_bands(ax, xs, ref, data, num_std, train)
    return _posterior_stds(ax, ref, data)


def _posterior_bands(
    ax: Axes, xs: Any, ref: Any, data: dict[str, Any], num_std: float, train: tuple[Any, Any] | None
) -> dict[str, Any]:
    """One input dimension: the reference's band and each method's mean and ±num_std lines against x."""
    order = np.argsort(xs)
    xo = xs[order]
    m, s = ref.mean(0)[order], ref.std(0)[order]
    band = ax.fill_between(
        xo, m - num_std * s, m + num_std * s, color="0.8", label=f"reference (NUTS) ±{num_std:g} std"
    )
    ax.plot(xo, m, color="0.3", lw=1.5)
    lines: dict[str, Any] = {}
    for i, (name, smp) in enumerate(data.items()):
        c = f"C{i % 10}"
        mm, ss = smp.mean(0)[order], smp.std(0)[order]
        (lines[name],) = ax.plot(xo, mm, color=c, lw=1.2, label=name)
        ax.plot(xo, mm - num_std * ss, color=c, lw=0.8, ls="--")
        ax.plot(xo, mm + num_std * ss, color=c, lw=0.8, ls="--")
    if train is not None:
        tx, ty = (as_float(v, n).reshape(-1) for v, n in zip(train, ("x_train", "y_train"), strict=True))
        ax.plot(tx, ty, "k.", ms=3, label="training data")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.legend(fontsize="small", loc="best")
    return {"ax": ax, "mode": "1d", "reference": band, "lines": lines}


def _posterior_stds(ax: Axes, ref: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Many inputs: each method's std of f(x) against the reference's, on log axes."""
    ref_std = ref.std(0)
    lines: dict[str, Any] = {}
    for i, (name, smp) in enumerate(data.items()):
        lines[name] = ax.scatter(ref_std, smp.std(0), s=8, color=f"C{i % 10}", alpha=0.7, label=name)
    stds = np.concatenate([ref_std, *(s.std(0) for s in data.values())])
    positive = stds[stds > 0]
    lo, hi = (float(positive.min()) / 1.5, float(positive.max()) * 1.5) if positive.size else (1e-3, 1.0)
    (diag,) = ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equal to the reference")
    ax.set_xscale("log")  # stds spread over decades: methods 2-20x the reference are common
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("reference (NUTS) std of f(x)")
    ax.set_ylabel("method's std of f(x)")
    ax.legend(fontsize="small", loc="best")
    return {"ax": ax, "mode": "std", "reference": diag, "lines": lines}


def activation_histograms(
    stats: Mapping[str, ActivationStats],
    *,
    which: Literal["mean", "activations"] = "mean",
    ax: Axes | None = None,
) -> dict[str, Any]:
    """Overlaid histograms of one layer's activation statistics for several models (Srivastava et al. fig. 8).

    Parameters
    ----------
    stats : mapping of label to ActivationStats
        One layer of each model, e.g. ``{"no dropout": a["2"], "dropout": b["2"]}`` from
        :func:`bayesdrop.diagnostics.activation_statistics`.
    which : {"mean", "activations"}
        Histogram of the units' mean activations (fig. 8a) or of all activations (fig. 8b, log counts).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax`` and ``bars`` (label -> the drawn step artist).
    """
    from .diagnostics import ActivationStats

    ax = _axes(ax)
    if which not in ("mean", "activations"):
        raise ValueError(
            f"The 'which' parameter of activation_histograms must be 'mean' or 'activations'. Got {which!r}."
        )
    if not stats or not all(isinstance(s, ActivationStats) for s in stats.values()):
        raise TypeError("The 'stats' parameter of activation_histograms must map labels to ActivationStats.")
    bars: dict[str, Any] = {}
    for label, s in stats.items():
        counts, edges = (s.mean_counts, s.mean_edges) if which == "mean" else (s.counts, s.edges)
        bars[label] = ax.stairs(counts, edges, label=f"{label} (sparsity {s.near_zero:.2f})", linewidth=1.5)
    if which == "activations":
        ax.set_yscale("log")
    ax.set_xlabel("mean activation of a unit" if which == "mean" else "activation")
    ax.set_ylabel("units" if which == "mean" else "activations")
    ax.legend()
    return {"ax": ax, "bars": bars}


def feature_grid(
    weight: Any, image_shape: tuple[int, int], *, ncols: int | None = None, ax: Axes | None = None
) -> dict[str, Any]:
    """First-layer features (rows of ``weight``) as a grid of grey images (Srivastava et al. fig. 7).

    Parameters
    ----------
    weight : Tensor or array (U, H * W)
    image_shape : (H, W)
    ncols : int, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax``, ``image`` (the AxesImage) and ``grid`` (the array drawn).
    """
    from .diagnostics import tile_features

    ax = _axes(ax)
    grid = tile_features(weight, image_shape, ncols=ncols)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="gray", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return {"ax": ax, "image": image, "grid": grid}


def log_alpha_histogram(model: Any, *, bins: int = 60, ax: Axes | None = None) -> dict[str, Any]:
    """Histogram of log alpha per variational layer of ``model``, with each layer's pruning threshold.

    Parameters
    ----------
    model : nn.Module
        A model with ``VariationalLinear`` / ``VariationalConv`` layers.
    bins : int
        Bins over the clipped range [-8, 8].
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax``, ``counts`` (layer name -> counts) and ``edges``.
    """
    from .nn.variational import LOG_ALPHA_RANGE, named_variational_layers

    layers = named_variational_layers(model)
    if not layers:
        raise ValueError("The 'model' parameter of log_alpha_histogram must contain variational layers.")
    ax = _axes(ax)
    counts: dict[str, Any] = {}
    edges: Any = None
    for name, layer in layers:
        la = layer.weight_log_alpha().detach().cpu().double().flatten().numpy()
        pruned = float(np.mean(la > layer.threshold))
        c, edges, _ = ax.hist(
            la,
            bins=bins,
            range=LOG_ALPHA_RANGE,
            histtype="step",
            linewidth=1.5,
            label=f"{name} ({100 * pruned:.1f}% pruned)",
        )
        counts[name] = c
    for t in sorted({float(m.threshold) for _, m in layers}):
        ax.axvline(t, color="k", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("log alpha (dashed: pruning threshold)")
    ax.set_ylabel("weights")
    ax.legend(fontsize=8)
    return {"ax": ax, "counts": counts, "edges": edges}


def ood_histogram(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    *,
    bins: int = 40,
    ax: Axes | None = None,
    xlabel: str = "score (higher = more likely OOD)",
    labels: tuple[str, str] = ("in-distribution", "out-of-distribution"),
) -> dict[str, Any]:
    """Histograms (densities) of a score on in- and out-of-distribution examples, on shared bins.

    Parameters
    ----------
    scores_in, scores_out : array (N,)
        The score of each example (higher = more likely OOD).
    bins : int
        Number of shared bins over the range of both.
    ax : matplotlib Axes, optional
    xlabel : str
    labels : (str, str)
        Legend labels of the two sets.

    Returns
    -------
    dict
        ``ax``, ``edges`` and ``in``/``out``: the bar containers (their heights are densities).
    """
    ax = _axes(ax)
    s_in, s_out = as_float(scores_in, "scores_in").ravel(), as_float(scores_out, "scores_out").ravel()
    both = np.concatenate([s_in, s_out])
    lo, hi = float(both.min()), float(both.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    _, _, bars_in = ax.hist(s_in, bins=edges.tolist(), density=True, alpha=0.6, color="#4c72b0", label=labels[0])
    _, _, bars_out = ax.hist(s_out, bins=edges.tolist(), density=True, alpha=0.6, color="#dd8452", label=labels[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return {"ax": ax, "edges": edges, "in": bars_in, "out": bars_out}


def ood_roc(scores: Mapping[str, tuple[ArrayLike, ArrayLike]], *, ax: Axes | None = None) -> dict[str, Any]:
    """ROC curves of OOD detection, one per score: OOD examples caught against in-distribution ones flagged.

    Parameters
    ----------
    scores : dict of str to (scores_in, scores_out)
        For each score's name, its values on in- and out-of-distribution
        examples (higher = more likely OOD).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax`` and ``lines``: the Line2D of each score (x = false-positive rate, y = true-positive rate).
    """
    from sklearn.metrics import roc_curve

    ax = _axes(ax)
    lines = {}
    for name, (s_in, s_out) in scores.items():
        a, b = as_float(s_in, "scores_in").ravel(), as_float(s_out, "scores_out").ravel()
        fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b])
        auroc = metrics.ood_detection(a, b)["auroc"]
        (lines[name],) = ax.plot(fpr, tpr, label=f"{name} (AUROC {auroc:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("in-distribution flagged as OOD (false-positive rate)")
    ax.set_ylabel("OOD caught (true-positive rate)")
    ax.legend(fontsize="small", loc="lower right")
    return {"ax": ax, "lines": lines}


def shift_curves(
    results: Mapping[str, Mapping[float, Mapping[str, float]]],
    *,
    metric_names: tuple[str, ...] = ("accuracy", "nll", "ece", "brier"),
    xlabel: str = "shift intensity",
    axes: Any = None,
) -> dict[str, Any]:
    """Metrics against shift intensity, one panel per metric, one line per method (Ovadia et al. 2019).

    Parameters
    ----------
    results : dict of method to {intensity: {metric: value}}
        For each method, its metrics at each intensity (0 for the unshifted
        test set, if measured).
    metric_names : tuple of str
        The panels, left to right.
    xlabel : str
        E.g. ``"rotation (degrees)"``.
    axes : sequence of matplotlib Axes, optional
        One per metric; a new figure with one row of panels when None.

    Returns
    -------
    dict
        ``fig``, ``axes`` and ``lines`` (``lines[metric][method]``: each Line2D).
    """
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(metric_names), figsize=(4 * len(metric_names), 3.6), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(axes)
        fig = axes[0].figure
    if len(axes) != len(metric_names):
        raise ValueError(f"The 'axes' parameter of shift_curves must hold {len(metric_names)} axes. Got {len(axes)}.")
    lines: dict[str, dict[str, Any]] = {m: {} for m in metric_names}
    for ax, metric in zip(axes, metric_names, strict=True):
        for i, (method, by_intensity) in enumerate(results.items()):
            xs = sorted(by_intensity)
            ys = [by_intensity[x][metric] for x in xs]
            (lines[metric][method],) = ax.plot(xs, ys, "o-", ms=3, color=f"C{i % 10}", label=method)
        ax.set_xlabel(xlabel)
        ax.set_title(metric)
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return {"fig": fig, "axes": axes, "lines": lines}


def selective(
    values: ArrayLike,
    scores: Mapping[str, ArrayLike],
    *,
    metric: Literal["accuracy", "rmse"] = "accuracy",
    marks: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95),
    ax: Axes | None = None,
) -> dict[str, Any]:
    """Accuracy (or RMSE) of the kept examples against coverage, rejecting the most uncertain first, per score.

    Parameters
    ----------
    values : array (N,)
        ``metric="accuracy"``: 1 where the prediction is right; ``"rmse"``: the size of each error.
    scores : dict of str to array (N,)
        Uncertainty scores (higher = rejected first).
    metric : {"accuracy", "rmse"}
    marks : tuple of float
        Coverages marked with a point on every curve.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax``, ``lines`` and ``marks`` (the PathCollection of each score's marked points).
    """
    ax = _axes(ax)
    v = as_float(values, "values").ravel()
    lines, points = {}, {}
    for i, (name, u) in enumerate(scores.items()):
        loss = 1 - v if metric == "accuracy" else v**2
        cov, risk = metrics.selective_curve(loss, u)
        y = 1 - risk if metric == "accuracy" else np.sqrt(risk)
        (lines[name],) = ax.plot(cov, y, color=f"C{i % 10}", label=name)
        at = [metrics.selective_accuracy(v, u, c) if metric == "accuracy" else metrics.selective_rmse(v, u, c)
              for c in marks]  # fmt: skip
        points[name] = ax.scatter(marks, at, color=f"C{i % 10}", s=18, zorder=3)
    ax.set_xlabel("coverage (fraction kept, most uncertain rejected first)")
    ax.set_ylabel("accuracy of the kept examples" if metric == "accuracy" else "RMSE of the kept examples")
    ax.set_xlim(0, 1)
    ax.legend(fontsize="small")
    return {"ax": ax, "lines": lines, "marks": points}


def active_learning_curves(
    runs: Mapping[str, Any],
    *,
    metric: str = "accuracy",
    error: bool = False,
    ax: Axes | None = None,
) -> dict[str, Any]:
    """Test ``metric`` against the number of labels, one line per strategy, a band over seeds.

    Parameters
    ----------
    runs : dict of str to list of ActiveHistory
        For each strategy its runs (one per seed) from
        :func:`bayesdrop.active.run_loop`. Runs may stop at different label
        counts: each point averages the runs that reached it.
    metric : str
        A key of the histories' metrics.
    error : bool
        Plot ``1 - metric`` (test error from accuracy).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``ax``, ``lines`` (strategy to Line2D: the mean over runs) and
        ``bands`` (strategy to the filled mean ± one standard error, where
        at least two runs reached the label count).
    """
    ax = _axes(ax)
    lines: dict[str, Any] = {}
    bands: dict[str, Any] = {}
    for i, (name, histories) in enumerate(runs.items()):
        histories = list(histories)
        if not histories:
            raise ValueError(f"The 'runs' parameter of active_learning_curves has no run for {name!r}.")
        by_labels: dict[int, list[float]] = {}
        for h in _as_histories(histories):
            for n, m in zip(h.labels, h.metrics, strict=True):
                by_labels.setdefault(int(n), []).append(1.0 - m[metric] if error else m[metric])
        xs = np.array(sorted(by_labels))
        mean = np.array([np.mean(by_labels[x]) for x in xs])
        (lines[name],) = ax.plot(
            xs,
            mean,
            "-",
            lw=1.5,
            color=f"C{i % 10}",
            label=f"{name} ({len(histories)} run{'s' if len(histories) != 1 else ''})",
        )
        many = np.array([len(by_labels[x]) > 1 for x in xs])
        if many.any():
            se = np.array(
                [
                    np.std(by_labels[x], ddof=1) / np.sqrt(len(by_labels[x])) if m else 0
                    for x, m in zip(xs, many, strict=True)
                ]
            )
            bands[name] = ax.fill_between(
                xs[many], (mean - se)[many], (mean + se)[many], color=f"C{i % 10}", alpha=0.2, lw=0
            )
    ax.set_xlabel("labelled examples")
    ax.set_ylabel(f"test {'error' if error else metric}" if metric == "accuracy" else f"test {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return {"ax": ax, "lines": lines, "bands": bands}


def _as_histories(histories: list[Any]) -> list[ActiveHistory]:
    from .active import ActiveHistory

    return [h if isinstance(h, ActiveHistory) else ActiveHistory(**h) for h in histories]
