"""``evaluate``: MC sampling, the deterministic pass, metrics and the gap in one object.

Data streams through in batches: each batch's T samples are reduced to
per-example quantities (predictive probabilities or moments, uncertainties)
and to the sums behind the convergence-in-T curves before the next batch is
drawn, so memory grows with N, never with N x T beyond one batch. Under
torch.distributed with a ``DistributedSampler`` every rank evaluates its
shard, the per-example results are gathered (padding examples dropped) and
the sums all-reduced, so every rank returns the metrics of the whole set.

References
----------
- Gal & Ghahramani 2016, arXiv:1506.02142 (MC dropout predictive).
- Srivastava et al. 2014, JMLR 15, sec. 7.5 (weight scaling vs MC averaging).
- Efron & Stein 1981 / Quenouille 1956 (jackknife standard errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.utils.data.distributed import DistributedSampler

from . import _batches, _calls, metrics
from . import _distributed as distributed
from ._checks import check_int
from ._progress import progress_bar
from .likelihoods import Categorical, Gaussian
from .metrics._arrays import Array, as_labels
from .metrics.classification import bin_index
from .metrics.regression import mixture_log_likelihood
from .montecarlo import deterministic, sample_batches

__all__ = ["SELECTIVE_COVERAGES", "Evaluation", "convergence_grid", "evaluate"]

#: The coverages at which :attr:`Evaluation.selective` reports the accuracy or RMSE of the kept examples.
SELECTIVE_COVERAGES = (0.5, 0.8, 0.9, 0.95, 1.0)


def convergence_grid(num_samples: int) -> list[int]:
    """T = 1, 2, 5, 10, 20, 50, ... below ``num_samples``, then ``num_samples``.

    Parameters
    ----------
    num_samples : int
        T, the largest number of samples.

    Returns
    -------
    list of int
        Increasing, ending with ``num_samples``.

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

    With D > 1 regression targets every metric is the mean over targets and
    ``"<metric>[d]"`` holds target d's value; per-example arrays are (N, D).

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
        stacked on the last axis, (N, 2), or (N, D, 2) for D targets.
    targets : array
        Labels, or regression targets (N,) or (N, D).
    meta : dict
        ``likelihood`` (its repr), ``num_targets`` and anything the caller adds.
    selective : dict
        Selective prediction: ``coverage`` (:data:`SELECTIVE_COVERAGES`),
        ``metric`` (``"accuracy"`` or ``"rmse"``) and ``by_score``: for each
        uncertainty score (classification: ``max_prob`` (1 minus the top
        probability), ``entropy``, ``mutual_information``,
        ``variation_ratio``; regression: ``epistemic_var``, ``total_var``)
        the metric of the examples kept when the most uncertain are rejected
        down to each coverage.
    ood : dict
        Empty unless ``evaluate(..., ood=data)``: ``metrics`` (for each
        score, :func:`bayesdrop.metrics.ood_detection`'s ``auroc``,
        ``aupr_in``, ``aupr_out``, ``fpr95``), ``num_examples`` (of the OOD
        data) and ``scores_in``/``scores_out`` (each score's values per
        example). Scores: ``mc_max_prob``, ``mc_entropy``,
        ``mc_mutual_information``, ``mc_variation_ratio`` (MC samples) and
        ``det_max_prob``, ``det_max_logit``, ``det_energy`` (the eval-mode
        pass) for a classifier; ``mc_epistemic_var``, ``mc_total_var`` for a
        regressor. Higher means more likely OOD.
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
    ood: dict[str, Any] = field(default_factory=dict)
    selective: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN and infinities become ``None``).

        Returns
        -------
        dict
            The metrics, the gap, the convergence table and the settings; not the
            per-example arrays.
        """
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
                "selective": self.selective,
                **({"ood": {k: self.ood[k] for k in ("metrics", "num_examples")}} if self.ood else {}),
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


def _jackknife_se(loo: Array) -> float:
    """Jackknife standard error from leave-a-group-out values (NaN for fewer than two)."""
    g = len(loo)
    if g < 2:
        return float("nan")
    return math.sqrt((g - 1) / g * float(np.sum((loo - loo.mean()) ** 2)))


class _Convergence:
    """Sums behind the convergence-in-T curves, accumulated batch by batch.

    For every T of :func:`convergence_grid` and every variant of the mean of
    the first T samples (the full mean, then the delete-a-group means over at
    most ``max_groups`` equal groups: ``(T mean - group sum) / (T - n_g)``),
    ``stat_sums`` maps that mean to a vector of per-example sums (correct
    counts, NLL sums, calibration bins, ...). ``finish`` turns a vector and
    the number of examples into metric values; the jackknife over the
    variants gives their standard errors.
    """

    def __init__(self, num_samples: int, size: int, max_groups: int = 20) -> None:
        self.grid = convergence_grid(num_samples)
        self.groups = [np.array_split(np.arange(t), min(t, max_groups)) if t > 1 else [] for t in self.grid]
        self.sums = np.zeros((len(self.grid), 1 + max_groups, size))

    def add(self, samples: Array, stat_sums: Callable[[Array], Array]) -> None:
        for i, t in enumerate(self.grid):
            total = samples[:t].sum(0)
            self.sums[i, 0] += stat_sums(total / t)
            for j, idx in enumerate(self.groups[i], start=1):
                self.sums[i, j] += stat_sums((total - samples[idx].sum(0)) / (t - len(idx)))

    def finish(self, count: float, to_metrics: Callable[[Array, float], dict[str, float]]) -> dict[str, Any]:
        sums = distributed.all_reduce_sum(torch.from_numpy(self.sums)).numpy()
        out: dict[str, Any] = {"T": self.grid}
        for i in range(len(self.grid)):
            full = to_metrics(sums[i, 0], count)
            loo = [to_metrics(sums[i, j], count) for j in range(1, 1 + len(self.groups[i]))]
            for name, value in full.items():
                entry = out.setdefault(name, {"value": [], "se": []})
                entry["value"].append(value)
                entry["se"].append(_jackknife_se(np.array([m[name] for m in loo])))
        return out


# ----------------------------------------------------------------- classification

_N_BINS = 15


def _class_sums(p: Array, y: npt.NDArray[np.int64]) -> Array:
    """Correct count, NLL sum, Brier sum and the 15 ECE bins (count, correct, confidence) of means ``p``."""
    if p.ndim == 2:
        py, pred, conf = p[np.arange(len(y)), y], p.argmax(1), p.max(1)
        outcome = (pred == y).astype(np.float64)
        sq = np.sum(p**2, 1) - 2 * py + 1
    else:
        py, pred, conf = np.where(y == 1, p, 1 - p), (p > 0.5).astype(np.int64), p
        outcome, sq = y.astype(np.float64), (p - y) ** 2
    with np.errstate(divide="ignore"):
        nll = -np.log(py).sum()
    idx = bin_index(conf, _N_BINS, right=False)
    bins = [np.bincount(idx, weights=w, minlength=_N_BINS) for w in (np.ones_like(conf), outcome, conf)]
    return np.concatenate([[np.sum(pred == y), nll, sq.sum()], *bins])


def _class_metrics(s: Array, n: float) -> dict[str, float]:
    ece = np.abs(s[3 + _N_BINS : 3 + 2 * _N_BINS] - s[3 + 2 * _N_BINS :]).sum() / n
    return {"accuracy": float(s[0] / n), "nll": float(s[1] / n), "brier": float(s[2] / n), "ece": float(ece)}


def _probs(out: Tensor) -> Array:
    """(T, B) or (T, B, 1) logits -> P(y = 1) via the sigmoid; (T, B, K) -> softmax. On the CPU in float64."""
    out = out.detach().cpu().double()
    if out.ndim == 3 and out.shape[-1] == 1:
        out = out[..., 0]
    return (torch.sigmoid(out) if out.ndim == 2 else torch.softmax(out, dim=-1)).numpy()


def _class_logits(out: Tensor, passes: int) -> Tensor:
    """Logits with a class axis, on the CPU in float64: one logit column (no class axis, or K = 1) as [0, z]."""
    out = out.detach().cpu().double()
    if out.ndim == passes + 1 or out.shape[-1] == 1:
        z = out.reshape(out.shape[: passes + 1])
        return torch.stack([torch.zeros_like(z), z], -1)
    return out


class _Classification:
    task = "classification"

    def __init__(self, likelihood: Categorical, num_samples: int) -> None:
        self.likelihood, self.num_samples = likelihood, num_samples
        self.conv = _Convergence(num_samples, 3 + 3 * _N_BINS)
        self.parts: list[dict[str, Array]] = []

    def add(self, samples: Tensor, det_out: Tensor, target: Tensor) -> None:
        probs, det = _probs(samples), _probs(det_out[None])[0]
        if probs.ndim not in (2, 3):
            raise ValueError(
                "evaluate with a Categorical likelihood needs logits (N, K) or one logit column (N,)/(N, 1). "
                f"Got outputs of shape {tuple(det_out.shape)} instead."
            )
        k = probs.shape[-1] if probs.ndim == 3 else 2
        values = target.cpu().numpy().reshape(-1)
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise ValueError(
                "The 'y' parameter of evaluate must hold integer class labels for a Categorical likelihood (the "
                f"default). Got {values[values != np.round(values)][0]!r} instead. For a regressor pass "
                "likelihood=bayesdrop.Gaussian() (or Gaussian(heteroscedastic=True) for means and log-variances)."
            )
        labels = as_labels(values, probs.shape[1], k, "y")
        mc = probs.mean(0)
        samples3 = probs if probs.ndim == 3 else np.stack([1 - probs, probs], -1)
        det3 = det[None] if det.ndim == 2 else np.stack([1 - det, det], -1)[None]
        pred = mc.argmax(1) if mc.ndim == 2 else (mc > 0.5).astype(np.int64)
        self.parts.append(
            {
                "mc": mc,
                "det": det,
                "labels": labels.astype(np.float64),
                "entropy": metrics.predictive_entropy(samples3),
                "expected_entropy": metrics.expected_entropy(samples3),
                "mutual_information": metrics.mutual_information(samples3),
                "variation_ratio": metrics.variation_ratio(samples3),
                "det_entropy": metrics.predictive_entropy(det3),
                "gap_kl": metrics.per_example_gap(mc, det)["kl_mc_det"],
                "error": (pred != labels).astype(np.float64),
            }
        )
        self.conv.add(probs, lambda p: _class_sums(p, labels))

    @staticmethod
    def det_scores(det_out: Tensor) -> dict[str, Array]:
        """The eval-mode pass's OOD scores of each example (higher = more likely OOD)."""
        return {f"det_{k}": v for k, v in metrics.deterministic_scores(_class_logits(det_out, 0).numpy()).items()}

    def scores(self, samples: Tensor, det_out: Tensor) -> dict[str, Array]:
        """All OOD scores of each example, from the samples and the eval-mode pass (for OOD data)."""
        probs = torch.softmax(_class_logits(samples, 1), -1).numpy()
        return {**{f"mc_{k}": v for k, v in metrics.mc_scores(probs).items()}, **self.det_scores(det_out)}

    def finish(self, per: dict[str, Array]) -> Evaluation:
        mc, det, labels = per.pop("mc"), per.pop("det"), per.pop("labels").astype(np.int64)

        def scores(p: Array) -> dict[str, float]:
            return {
                "accuracy": metrics.accuracy(p, labels),
                "nll": metrics.nll(p, labels),
                "brier": metrics.brier(p, labels),
                "ece": metrics.ece(p, labels),
                "mce": metrics.ece(p, labels, norm="max"),
                "aurc": metrics.aurc(p, labels),
                "misclassification_auroc": metrics.misclassification_auroc(p, labels),
            }

        conv = self.conv.finish(float(len(labels)), _class_metrics)
        gap = metrics.ensemble_gap(mc, det, labels)
        return Evaluation(
            self.task, self.num_samples, scores(mc), scores(det), gap, per, conv, mc, det, labels.astype(np.float64)
        )


