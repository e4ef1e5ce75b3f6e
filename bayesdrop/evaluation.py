"""``evaluate``: MC sampling, the deterministic pass, metrics and the gap in one object.

References
----------
- Gal & Ghahramani 2016, arXiv:1506.02142 (MC dropout predictive).
- Srivastava et al. 2014, JMLR 15, sec. 7.5 (weight scaling vs MC averaging).
- Efron & Stein 1981 / Quenouille 1956 (jackknife standard errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import metrics as M
from ._checks import check_int, check_option, check_tensor
from .metrics._arrays import Array, as_float, probs_and_labels
from .sampling import deterministic, sample

__all__ = ["Evaluation", "convergence_grid", "evaluate"]


def convergence_grid(num_samples: int) -> list[int]:
    """T = 1, 2, 5, 10, 20, 50, ... below ``num_samples``, then ``num_samples``.

    Examples
    --------
    >>> convergence_grid(100)
    [1, 2, 5, 10, 20, 50, 100]
    >>> convergence_grid(30)
    [1, 2, 5, 10, 20, 30]
    """
    grid: list[int] = []
    scale = 1
    while True:
        for m in (1, 2, 5):
            if m * scale >= num_samples:
                return [*grid, num_samples]
            grid.append(m * scale)
        scale *= 10


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured.

    Attributes
    ----------
    task : str
        ``"classification"`` or ``"regression"``.
    num_samples : int
        T, the number of MC samples.
    mc, deterministic : dict of str to float
        Metrics of the MC predictive and of the eval-mode pass.
    gap : dict of str to float
        :func:`bayesdrop.metrics.ensemble_gap` or ``regression_gap``.
    per_example : dict of str to array
        Classification: ``entropy``, ``expected_entropy``,
        ``mutual_information``, ``variation_ratio``, ``det_entropy``,
        ``gap_kl`` (KL(MC || det) per example), ``error``. Regression:
        ``epistemic_var``, ``aleatoric_var``, ``total_var``, ``abs_error``.
    convergence : dict
        ``{"T": [...], metric: {"value": [...], "se": [...]}}``: the MC metric
        computed from the first T samples and its jackknife standard error.
    mc_predictive, det_predictive : arrays
        Classification: probabilities (N, K) or (N,); regression: mean and std
        stacked as (N, 2).
    targets : array
        Labels or regression targets.
    """

    task: str
    num_samples: int
    mc: dict[str, float]
    deterministic: dict[str, float]
    gap: dict[str, float]
    per_example: dict[str, Array]
    convergence: dict[str, Any]
    mc_predictive: Array
    det_predictive: Array
    targets: Array
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN and infinities become ``None``)."""
        out: dict[str, Any] = _jsonable(
            {
                "task": self.task,
                "num_samples": self.num_samples,
                "num_examples": len(self.targets),
                "mc": self.mc,
                "deterministic": self.deterministic,
                "gap": self.gap,
                "convergence": self.convergence,
                "meta": self.meta,
            }
        )
        return out

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}={v:.4g}" for k, v in self.mc.items())
        return f"Evaluation(task={self.task!r}, T={self.num_samples}, N={len(self.targets)}, mc: {rows})"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _jackknife(stat: Callable[[Array], float], samples: Array, max_groups: int = 20) -> tuple[float, float]:
    """Statistic of the sample mean over axis 0 and its jackknife SE.

    ``samples`` is (T, ...). With T <= ``max_groups`` every sample is left out
    in turn; above, the delete-a-group jackknife over ``max_groups`` equal
    groups keeps the cost bounded. Leave-out means are (T mean - sum_g)/(T - n_g).
    """
    t = samples.shape[0]
    full = samples.mean(0)
    value = stat(full)
    if t < 2:
        return value, float("nan")
    groups = np.array_split(np.arange(t), min(t, max_groups))
    g = len(groups)
    loo = np.array([stat((t * full - samples[idx].sum(0)) / (t - len(idx))) for idx in groups])
    se = math.sqrt((g - 1) / g * np.sum((loo - loo.mean()) ** 2))
    return value, se


def _convergence(samples: Array, metrics: dict[str, Callable[[Array], float]]) -> dict[str, Any]:
    grid = convergence_grid(samples.shape[0])
    out: dict[str, Any] = {"T": grid}
    for name, fn in metrics.items():
        vals, ses = [], []
        for t in grid:
            v, se = _jackknife(fn, samples[:t])
            vals.append(v)
            ses.append(se)
        out[name] = {"value": vals, "se": ses}
    return out


def _to_probs(out: Tensor, output: str, per_example_ndim: int) -> Tensor:
    """Model output -> probabilities.

    ``per_example_ndim`` is the number of dimensions of one example's output:
    0 (a scalar logit) or a last dimension of size 1 gives P(y = 1) via the
    sigmoid; K >= 2 columns give a softmax (or are taken as they are for
    ``output="probs"``).
    """
    scalar = per_example_ndim == 0 or out.shape[-1] == 1
    if scalar and per_example_ndim > 0:
        out = out[..., 0]
    if output == "probs":
        return out
    return torch.sigmoid(out) if scalar else torch.softmax(out, dim=-1)


def _classification(model: nn.Module, x: Tensor, y: Any, num_samples: int, seed: int | None, output: str) -> Evaluation:
    with torch.no_grad():
        logits = sample(model, x, num_samples, seed=seed)
        with deterministic(model):
            det_out = model(x)
    prob_samples = _to_probs(logits.double(), output, det_out.ndim - 1).cpu().numpy()
    det = _to_probs(det_out.double(), output, det_out.ndim - 1).cpu().numpy()
    mc = prob_samples.mean(0)
    labels = probs_and_labels(mc, y)[1]

    def scores(p: Array) -> dict[str, float]:
        return {
            "accuracy": M.accuracy(p, labels),
            "nll": M.nll(p, labels),
            "brier": M.brier(p, labels),
            "ece": M.ece(p, labels),
            "mce": M.ece(p, labels, norm="max"),
            "aurc": M.aurc(p, labels),
            "misclassification_auroc": M.misclassification_auroc(p, labels),
        }

    samples3 = prob_samples if prob_samples.ndim == 3 else np.stack([1 - prob_samples, prob_samples], -1)
    per = M.per_example_gap(mc, det)
    pred = mc.argmax(1) if mc.ndim == 2 else (mc > 0.5).astype(np.int64)
    per_example = {
        "entropy": M.predictive_entropy(samples3),
        "expected_entropy": M.expected_entropy(samples3),
        "mutual_information": M.mutual_information(samples3),
        "variation_ratio": M.variation_ratio(samples3),
        "det_entropy": M.predictive_entropy(det[None] if det.ndim == 2 else np.stack([1 - det, det], -1)[None]),
        "gap_kl": per["kl_mc_det"],
        "error": (pred != labels).astype(np.float64),
    }
    conv = _convergence(
        prob_samples,
        {
            "accuracy": lambda p: M.accuracy(p, labels),
            "nll": lambda p: M.nll(p, labels),
            "brier": lambda p: M.brier(p, labels),
            "ece": lambda p: M.ece(p, labels),
        },
    )
    return Evaluation(
        "classification",
        num_samples,
        scores(mc),
        scores(det),
        M.ensemble_gap(mc, det, labels),
        per_example,
        conv,
        mc,
        det,
        labels.astype(np.float64),
    )


def _regression(
    model: nn.Module, x: Tensor, y: Any, num_samples: int, seed: int | None, noise_std: float | None
) -> Evaluation:
    with torch.no_grad():
        out = sample(model, x, num_samples, seed=seed).double()
        with deterministic(model):
            det_out = model(x).double()
    target = as_float(y, "y").reshape(-1)
    if out.ndim == 2:
        out, det_out = out[..., None], det_out[..., None]
    if out.shape[-1] not in (1, 2) or out.ndim != 3:
        raise ValueError(
            "evaluate(task='regression') needs a model returning (N,), (N, 1) means or (N, 2) means and "
            f"log-variances. Got output shape {tuple(det_out.shape)} instead."
        )
    mu = out[..., 0].cpu().numpy()
    det_mu = det_out[..., 0].cpu().numpy()
    if noise_std is not None:
        noise_var = np.full_like(mu, float(noise_std) ** 2)
        det_var = np.full_like(det_mu, float(noise_std) ** 2)
        source = "noise_std argument"
    elif out.shape[-1] == 2:
        noise_var = out[..., 1].exp().cpu().numpy()
        det_var = det_out[..., 1].exp().cpu().numpy()
        source = "model log-variance output"
    elif getattr(model, "noise_std", None) is not None:
        ns = float(model.noise_std)  # type: ignore[arg-type]
        noise_var, det_var = np.full_like(mu, ns**2), np.full_like(det_mu, ns**2)
        source = "model.noise_std"
    else:
        raise ValueError(
            "evaluate(task='regression') needs the observation noise: pass noise_std=..., return a second "
            "output column of log-variances, or give the model a 'noise_std' attribute."
        )
    if mu.shape[1] != target.shape[0]:
        raise ValueError(f"The 'y' parameter must have {mu.shape[1]} targets. Got {target.shape[0]} instead.")
    mean = mu.mean(0)
    epistemic = mu.var(0)  # ddof = 0
    aleatoric = noise_var.mean(0)
    total = epistemic + aleatoric
    std = np.sqrt(total)
    det_std = np.sqrt(det_var)

    def scores(m: Array, s: Array) -> dict[str, float]:
        return {
            "rmse": M.rmse(m, target),
            "nll": M.gaussian_nll(m, s, target),
            "crps": M.crps_gaussian(m, s, target),
            "coverage_95": M.interval_coverage(m, s, target, 0.95),
            "width_95": M.interval_width(s, 0.95),
            "miscalibration_area": M.miscalibration_area(m, s, target),
        }

    mc_scores = scores(mean, std)
    mc_scores["mixture_nll"] = M.mixture_nll(mu, target, np.sqrt(noise_var))
    stacked = np.stack([mu, noise_var], -1)  # (T, N, 2)
    conv = _convergence(
        stacked,
        {
            "rmse": lambda s: M.rmse(s[:, 0], target),
            "mean_noise_var": lambda s: float(s[:, 1].mean()),
        },
    )
    return Evaluation(
        "regression",
        num_samples,
        mc_scores,
        scores(det_mu, det_std),
        M.regression_gap(mean, std, det_mu, det_std, target),
        {
            "epistemic_var": epistemic,
            "aleatoric_var": aleatoric,
            "total_var": total,
            "abs_error": np.abs(mean - target),
        },
        conv,
        np.stack([mean, std], 1),
        np.stack([det_mu, det_std], 1),
        target,
        {"aleatoric_source": source},
    )


def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Any,
    *,
    task: str = "classification",
    num_samples: int = 100,
    seed: int | None = None,
    noise_std: float | None = None,
    output: str = "logits",
) -> Evaluation:
    """Sample the MC predictive, run the eval-mode pass and measure both.

    Classification: the model returns logits ``(N, K)`` (softmax per sample)
    or one logit column (sigmoid, P(y = 1)); with ``output="probs"`` it returns
    probabilities. The MC predictive is the mean of the per-sample
    probabilities. Regression: the model returns means ``(N,)``/``(N, 1)`` or
    means and log-variances ``(N, 2)``; the predictive variance is the
    variance of the sampled means (ddof 0, epistemic) plus the mean noise
    variance (aleatoric), which comes from ``noise_std``, the model's
    log-variance column, or a ``noise_std`` attribute of the model, in that
    order.

    Parameters
    ----------
    model : nn.Module
        A model with stochastic layers.
    x : Tensor
        Inputs ``(N, ...)``.
    y : array-like
        Labels (classification) or targets (regression), length N.
    task : {"classification", "regression"}
    num_samples : int
        T, the number of MC samples (100 by default).
    seed : int, optional
        Seed of :func:`bayesdrop.sample`.
    noise_std : float, optional
        Observation noise std for regression models that carry none.
    output : {"logits", "probs"}
        What a classifier returns.

    Returns
    -------
    Evaluation

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    >>> ev = evaluate(net, torch.randn(20, 2), torch.randint(0, 3, (20,)), num_samples=10, seed=0)
    >>> sorted(ev.gap)[:3], ev.convergence["T"]
    (['delta_accuracy', 'delta_brier', 'delta_ece'], [1, 2, 5, 10])
    """
    check_tensor(x, "x", "evaluate")
    check_option(task, "task", "evaluate", ("classification", "regression"))
    check_option(output, "output", "evaluate", ("logits", "probs"))
    num_samples = check_int(num_samples, "num_samples", "evaluate")
    if noise_std is not None and (not isinstance(noise_std, (int, float)) or not noise_std > 0):
        raise ValueError(f"The 'noise_std' parameter of evaluate must be a positive float. Got {noise_std!r} instead.")
    if task == "classification":
        return _classification(model, x, y, num_samples, seed, output)
    return _regression(model, x, y, num_samples, seed, noise_std)
