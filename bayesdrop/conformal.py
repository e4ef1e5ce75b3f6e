"""Split-conformal intervals and prediction sets on the MC predictive: coverage that holds in finite samples.

An MC-dropout interval covers what the approximate posterior says it
covers. Split conformal prediction (Vovk et al. 2005; Lei et al. 2018)
corrects it on a held-out calibration set of n examples: with nonconformity
scores s_i and the ⌈(n + 1)(1 - alpha)⌉-th smallest of them as the
threshold, a new exchangeable example is covered with probability at least
1 - alpha (the ``level``), whatever the model.

- Regression (:func:`conformal_intervals`): scores ``|y - mu| / sigma`` with the
  MC predictive mean mu and standard deviation sigma (the sampled means'
  spread plus the learned noise; *normalised*, Lei et al. 2018, sec. 5.2),
  or ``|y - mu|`` (``normalized=False``, constant width). The interval is
  mu ± q sigma.
- Classification (:func:`conformal_sets`): from the MC predictive
  probabilities p (the mean of the per-sample softmaxes), ``"lac"`` (also
  called THR: score 1 - p_y; Sadinle et al. 2019), ``"aps"`` (the mass of
  the classes at least as probable as y, non-randomised; Romano et al. 2020)
  or ``"raps"`` (APS plus ``lam * max(0, rank(y) - k_reg)``; Angelopoulos et
  al. 2021).

The conformal arithmetic (the finite-sample quantile, the intervals and the
sets from the p-values) is done by crepes (Boström 2022,
``crepes.ConformalRegressor`` and ``crepes.ConformalClassifier``); this
module computes the MC predictive and the scores. Calibration data is
anything :func:`bayesdrop.evaluate` takes; the result knows its level and
applies to new inputs with ``predict``.

References
----------
- Angelopoulos & Bates 2021, "A gentle introduction to conformal prediction
  and distribution-free uncertainty quantification", arXiv:2107.07511.
- Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018, "Distribution-free
  predictive inference for regression", arXiv:1604.04173.
- Romano, Sesia & Candès 2020, "Classification with valid and adaptive
  coverage", arXiv:2006.02544.
- Angelopoulos, Bates, Malik & Jordan 2021, "Uncertainty sets for image
  classifiers using conformal prediction", arXiv:2009.14193 (RAPS).
- Boström 2022, "crepes: a Python package for generating conformal
  regressors and predictive systems", PMLR 179.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from . import _batches, _calls
from ._checks import check_int, check_option
from ._distributed import seed_or_draw
from .likelihoods import Gaussian
from .metrics._arrays import as_float, as_probs
from .montecarlo import sample_batches

__all__ = ["ConformalIntervals", "ConformalSets", "conformal_intervals", "conformal_sets", "set_scores"]

SetMethod = Literal["lac", "aps", "raps"]
SET_METHODS: tuple[SetMethod, ...] = ("lac", "aps", "raps")

Array = npt.NDArray[np.float64]

#: crepes reads its quantile's index as int((1 - level)(n + 1)) - 1 in floating point; a level a hair below the
#: one asked keeps 1 - 0.9 = 0.0999... from dropping an index when (1 - level)(n + 1) is a whole number.
_LEVEL_NUDGE = 1e-12


def _check_level(level: Any, n: int, owner: str) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"The 'level' parameter of {owner} must be a float in (0, 1). Got {level!r} instead.")
    need = math.ceil(1 / (1 - level) - 1 - 1e-9)
    if n < need:
        raise ValueError(
            f"The calibration data of {owner} holds {n} examples: a level of {level:g} needs at least {need} "
            f"(1 / (1 - level) - 1), or every interval or set would be unbounded."
        )
    return float(level)


# --------------------------------------------------------------------------- the MC predictive


def _predict(
    model: nn.Module, data: Any, y: Any, opts: dict[str, Any], owner: str, labelled: bool
) -> tuple[Tensor, Any]:
    """The MC samples of every example of ``data`` (T, N, ...) and the targets (None without labels)."""
    if labelled:
        if y is None and isinstance(data, Tensor):
            raise TypeError(f"The 'y' parameter of {owner} is required when 'data' is a tensor of inputs.")
        loader = _batches.batches(data, y, batch_size=opts["batch_size"], shuffle=False, name="data", owner=owner,
                                  categorical=opts["categorical"])  # fmt: skip
    else:
        loader = _batches.input_batches(data, opts["batch_size"], "x", owner)

    def split(batch: Any) -> tuple[Any, Tensor]:
        if labelled:
            return _batches.split_batch(batch, "data", owner, opts["target"])
        return _batches.split_unlabelled(batch, "x", owner, opts["target"])

    run = sample_batches(_calls.unwrap(model), loader, split, opts["num_samples"], opts["output"], opts["train_mode"],
                         seed_or_draw(opts["seed"]), owner)  # fmt: skip
    outs, targets = [], []
    for _, s, target in run:
        assert s is not None
        outs.append(s.detach().cpu().double())
        targets.append(target.cpu())
    if not outs:
        raise ValueError(f"The 'data' parameter of {owner} yielded no batch.")
    return torch.cat(outs, 1), torch.cat(targets).numpy() if labelled else None


def _moments(samples: Tensor, likelihood: Gaussian) -> tuple[Array, Array]:
    """MC predictive mean and standard deviation (sampled means' variance, ddof 0, plus the mean noise variance)."""
    t, n = samples.shape[:2]
    mean, log_var = likelihood.split(samples.reshape(t * n, -1))
    mu, var = mean.reshape(t, n, -1), log_var.exp().reshape(t, n, -1)
    if mu.shape[-1] != 1:
        raise ValueError(f"conformal_intervals handles one target. Got {mu.shape[-1]} per example instead.")
    return mu.mean(0)[:, 0].numpy(), (mu.var(0, unbiased=False) + var.mean(0))[:, 0].sqrt().numpy()


def _probabilities(samples: Tensor) -> Array:
    """The MC predictive probabilities (N, K) from logits (T, N, K); one logit column becomes two classes."""
    if samples.ndim == 2 or samples.shape[-1] == 1:
        z = samples.reshape(samples.shape[:2])
        samples = torch.stack([torch.zeros_like(z), z], -1)
    return torch.softmax(samples, -1).mean(0).numpy()


# --------------------------------------------------------------------------- regression


@dataclass
class ConformalIntervals:
    """Split-conformal intervals ``mu ± quantile * sigma`` calibrated at ``level``.

    Attributes
    ----------
    level : float
        The coverage guaranteed for a new exchangeable example, 1 - alpha.
    quantile : float
        The conformal threshold of the scores (in units of sigma when normalised).
    normalized : bool
        Scores divided by the MC predictive std (adaptive widths) or not (constant width).
    num_calibration : int
        Calibration examples.
    model, likelihood, options
        What :meth:`predict` samples new inputs with (None for intervals made by :meth:`from_predictions`).
    """

    level: float
    quantile: float
    normalized: bool
    num_calibration: int
    model: nn.Module | None = field(default=None, repr=False)
    likelihood: Gaussian | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_predictions(
        cls, mean: Any, std: Any, y: Any, level: float = 0.9, *, normalized: bool = True
    ) -> ConformalIntervals:
        """Calibrate on precomputed predictive means and standard deviations of held-out examples.

        Parameters
        ----------
        mean, std : array (n,)
            Predictive mean and standard deviation (std > 0; ignored when not ``normalized``).
        y : array (n,)
            Targets.
        level : float
            Coverage 1 - alpha in (0, 1).
        normalized : bool
            Divide the residuals by ``std``.

        Returns
        -------
        ConformalIntervals
        """
        from crepes import ConformalRegressor

        mu, sd, target = (as_float(v, n).reshape(-1) for v, n in ((mean, "mean"), (std, "std"), (y, "y")))
        if not len(mu) == len(sd) == len(target):
            raise ValueError(f"The 'mean', 'std' and 'y' parameters must have one value per example. Got "
                             f"{len(mu)}, {len(sd)} and {len(target)}.")  # fmt: skip
        level = _check_level(level, len(target), "ConformalIntervals")
        if normalized and np.any(sd <= 0):
            raise ValueError("The 'std' parameter must be > 0 for normalised scores. Got a value <= 0.")
        cr = ConformalRegressor().fit(np.abs(target - mu), sigmas=sd if normalized else None)
        # crepes' threshold: one interval of half-width q (sigma = 1) at this level
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # crepes only warns when n is too small, which _check_level refused
            q = cr.predict_int(np.zeros(1), sigmas=np.ones(1) if normalized else None, confidence=level - _LEVEL_NUDGE)
        return cls(level, float(q[0, 1]), normalized, len(target))

    def interval(self, mean: Any, std: Any = None) -> tuple[Array, Array]:
        """The interval around precomputed means (and standard deviations, when normalised).

        Parameters
        ----------
        mean : array (N,)
        std : array (N,), optional
            Required when ``normalized``.

        Returns
        -------
        lower, upper : arrays (N,)
        """
        mu = as_float(mean, "mean").reshape(-1)
        if not self.normalized:
            return mu - self.quantile, mu + self.quantile
        if std is None:
            raise ValueError("The 'std' parameter of ConformalIntervals.interval is required for normalised intervals.")
        sd = as_float(std, "std").reshape(-1)
        return mu - self.quantile * sd, mu + self.quantile * sd

    def predict(self, x: Any) -> tuple[Array, Array]:
        """Intervals for new inputs: the model's MC predictive on ``x``, widened to the calibrated level.

        Parameters
        ----------
        x : Tensor, array, or data as :func:`bayesdrop.evaluate` takes it (labels ignored)

        Returns
        -------
        lower, upper : arrays (N,)
        """
        if self.model is None or self.likelihood is None:
            raise ValueError("These intervals were calibrated from predictions: use .interval(mean, std).")
        samples, _ = _predict(self.model, x, None, self.options, "ConformalIntervals.predict", labelled=False)
        mu, sd = _moments(samples, self.likelihood)
        return self.interval(mu, sd)


def conformal_intervals(
    model: nn.Module,
    data: Any,
    y: Any = None,
    *,
    likelihood: Gaussian,
    level: float = 0.9,
    normalized: bool = True,
    num_samples: int = 100,
    output: _calls.Output = None,
    target: str = "labels",
    train_mode: bool = False,
    batch_size: int = 256,
    seed: int | None = None,
) -> ConformalIntervals:
    """Calibrate split-conformal regression intervals on held-out data from the model's MC predictive.

    Parameters
    ----------
    model : nn.Module
        A regressor with stochastic layers whose outputs ``likelihood`` reads
        (means, or means and log-variances for a heteroscedastic ``Gaussian``).
    data : Tensor, (X, y), Dataset or DataLoader
        Calibration data, as :func:`bayesdrop.evaluate` takes it (never the
        training or test data).
    y : array-like, optional
        Targets when ``data`` holds the inputs only.
    likelihood : Gaussian
        One target.
    level : float
        Coverage 1 - alpha in (0, 1).
    normalized : bool
        Scores ``|y - mu| / sigma`` with the MC predictive std (adaptive widths;
        the default) or ``|y - mu|`` (constant width).
    num_samples : int
        T, MC samples per example.
    output, target, train_mode, batch_size
        As in :func:`bayesdrop.evaluate`.
    seed : int, optional
        Makes the MC draws reproducible.

    Returns
    -------
    ConformalIntervals
        ``.predict(x)`` gives the intervals of new inputs.

    Raises
    ------
    ValueError
        A level outside (0, 1), fewer than 1 / (1 - level) - 1 calibration
        examples, NaN in the scores, more than one target.
    TypeError
        A likelihood that is not a ``Gaussian`` (ask :func:`conformal_sets` for a classifier).

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    >>> x = torch.randn(200, 1); y = x[:, 0] + 0.3 * torch.randn(200)
    >>> cal = conformal_intervals(net, x, y, likelihood=Gaussian(heteroscedastic=True), num_samples=10, seed=0)
    >>> lower, upper = cal.predict(torch.randn(5, 1))
    >>> cal.level, bool((lower < upper).all())
    (0.9, True)
    """
    if not isinstance(likelihood, Gaussian):
        raise TypeError(
            "The 'likelihood' parameter of conformal_intervals must be a bayesdrop.Gaussian: intervals are for "
            f"regressors (use conformal_sets for a classifier). Got {type(likelihood).__name__} instead."
        )
    opts = _options(num_samples, output, target, train_mode, batch_size, seed, False, "conformal_intervals")
    samples, targets = _predict(model, data, y, opts, "conformal_intervals", labelled=True)
    mu, sd = _moments(samples, likelihood)
    cal = ConformalIntervals.from_predictions(mu, sd, targets.reshape(-1), level, normalized=normalized)
    cal.model, cal.likelihood, cal.options = model, likelihood, opts
    return cal


def _options(
    num_samples: int, output: Any, target: str, train_mode: bool, batch_size: int, seed: Any, categorical: bool,
    owner: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "num_samples": check_int(num_samples, "num_samples", owner),
        "batch_size": check_int(batch_size, "batch_size", owner),
        "output": output, "target": target, "train_mode": train_mode, "seed": seed, "categorical": categorical,
    }  # fmt: skip


# --------------------------------------------------------------------------- classification


def set_scores(probs: Any, method: SetMethod = "aps", *, lam: float = 0.01, k_reg: int = 5, u: Any = None) -> Array:
    """The nonconformity score of every label of every example (lower = more conforming).

    Parameters
    ----------
    probs : array (N, K)
        Predictive probabilities.
    method : {"lac", "aps", "raps"}
        ``lac``: 1 - p_k. ``aps``: the total probability of the labels at
        least as probable as k (k included). ``raps``: APS plus ``lam *
        max(0, rank(k) - k_reg)``, rank 1 for the most probable label.
    lam, k_reg : float, int
        RAPS's penalty and the number of labels it spares.
    u : array (N,), optional
        Uniform draws for the randomised APS and RAPS (Romano et al. 2020,
        eq. 5): ``u * p_k`` is taken off each label's score, so that the sets
        are not larger than they need be; None: not randomised (conservative).

    Returns
    -------
    array (N, K)

    Examples
    --------
    >>> set_scores([[0.5, 0.3, 0.2]], "aps").round(2).tolist()
    [[0.5, 0.8, 1.0]]
    >>> set_scores([[0.5, 0.3, 0.2]], "raps", lam=0.1, k_reg=1).round(2).tolist()
    [[0.5, 0.9, 1.2]]
    """
    check_option(method, "method", "conformal_sets", SET_METHODS)
    p = as_probs(probs, "probs", ndims=(2,))
    if method == "lac":
        return 1.0 - p
    order = np.argsort(-p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    cumulative = np.empty_like(p)
    np.put_along_axis(cumulative, order, np.cumsum(ranked, axis=1), axis=1)
    if u is not None:
        cumulative = cumulative - as_float(u, "u").reshape(-1, 1) * p
    if method == "aps":
        return cumulative
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, p.shape[1] + 1)[None].repeat(len(p), 0), axis=1)
    return cumulative + lam * np.maximum(0, rank - k_reg)