# ----------------------------------------------------------------- regression


def _np(t: Tensor) -> Array:
    return t.detach().cpu().double().numpy()


class _Regression:
    task = "regression"

    def __init__(self, likelihood: Gaussian, num_samples: int) -> None:
        self.likelihood, self.num_samples, self.d = likelihood, num_samples, likelihood.num_targets
        self.conv = _Convergence(num_samples, 2)
        self.parts: list[dict[str, Array]] = []

    def _split(self, out: Tensor, passes: int) -> tuple[Array, Array]:
        """Means and noise variances ``(..., B, D)`` of outputs ``(..., B, C)`` as the likelihood reads them."""
        lead = out.shape[: passes + 1]
        flat = out.reshape(-1) if out.ndim == passes + 1 else out.reshape(math.prod(lead), -1)
        mean, log_var = self.likelihood.split(flat.detach().cpu().double())
        return _np(mean).reshape(*lead, self.d), np.exp(_np(log_var)).reshape(*lead, self.d)

    def add(self, samples: Tensor, det_out: Tensor, target: Tensor) -> None:
        mu, noise_var = self._split(samples, 1)  # (T, B, D)
        det_mu, det_var = self._split(det_out, 0)  # (B, D)
        b = mu.shape[1]
        y = _np(target)
        if y.size != b * self.d:
            raise ValueError(
                f"The 'y' parameter of evaluate must have {self.d} target(s) per example ({b * self.d} for this "
                f"batch of {b}). Got {y.size} values (shape {tuple(target.shape)}) instead."
            )
        y = y.reshape(b, self.d)
        mix = -mixture_log_likelihood(mu, y, noise_var)  # (B, D)
        self.parts.append(
            {
                "mean": mu.mean(0),
                "epistemic_var": mu.var(0),  # ddof = 0
                "aleatoric_var": noise_var.mean(0),
                "det_mean": det_mu,
                "det_var": det_var,
                "target": y,
                "mixture_nll": mix,
            }
        )
        stacked = np.stack([mu, noise_var], -1)  # (T, B, D, 2)
        self.conv.add(stacked, lambda s: np.array([np.sum((s[..., 0] - y) ** 2), np.sum(s[..., 1])]))

    @staticmethod
    def det_scores(det_out: Tensor) -> dict[str, Array]:
        """No eval-mode OOD score for a regressor."""
        return {}

    def scores(self, samples: Tensor, det_out: Tensor) -> dict[str, Array]:
        """The OOD scores of each example: the epistemic and total predictive variance (mean over targets)."""
        mu, noise_var = self._split(samples, 1)
        epistemic = mu.var(0)
        return {"mc_epistemic_var": epistemic.mean(-1), "mc_total_var": (epistemic + noise_var.mean(0)).mean(-1)}

    def finish(self, per: dict[str, Array]) -> Evaluation:
        mean, det_mu, det_var, y, mix = (per.pop(k) for k in ("mean", "det_mean", "det_var", "target", "mixture_nll"))
        epi, alea = per["epistemic_var"], per["aleatoric_var"]
        total = epi + alea
        std, det_std = np.sqrt(total), np.sqrt(det_var)

        def scores(m: Array, s: Array, d: int) -> dict[str, float]:
            return {
                "rmse": metrics.rmse(m[:, d], y[:, d]),
                "nll": metrics.gaussian_nll(m[:, d], s[:, d], y[:, d]),
                "crps": metrics.crps_gaussian(m[:, d], s[:, d], y[:, d]),
                "coverage_95": metrics.interval_coverage(m[:, d], s[:, d], y[:, d], 0.95),
                "width_95": metrics.interval_width(s[:, d], 0.95),
                "miscalibration_area": metrics.miscalibration_area(m[:, d], s[:, d], y[:, d]),
            }

        mc_d, det_d, gap_d = [], [], []
        for d in range(self.d):
            mc_d.append({**scores(mean, std, d), "mixture_nll": float(mix[:, d].mean())})
            det_d.append(scores(det_mu, det_std, d))
            gap_d.append(metrics.regression_gap(mean[:, d], std[:, d], det_mu[:, d], det_std[:, d], y[:, d]))
        n = float(len(y))
        conv = self.conv.finish(
            n, lambda s, n: {"rmse": math.sqrt(s[0] / (n * self.d)), "mean_noise_var": float(s[1] / (n * self.d))}
        )
        per["total_var"], per["abs_error"] = total, np.abs(mean - y)

        def one(a: Array) -> Array:  # drop the target axis when D = 1
            return a[:, 0] if self.d == 1 else a

        return Evaluation(
            self.task,
            self.num_samples,
            _per_target(mc_d),
            _per_target(det_d),
            _per_target(gap_d),
            {k: one(v) for k, v in per.items()},
            conv,
            one(np.stack([mean, std], -1)),
            one(np.stack([det_mu, det_std], -1)),
            one(y),
        )


def _per_target(scores: list[dict[str, float]]) -> dict[str, float]:
    """The mean over targets of each metric, then ``name[d]`` per target when there are several."""
    out = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    if len(scores) > 1:
        out.update({f"{k}[{d}]": v for d, s in enumerate(scores) for k, v in s.items()})
    return out


# ----------------------------------------------------------------- the driver


def _shard_positions(data: Iterable[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None:
    """Dataset indices of this rank's examples and which are not padding, under a DistributedSampler."""
    sampler = _batches.sampler_of(data)
    if not (distributed.is_distributed() and isinstance(sampler, DistributedSampler)):
        return None
    idx = np.fromiter(iter(sampler), dtype=np.int64)
    position = sampler.rank + sampler.num_replicas * np.arange(len(idx))
    return idx, position < len(sampler.dataset)  # type: ignore[arg-type]


def _gather(parts: list[dict[str, Array]], shard: tuple[Any, Any] | None, seen: int) -> dict[str, Array]:
    """Per-example arrays of the whole set: this rank's, or every rank's in dataset order (padding was dropped)."""
    if not parts:
        raise ValueError("The 'data' parameter of evaluate yielded no batch.")
    local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if shard is None:
        return local
    idx, keep = shard[0][:seen], shard[1][:seen]
    everyone = distributed.all_gather_objects((idx[keep], local))
    order = np.argsort(np.concatenate([e[0] for e in everyone]), kind="stable")
    return {k: np.concatenate([e[1][k] for e in everyone])[order] for k in local}


def evaluate(
    model: nn.Module,
    data: Any,
    y: Any = None,
    *,
    likelihood: Categorical | Gaussian | None = None,
    num_samples: int = 100,
    output: _calls.Output = None,
    target: str = "labels",
    train_mode: bool = False,
    seed: int | None = None,
    batch_size: int = 256,
    progress: bool | None = False,
    ood: Any = None,
) -> Evaluation:
    """Sample the MC predictive, run the eval-mode pass and measure both, batch by batch.

    What the model's outputs mean comes from ``likelihood``:

    - ``Categorical()`` (the default): logits ``(N, K)`` (softmax per
      sample) or one logit column ``(N,)``/``(N, 1)`` (sigmoid, P(y = 1)).
      The MC predictive is the mean of the per-sample probabilities. A model
      that returns probabilities: ``output=lambda p: p.log()``.
    - ``Gaussian(num_targets=D)``: means ``(N, D)`` with the likelihood's
      homoscedastic noise (learned or fixed).
    - ``Gaussian(heteroscedastic=True, num_targets=D)``: means then
      log-variances, ``(N, 2 D)``.

    The regression predictive variance is the variance of the sampled means
    (ddof 0, epistemic) plus the mean noise variance (aleatoric); with D
    targets every metric is given per target and averaged.

    Parameters
    ----------
    model : nn.Module
        A model with stochastic layers (a DDP wrapper is looked through).
    data : Tensor, tuple/dict of tensors, (X, y), Dataset or DataLoader
        Inputs with ``y`` given, or data as in :func:`bayesdrop.fit`. A
        DataLoader streams: memory grows with N, never with N x T beyond one
        batch. Under torch.distributed with a ``DistributedSampler`` the
        metrics are those of the whole set on every rank (padding examples
        are dropped); without a process group, one process.
    y : array-like, optional
        Labels or targets when ``data`` holds the inputs only.
    likelihood : Categorical or Gaussian, optional
        How to read the outputs (see above); ``Categorical()`` by default.
    num_samples : int
        T, the number of MC samples (100 by default).
    output : int, str or callable, optional
        Picks the tensor from a model that returns a tuple, dict or
        ``ModelOutput`` (see :func:`bayesdrop.sample`).
    target : str
        The key of the labels in dict batches, the Hugging Face way: a batch
        ``{"input_ids": ..., "attention_mask": ..., "labels": ...}`` calls
        ``model(input_ids=..., attention_mask=...)`` and scores ``labels``
        (``"labels"`` by default).
    train_mode : bool
        Sample with ``sampling(model, train_mode=True)`` (functional and
        attention dropout).
    seed : int, optional
        Makes the draws reproducible without touching the global RNG. Each
        batch's noise comes from the seed combined with the batch's position
        (and, under torch.distributed, the rank); unseeded, the seed is drawn
        from torch's global RNG. The same seed with another batch size gives
        other draws (from the same distribution): the metrics agree within
        their Monte Carlo error, not to the last digit.
    batch_size : int
        Batch size for in-memory data (a DataLoader keeps its own).
    progress : bool or None
        A progress bar over the batches (rank 0); None: in a terminal or notebook only.
    ood : data, optional
        Out-of-distribution inputs, in any form ``data`` takes (a tensor or
        array of inputs, a tuple/dict of them, ``(X, y)``, a Dataset or a
        DataLoader; labels are not needed and ignored). Adds
        :attr:`Evaluation.ood`: every OOD score on both sets and how well it
        separates them (AUROC, AUPR-in, AUPR-out, FPR at 95% TPR).

    Returns
    -------
    Evaluation

    Raises
    ------
    TypeError
        If the data yields anything but ``(x, y)`` batches, or the likelihood
        is not a Categorical or Gaussian.
    ValueError
        If the outputs do not fit the likelihood, labels are out of range or
        the targets do not match the likelihood's ``num_targets``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    >>> ev = evaluate(net, torch.randn(20, 2), torch.randint(0, 3, (20,)), num_samples=10, seed=0)
    >>> sorted(ev.gap)[:3], ev.convergence["T"]
    (['delta_accuracy', 'delta_brier', 'delta_ece'], [1, 2, 5, 10])
    """
    num_samples = check_int(num_samples, "num_samples", "evaluate")
    batch_size = check_int(batch_size, "batch_size", "evaluate")
    likelihood = Categorical() if likelihood is None else likelihood
    if not isinstance(likelihood, (Categorical, Gaussian)):
        raise TypeError(
            "The 'likelihood' parameter of evaluate must be a Categorical or Gaussian. "
            f"Got {type(likelihood).__name__} instead."
        )
    categorical = isinstance(likelihood, Categorical)
    if y is None and isinstance(data, Tensor):
        raise TypeError("The 'y' parameter of evaluate is required when 'data' is a tensor of inputs.")
    loader = _batches.batches(
        data, y, batch_size=batch_size, shuffle=False, name="data", owner="evaluate", categorical=categorical
    )
    net = _calls.unwrap(model)
    acc = (
        _Classification(likelihood, num_samples)
        if isinstance(likelihood, Categorical)
        else _Regression(likelihood, num_samples)
    )
    run = _Passes(net, num_samples, output, train_mode, distributed.seed_or_draw(seed), target)
    shown = progress if distributed.rank() == 0 else False
    det_scores: list[dict[str, Array]] = []  # the eval-mode scores of the data, when OOD data is given
    for s, det, labels in run(loader, progress_bar(loader, desc="evaluate", progress=shown, leave=False)):
        acc.add(s, det, labels)
        if ood is not None:
            det_scores.append(acc.det_scores(det))
    ev = acc.finish(_gather(acc.parts, run.shard, run.seen))
    ev.meta.update(likelihood=repr(likelihood), num_targets=getattr(likelihood, "num_targets", 1))
    ev.selective = _selective(ev)
    if ood is not None:
        scores_in = {f"mc_{k}": v for k, v in uncertainty_scores(ev).items()}
        if det_scores[0]:
            scores_in.update(_gather(det_scores, run.shard, run.seen))
        ev.ood = _ood_section(acc, run, ood, scores_in, batch_size, shown)
    return ev


def uncertainty_scores(ev: Evaluation) -> dict[str, Array]:
    """Each example's uncertainty from the MC predictive (higher = more uncertain), as ``evaluate`` measured it.

    Classification: ``max_prob`` (1 minus the top probability), ``entropy``,
    ``mutual_information``, ``variation_ratio``; regression:
    ``epistemic_var`` and ``total_var`` (the mean over targets).
    """
    per = ev.per_example
    if ev.task == "classification":
        p = ev.mc_predictive
        top = p.max(1) if p.ndim == 2 else np.maximum(p, 1 - p)
        return {"max_prob": 1 - top, **{k: per[k] for k in ("entropy", "mutual_information", "variation_ratio")}}
    return {k: per[k] if per[k].ndim == 1 else per[k].mean(1) for k in ("epistemic_var", "total_var")}


def selective_scores(ev: Evaluation) -> tuple[str, Array, dict[str, Array]]:
    """The selective metric's name, per-example values (1 if right; or the error's size) and the uncertainties."""
    per = ev.per_example
    if ev.task == "classification":
        return "accuracy", 1 - per["error"], uncertainty_scores(ev)
    squared = per["abs_error"] ** 2
    return "rmse", np.sqrt(squared if squared.ndim == 1 else squared.mean(1)), uncertainty_scores(ev)


def _selective(ev: Evaluation) -> dict[str, Any]:
    name, values, scores = selective_scores(ev)
    measure = metrics.selective_accuracy if name == "accuracy" else metrics.selective_rmse
    by_score = {score: [measure(values, u, c) for c in SELECTIVE_COVERAGES] for score, u in scores.items()}
    return {"coverage": list(SELECTIVE_COVERAGES), "metric": name, "by_score": by_score}


@dataclass
class _Passes:
    """The MC samples and the eval-mode pass of every batch, padding examples of a DistributedSampler dropped."""

    net: nn.Module
    num_samples: int
    output: _calls.Output
    train_mode: bool
    base_seed: int
    target: str
    labelled: bool = True
    shard: Any = field(default=None, init=False)  # this rank's examples under a DistributedSampler
    seen: int = field(default=0, init=False)  # batch rows gone through, padding included

    def __call__(self, loader: Iterable[Any], batches: Iterable[Any]) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        self.shard, self.seen = _shard_positions(loader), 0
        run = sample_batches(self.net, batches, self._split, self.num_samples, self.output, self.train_mode,
                             self.base_seed, "evaluate")  # fmt: skip
        for x, s, labels in run:
            assert s is not None
            with torch.no_grad(), deterministic(self.net):
                det = _calls.select_output(_calls.call_model(self.net, x), self.output, "evaluate")
            rows = len(det)
            if self.shard is not None:
                keep = torch.from_numpy(self.shard[1][self.seen : self.seen + rows])
                s, det, labels = s[:, keep.to(s.device)], det[keep.to(det.device)], labels[keep]
            self.seen += rows
            yield s, det, labels

    def _split(self, batch: Any) -> tuple[Any, Tensor]:
        if self.labelled:
            return _batches.split_batch(batch, "data", "evaluate", self.target)
        return _batches.split_unlabelled(batch, "ood", "evaluate", self.target)


def _ood_section(
    acc: _Classification | _Regression,
    run: _Passes,
    ood: Any,
    scores_in: dict[str, Array],
    batch_size: int,
    progress: bool | None,
) -> dict[str, Any]:
    """Each score on the OOD data, and how well it separates them from the evaluated data."""
    loader = _batches.input_batches(ood, batch_size, "ood", "evaluate")
    other = _Passes(run.net, run.num_samples, run.output, run.train_mode, distributed.derive_seed(run.base_seed, -1),
                    run.target, labelled=False)  # fmt: skip
    bar = progress_bar(loader, desc="evaluate ood", progress=progress, leave=False)
    parts = [acc.scores(s, det) for s, det, _ in other(loader, bar)]
    if not parts:
        raise ValueError("The 'ood' parameter of evaluate yielded no batch.")
    scores_out = _gather(parts, other.shard, other.seen)
    return {
        "metrics": {name: metrics.ood_detection(scores_in[name], scores_out[name]) for name in scores_in},
        "num_examples": len(next(iter(scores_out.values()))),
        "scores_in": scores_in,
        "scores_out": scores_out,
    }