def _uniform(seed: int, stream: int, n: int) -> Array:
    """n uniform draws on [0, 1) from ``seed``: stream 0 for the calibration, 1 for new inputs."""
    return np.random.default_rng([seed, stream]).uniform(size=n)


@dataclass
class ConformalSets:
    """Split-conformal prediction sets calibrated at ``level``.

    Attributes
    ----------
    level : float
        The coverage guaranteed for a new exchangeable example, 1 - alpha.
    method : {"lac", "aps", "raps"}
    quantile : float
        The conformal threshold: a label is in the set when its score is at most this.
    num_calibration : int
    lam, k_reg : float, int
        RAPS's penalty and spared labels.
    randomized : bool
        Randomised APS/RAPS scores (the uniform draws come from ``seed``).
    seed : int
        Seeds the uniform draws of the calibration and of every call of :meth:`sets`.
    model, options
        What :meth:`predict` samples new inputs with (None for sets made by :meth:`from_probabilities`).
    """

    level: float
    method: SetMethod
    quantile: float
    num_calibration: int
    lam: float = 0.01
    k_reg: int = 5
    randomized: bool = True
    seed: int = 0
    model: nn.Module | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_probabilities(
        cls, probs: Any, labels: Any, level: float = 0.9, method: SetMethod = "aps", *, lam: float = 0.01,
        k_reg: int = 5, randomized: bool = True, seed: int = 0,
    ) -> ConformalSets:  # fmt: skip
        """Calibrate on precomputed predictive probabilities of held-out examples.

        Parameters
        ----------
        probs : array (n, K)
        labels : array (n,)
            Integer labels.
        level : float
            Coverage 1 - alpha in (0, 1).
        method : {"lac", "aps", "raps"}
        lam, k_reg : float, int
            RAPS's penalty and spared labels.
        randomized : bool
            Randomised APS/RAPS (Romano et al. 2020); LAC is never randomised.
        seed : int
            Seeds the uniform draws.

        Returns
        -------
        ConformalSets
        """
        from crepes import ConformalClassifier

        n = len(np.asarray(probs))
        u = _uniform(seed, 0, n) if randomized and method != "lac" else None
        scores = set_scores(probs, method, lam=lam, k_reg=k_reg, u=u)
        y = np.asarray(labels).reshape(-1)
        whole = y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(y == np.round(y)))
        if len(y) != len(scores) or not whole or y.min() < 0 or y.max() >= scores.shape[1]:
            raise ValueError(
                f"The 'labels' parameter of ConformalSets must hold {len(scores)} integer labels in [0, "
                f"{scores.shape[1]}). Got {y[:5].tolist()}... instead (for a regressor use conformal_intervals)."
            )
        y = y.astype(np.int64)
        level = _check_level(level, len(y), "ConformalSets")
        alphas = scores[np.arange(len(y)), y]
        cc = ConformalClassifier().fit(alphas)
        # crepes includes a label when its p-value exceeds 1 - level: the largest calibration score so included
        grid = np.sort(alphas)[:, None]
        inside = cc.predict_set(grid, confidence=level - _LEVEL_NUDGE, smoothing=False)[:, 0].astype(bool)
        quantile = float(grid[inside, 0].max()) if inside.any() else -math.inf
        return cls(level, method, quantile, len(y), lam, k_reg, randomized, seed)

    def sets(self, probs: Any) -> npt.NDArray[np.bool_]:
        """Prediction sets for precomputed probabilities: (N, K), True where the label is in the set.

        Parameters
        ----------
        probs : array (N, K)

        Returns
        -------
        bool array (N, K)
        """
        n = len(np.asarray(probs))
        u = _uniform(self.seed, 1, n) if self.randomized and self.method != "lac" else None
        return set_scores(probs, self.method, lam=self.lam, k_reg=self.k_reg, u=u) <= self.quantile

    def predict(self, x: Any) -> npt.NDArray[np.bool_]:
        """Prediction sets of new inputs from the model's MC predictive.

        Parameters
        ----------
        x : Tensor, array, or data as :func:`bayesdrop.evaluate` takes it (labels ignored)

        Returns
        -------
        bool array (N, K)
        """
        if self.model is None:
            raise ValueError("These sets were calibrated from probabilities: use .sets(probs).")
        samples, _ = _predict(self.model, x, None, self.options, "ConformalSets.predict", labelled=False)
        return self.sets(_probabilities(samples))


# size: the calibration data arguments of evaluate (data, y, batch size, output, target, train mode) and the options.
def conformal_sets(
    model: nn.Module,
    data: Any,
    y: Any = None,
    *,
    level: float = 0.9,
    method: SetMethod = "aps",
    num_samples: int = 100,
    lam: float = 0.01,
    k_reg: int = 5,
    randomized: bool = True,
    output: _calls.Output = None,
    target: str = "labels",
    train_mode: bool = False,
    batch_size: int = 256,
    seed: int | None = None,
) -> ConformalSets:
    """Calibrate split-conformal prediction sets on held-out data from the model's MC predictive probabilities.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits, with stochastic layers.
    data : Tensor, (X, y), Dataset or DataLoader
        Calibration data (held out), as :func:`bayesdrop.evaluate` takes it.
    y : array-like, optional
        Labels when ``data`` holds the inputs only.
    level : float
        Coverage 1 - alpha in (0, 1).
    method : {"lac", "aps", "raps"}
        The score (see :func:`set_scores`).
    num_samples : int
        T, MC samples per example.
    lam, k_reg : float, int
        RAPS's penalty and spared labels.
    randomized : bool
        Randomised APS/RAPS scores (Romano et al. 2020): exact coverage in
        expectation and smaller sets; False gives conservative sets.
    output, target, train_mode, batch_size
        As in :func:`bayesdrop.evaluate`.
    seed : int, optional
        Makes the MC draws and the randomisation reproducible.

    Returns
    -------
    ConformalSets
        ``.predict(x)`` gives the sets of new inputs as a boolean (N, K) array.

    Raises
    ------
    ValueError
        A level outside (0, 1), too few calibration examples, an unknown method.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    >>> x = torch.randn(100, 2); y = torch.randint(0, 3, (100,))
    >>> sets = conformal_sets(net, x, y, method="lac", num_samples=10, seed=0)
    >>> sets.predict(torch.randn(4, 2)).shape
    (4, 3)
    """
    opts = _options(num_samples, output, target, train_mode, batch_size, seed, True, "conformal_sets")
    samples, labels = _predict(model, data, y, opts, "conformal_sets", labelled=True)
    cal = ConformalSets.from_probabilities(_probabilities(samples), labels, level, method, lam=lam, k_reg=k_reg,
                                           randomized=randomized, seed=seed_or_draw(seed))  # fmt: skip
    cal.model, cal.options = model, opts
    return cal
