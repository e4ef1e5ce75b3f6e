"""Active learning: which pool examples to label next, from the model's MC samples.

Scores (higher = label first) come from T samples of the model on the pool,
drawn with consistent masks (:func:`bayesdrop.sample` with
``consistent=True``: the same T networks for every pool example, so a pool
scored in chunks of any size gives the same scores):

- ``"bald"``: mutual information between the label and the weights,
  :math:`H[\\bar p] - \\frac1T \\sum_t H[p_t]` (Houlsby et al. 2011);
- ``"entropy"``: predictive entropy :math:`H[\\bar p]`;
- ``"variation_ratio"``: one minus the fraction of the T samples whose most
  probable class is the modal one (Freeman 1965, as in Gal 2016 and Gal et
  al. 2017; :func:`bayesdrop.metrics.variation_ratio`);
- ``"mean_std"``: the standard deviation of :math:`p_t(y)` over samples,
  averaged over classes (Kampffmeyer et al. 2016, as in Gal et al. 2017);
- ``"margin"``: :math:`1 - (\\bar p_{(1)} - \\bar p_{(2)})`, one minus the gap between the two most
  probable classes;
- ``"random"``: uniform scores (the baseline), no forward pass;
- ``"variance"``: for regressors (a ``Gaussian`` likelihood), the variance
  of the sampled means (the epistemic part of the predictive variance);
- ``"batchbald"``: the batch chosen greedily to maximise the mutual
  information between the batch's joint labels and the weights.

References
----------
- Houlsby, Huszár, Ghahramani & Lengyel 2011, "Bayesian active learning for
  classification and preference learning", arXiv:1112.5745.
- Gal, Islam & Ghahramani 2017, "Deep Bayesian active learning with image
  data", arXiv:1703.02910, sec. 3 (the acquisition functions).
- Kirsch, van Amersfoort & Gal 2019, "BatchBALD: efficient and diverse batch
  acquisition for deep Bayesian active learning", arXiv:1906.08158, sec. 3-4
  (greedy BatchBALD, exact and sampled joint entropies, consistent MC dropout).
- Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal 2023,
  "Stochastic batch acquisition: a simple baseline for deep active learning",
  arXiv:2106.12059, sec. 3 (softmax, power and soft-rank sampling).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from . import _calls
from ._batches import input_batches, split_unlabelled
from ._checkpoint import save_atomic
from ._checks import check_float, check_int, check_option
from ._distributed import derive_seed, seed_or_draw, seeded
from ._progress import progress_bar
from .evaluation import evaluate
from .likelihoods import Categorical, Gaussian
from .montecarlo import sample_prepared
from .training import fit

__all__ = [
    "CLASSIFICATION_SCORES",
    "METHODS",
    "STOCHASTIC",
    "Acquisition",
    "ActiveHistory",
    "acquire",
    "acquisition_scores",
    "batchbald",
    "initial_labels",
    "joint_entropy",
    "run_loop",
    "stochastic_batch",
]

#: Scores of a classifier's samples.
CLASSIFICATION_SCORES = ("bald", "entropy", "variation_ratio", "mean_std", "margin")
#: Every ``method`` of :func:`acquire`.
METHODS = (*CLASSIFICATION_SCORES, "random", "variance", "batchbald")
#: Stochastic batch acquisition: how scores become sampling weights (Kirsch et al. 2023, sec. 3).
STOCHASTIC = ("softmax", "power", "softrank")


class Acquisition(NamedTuple):
    """What :func:`acquire` chose.

    Attributes
    ----------
    indices : Tensor (k,)
        Positions in the pool (0-based, in the order the pool is read), best first.
    scores : Tensor (k,)
        Each chosen example's score; for ``"batchbald"`` the joint mutual
        information of the batch up to and including that example (nats,
        non-decreasing).
    """

    indices: Tensor
    scores: Tensor


def _entropy(p: Tensor) -> Tensor:
    out: Tensor = -torch.special.xlogy(p, p).sum(-1)
    return out


def _probs(samples: Tensor) -> Tensor:
    """Class probabilities ``(T, N, K)`` in float64 from logits (one column: a binary logit)."""
    out = samples.detach().double()
    if out.ndim == 2 or out.shape[-1] == 1:
        z = out.reshape(out.shape[0], out.shape[1])
        return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], -1)
    if out.ndim != 3:
        raise ValueError(
            "The 'samples' parameter of acquisition_scores must be class logits (T, N, K) or binary logits (T, N). "
            f"Got shape {tuple(samples.shape)} instead."
        )
    return torch.softmax(out, -1)


def _means(samples: Tensor, likelihood: Gaussian) -> Tensor:
    out = samples.detach().double()
    if out.ndim == 2:
        out = out[..., None]
    if out.shape[-1] != likelihood.num_outputs:
        raise ValueError(
            f"Gaussian(heteroscedastic={likelihood.heteroscedastic}) expects {likelihood.num_outputs} output "
            f"column(s). Got samples of shape {tuple(samples.shape)} instead."
        )
    return out[..., : likelihood.num_targets]  # the means (then log-variances when heteroscedastic)


def acquisition_scores(
    samples: Tensor,
    method: str = "bald",
    *,
    likelihood: Categorical | Gaussian | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Scores of N examples from their T samples (higher = label first).

    Parameters
    ----------
    samples : Tensor
        ``(T, N, K)`` logits, ``(T, N)`` binary logits (``Categorical``), or
        ``(T, N[, D])`` outputs of a regressor (``Gaussian``: means, or means
        then log-variances with a heteroscedastic likelihood).
    method : str
        One of ``"bald"``, ``"entropy"``, ``"variation_ratio"``,
        ``"mean_std"``, ``"margin"``, ``"random"``, ``"variance"`` (see the
        module docstring).
    likelihood : Categorical or Gaussian, optional
        What the outputs mean; ``Categorical()`` by default.
    generator : torch.Generator, optional
        For ``"random"``.

    Returns
    -------
    Tensor (N,)
        float64, on the CPU.

    Raises
    ------
    ValueError
        A classification score with a ``Gaussian`` likelihood, ``"variance"``
        with a ``Categorical`` one, or an unknown method.

    Examples
    --------
    >>> logits = torch.tensor([[[9.0, -9.0]], [[-9.0, 9.0]]])  # two samples that disagree
    >>> acquisition_scores(logits, "bald").round(decimals=3).tolist()
    [0.693]
    """
    method = check_option(method, "method", "acquisition_scores", METHODS[:-1])
    likelihood = Categorical() if likelihood is None else likelihood
    samples = samples.detach().cpu()
    if method == "random":
        return torch.rand(samples.shape[1], generator=generator, dtype=torch.float64)
    regression = isinstance(likelihood, Gaussian)
    if method == "variance":
        if not isinstance(likelihood, Gaussian):
            raise ValueError(
                "The 'method' parameter of acquisition_scores is 'variance', which scores a regressor's sampled "
                "means; the likelihood is Categorical (a classifier). Use 'bald', 'entropy', 'variation_ratio', "
                "'mean_std' or 'margin', or pass likelihood=Gaussian(...)."
            )
        return _means(samples, likelihood).var(0, unbiased=False).mean(-1)
    if regression:
        raise ValueError(
            f"The 'method' parameter of acquisition_scores is {method!r}, a score of class probabilities, but the "
            "likelihood is Gaussian (a regressor). Use method='variance' (the epistemic variance of the sampled "
            "means) or 'random'."
        )
    return _class_scores(_probs(samples), method)


def _class_scores(p: Tensor, method: str) -> Tensor:
    mean = p.mean(0)
    if method == "bald":
        return _entropy(mean) - _entropy(p).mean(0)
    if method == "entropy":
        return _entropy(mean)
    if method == "variation_ratio":  # each sample votes for its argmax class
        votes = torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).sum(0)  # (N, K)
        return 1.0 - votes.max(-1).values.double() / p.shape[0]
    if method == "mean_std":
        return p.std(0, unbiased=False).mean(-1)
    top2 = mean.topk(2, dim=-1).values
    return 1.0 - (top2[:, 0] - top2[:, 1])


# --------------------------------------------------------------------------- joint entropy and BatchBALD


def _exact_configurations(probs: Tensor) -> Tensor:
    """``(T, K^k)``: every configuration's probability under each sample, from ``(T, k, K)``."""
    joint = probs.new_ones(probs.shape[0], 1)
    for j in range(probs.shape[1]):
        joint = (joint[:, :, None] * probs[:, j, None, :]).reshape(probs.shape[0], -1)
    return joint


def _sampled_configurations(probs: Tensor, m: int, generator: torch.Generator | None) -> Tensor:
    """``(T, m)``: the probability under each sample of ``m`` configurations drawn from the joint predictive.

    Ancestral sampling: a sample t uniformly, then every label from
    :math:`p_t`; each configuration's probability under every sample.
    """
    t_count, k, _ = probs.shape
    rows = torch.randint(t_count, (m,), generator=generator)
    joint = probs.new_ones(t_count, m)
    for j in range(k):
        labels = torch.multinomial(probs[rows, j], 1, generator=generator)[:, 0]  # (m,)
        joint = joint * probs[:, j, labels]
    return joint


def _entropy_of_configurations(joint: Tensor, exact: bool) -> Tensor:
    """Joint entropy from ``(T, C)`` configuration probabilities (exact: all of them; else importance-weighted)."""
    p = joint.mean(0)  # (C,)
    h: Tensor = -torch.special.xlogy(p, p).sum() if exact else -torch.log(p).mean()  # sampled: drawn from p itself
    return h


def joint_entropy(
    probs: Tensor, *, num_configurations: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Entropy of the joint predictive of k labels, :math:`H[y_1, ..., y_k]`, from consistent samples.

    :math:`p(y_{1:k}) = \\frac1T \\sum_t \\prod_j p_t(y_j)`. Exact (all
    :math:`K^k` configurations) while :math:`K^k` is at most
    ``num_configurations``; beyond, estimated from ``num_configurations``
    configurations drawn from the joint predictive (Kirsch et al. 2019, sec. 4.1).

    Parameters
    ----------
    probs : Tensor (T, k, K)
        Class probabilities of k examples under the same T samples.
    num_configurations : int, optional
        The most configurations to enumerate (None: always exact).
    generator : torch.Generator, optional

    Returns
    -------
    Tensor
        A float64 scalar, nats.

    Examples
    --------
    >>> p = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # two labels, always equal
    >>> round(float(joint_entropy(p)), 4)  # one bit of joint uncertainty: log 2
    0.6931
    """
    probs = probs.detach().double().cpu()
    if probs.ndim != 3:
        raise ValueError(f"The 'probs' parameter of joint_entropy must be (T, k, K). Got {tuple(probs.shape)} instead.")
    exact = num_configurations is None or probs.shape[2] ** probs.shape[1] <= num_configurations
    if exact:
        return _entropy_of_configurations(_exact_configurations(probs), True)
    m = check_int(num_configurations, "num_configurations", "joint_entropy")
    return _entropy_of_configurations(_sampled_configurations(probs, m, generator), False)


def _candidate_joint_entropies(joint: Tensor, probs: Tensor, exact: bool) -> Tensor:
    """:math:`H[y_{batch}, y_n]` for every candidate n: ``joint`` (T, C), ``probs`` (T, N, K) -> (N,).

    :math:`p(c, y) = \\frac1T \\sum_t P_t(c) p_t(y)`; sampled configurations
    weigh each term by :math:`1 / p(c)` (they were drawn from :math:`p(c)`).
    """
    t_count, n, k = probs.shape
    per_row = max(1, 2**24 // max(1, joint.shape[1] * k))
    out = probs.new_empty(n)
    pc = joint.mean(0)[None, :, None]  # p(c), for the importance weights of sampled configurations
    for s in range(0, n, per_row):
        pn = probs[:, s : s + per_row]  # (T, B, K)
        pcy = torch.einsum("tc,tbk->bck", joint, pn) / t_count  # (B, C, K)
        if exact:
            out[s : s + per_row] = -torch.special.xlogy(pcy, pcy).sum((1, 2))
        else:
            out[s : s + per_row] = -(pcy / pc * torch.log(pcy.clamp_min(1e-300))).sum(-1).mean(-1)
    return out


def batchbald(
    probs: Tensor,
    k: int,
    *,
    num_configurations: int = 1000,
    num_candidates: int | None = None,
    generator: torch.Generator | None = None,
) -> Acquisition:
    """Greedy BatchBALD (Kirsch et al. 2019, Algorithm 1) on consistent class-probability samples.

    Step i adds the example n that maximises
    :math:`H[y_{1:i-1}, y_n] - \\sum_{j \\in 1:i-1 \\cup n} \\frac1T \\sum_t H[p_t(y_j)]`,
    the mutual information between the labels of the batch and the weights.
    The joint entropy is exact while the configurations of the batch so far
    (:math:`K^{i-1}`) number at most ``num_configurations``, and estimated
    from that many configurations drawn from the joint predictive beyond.

    Parameters
    ----------
    probs : Tensor (T, N, K)
        Class probabilities of N pool examples under the same T samples.
    k : int
        Batch size, at most N.
    num_configurations : int
        See above.
    num_candidates : int, optional
        Consider only this many examples, those with the highest BALD
        scores (each greedy step costs time linear in the candidates; the
        reference implementation prunes the pool the same way). None: all.
    generator : torch.Generator, optional
        For the sampled configurations.

    Returns
    -------
    Acquisition
        ``indices`` in the order chosen; ``scores`` the joint mutual
        information of the batch up to each one. With ``k = 1`` the one
        example with the highest BALD score.

    Examples
    --------
    Examples 0 and 1 are copies; top-2 BALD would take both (their BALD
    scores are the highest), BatchBALD takes one and then example 2, which
    splits the samples the other way:

    >>> p1 = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.05, 0.95, 0.05, 0.95]]).T  # (T, N)
    >>> p = torch.stack([1 - p1, p1], -1)  # (T, N, 2)
    >>> batchbald(p, 2).indices.tolist(), acquisition_scores(p.log(), "bald").topk(2).indices.tolist()
    ([0, 2], [0, 1])
    """
    probs = probs.detach().double().cpu()
    n = probs.shape[1]
    k = check_int(k, "k", "batchbald")
    if k > n:
        raise ValueError(f"The 'k' parameter of batchbald must be at most the pool size {n}. Got {k} instead.")
    m = check_int(num_configurations, "num_configurations", "batchbald")
    if num_candidates is not None and check_int(num_candidates, "num_candidates", "batchbald") < n:
        if num_candidates < k:
            raise ValueError(
                f"The 'num_candidates' parameter of batchbald must be at least k = {k}. Got {num_candidates}."
            )
        keep = _class_scores(probs, "bald").topk(num_candidates).indices
        inner = batchbald(probs[:, keep], k, num_configurations=m, generator=generator)
        return Acquisition(keep[inner.indices], inner.scores)
    conditional = _entropy(probs).mean(0)  # (N,): E_t H[p_t(y_n)]
    chosen: list[int] = []
    scores: list[float] = []
    joint = probs.new_ones(probs.shape[0], 1)
    exact = True
    for _ in range(k):
        gain = _candidate_joint_entropies(joint, probs, exact) - conditional - conditional[chosen].sum()
        gain[chosen] = -math.inf
        best = int(gain.argmax())
        chosen.append(best)
        scores.append(float(gain[best]))
        if len(chosen) == k:
            break
        exact = joint.shape[1] * probs.shape[2] <= m and exact
        if exact:
            joint = (joint[:, :, None] * probs[:, best, None, :]).reshape(probs.shape[0], -1)
        else:
            joint = _sampled_configurations(probs[:, chosen], m, generator)
    return Acquisition(torch.tensor(chosen), torch.tensor(scores, dtype=torch.float64))


def stochastic_batch(
    scores: Tensor, k: int, *, mode: str = "softmax", beta: float = 1.0, generator: torch.Generator | None = None
) -> Acquisition:
    """Draw k examples without replacement with probabilities set by their scores (Kirsch et al. 2023).

    Weights: ``"softmax"`` :math:`\\exp(\\beta s_i)`, ``"power"``
    :math:`s_i^\\beta` (scores >= 0, e.g. BALD), ``"softrank"``
    :math:`r_i^{-\\beta}` with :math:`r_i` the rank (1 = highest score). The
    draw is the Gumbel-top-k trick: each pick has probability proportional
    to its weight among the examples not yet picked.

    Parameters
    ----------
    scores : Tensor (N,)
    k : int
    mode : str
        ``"softmax"``, ``"power"`` or ``"softrank"``.
    beta : float
        Inverse temperature, > 0 (large: top-k).
    generator : torch.Generator, optional

    Returns
    -------
    Acquisition
        The drawn indices in the order drawn, with their scores.

    Examples
    --------
    >>> stochastic_batch(torch.tensor([0.0, 50.0, 0.0]), 1, generator=torch.Generator().manual_seed(0)).indices.tolist()
    [1]
    """
    mode = check_option(mode, "mode", "stochastic_batch", STOCHASTIC)
    beta = check_float(beta, "beta", "stochastic_batch", low=0.0, low_open=True)
    s = scores.detach().double().cpu()
    k = check_int(k, "k", "stochastic_batch")
    if k > s.numel():
        raise ValueError(f"The 'k' parameter of stochastic_batch must be at most the pool size {s.numel()}. Got {k}.")
    if mode == "softmax":
        log_w = beta * s
    elif mode == "power":
        if bool((s < -1e-9).any()):  # BALD can come out a rounding error below 0; more is not a BALD score
            raise ValueError(
                f"stochastic_batch(mode='power') needs scores >= 0 (such as BALD). Got {float(s.min()):g}; use "
                "mode='softmax' or 'softrank'."
            )
        log_w = beta * torch.log(s.clamp_min(1e-300))  # a zero score: weight ~0, drawn only when nothing else is left
    else:
        ranks = torch.empty_like(s)
        ranks[s.argsort(descending=True)] = torch.arange(1, s.numel() + 1, dtype=s.dtype)
        log_w = -beta * torch.log(ranks)
    u = torch.rand(s.shape, generator=generator, dtype=torch.float64).clamp(1e-300, 1.0)
    chosen = (log_w - torch.log(-torch.log(u))).topk(k).indices
    return Acquisition(chosen, s[chosen])


# --------------------------------------------------------------------------- acquire


def _pool_batches(pool: Any, batch_size: int) -> Iterable[Any]:
    if isinstance(pool, (list, tuple)) and not isinstance(pool, nn.Module):
        raise TypeError(
            "The 'pool' parameter of acquire must be a tensor or array of inputs, a Dataset or a DataLoader. "
            f"Got a {type(pool).__name__} instead (wrap the inputs in a tensor or a TensorDataset)."
        )
    return input_batches(pool, batch_size, "pool", "acquire")


def _check_k(k: int, n: int) -> None:
    if n == 0:
        raise ValueError("The 'pool' parameter of acquire must hold at least one example. Got none.")
    if k > n:
        raise ValueError(f"The 'k' parameter of acquire must be at most the pool size {n}. Got {k} instead.")


def _likelihood_of(model: nn.Module, likelihood: Categorical | Gaussian | None) -> Categorical | Gaussian:
    if likelihood is not None:
        return likelihood
    own = getattr(_calls.unwrap(model), "likelihood", None)  # bayesdrop's estimators carry theirs
    return own if isinstance(own, (Gaussian, Categorical)) else Categorical()


# size: one entry point; every option is one documented keyword
def acquire(
    model: nn.Module,
    pool: Any,
    k: int,
    *,
    method: str = "bald",
    num_samples: int = 100,
    seed: int | None = None,
    stochastic: str | None = None,
    beta: float = 1.0,
    likelihood: Categorical | Gaussian | None = None,
    output: _calls.Output = None,
    batch_size: int = 1024,
    num_configurations: int = 1000,
    num_candidates: int | None = None,
    progress: bool | None = False,
) -> Acquisition:
    """Choose ``k`` pool examples to label, by ``method`` on ``num_samples`` consistent MC samples.

    The pool is read in batches (only the scores, or for BatchBALD the
    class probabilities, are kept: memory grows with the pool size, not with
    the model's activations), and every batch is sampled with the same T
    masks (:func:`bayesdrop.sample` with ``consistent=True``), so the scores
    do not depend on ``batch_size``.

    Parameters
    ----------
    model : nn.Module
        Any model :func:`bayesdrop.sample` works on (stochastic layers;
        ``nn.Sequential`` models run their noise-free first layers once per
        example). A DDP wrapper is looked through.
    pool : Tensor, array, Dataset or DataLoader
        The unlabelled examples: inputs (a tensor, array or dict of them), a
        map-style ``Dataset`` of ``x`` or ``(x, y)`` items or a DataLoader of
        such batches (labels are ignored). Indices count examples in the
        order the pool is read.
    k : int
        How many to choose, 1 to the pool size.
    method : str
        ``"bald"`` (default), ``"entropy"``, ``"variation_ratio"``,
        ``"mean_std"``, ``"margin"``, ``"random"``, ``"variance"``
        (regressors) or ``"batchbald"``.
    num_samples : int
        T, MC samples per example.
    seed : int, optional
        Seeds the masks, random scores, stochastic draws and sampled
        configurations; None draws from torch's global RNG.
    stochastic : str, optional
        Instead of the top k, draw k without replacement with weights
        ``"softmax"``, ``"power"`` or ``"softrank"`` of the scores
        (:func:`stochastic_batch`); not with ``"batchbald"``.
    beta : float
        Inverse temperature of the stochastic draw.
    likelihood : Categorical or Gaussian, optional
        What the outputs mean: ``Categorical()`` (logits) unless the model
        carries a ``likelihood`` attribute (bayesdrop's estimators' models do).
    output : int, str or callable, optional
        Picks the output tensor, as in :func:`bayesdrop.sample`.
    batch_size : int
        Pool examples per batch (and per forward pass).
    num_configurations : int
        BatchBALD: the most label configurations enumerated exactly, and the
        number drawn beyond (:func:`batchbald`).
    num_candidates : int, optional
        BatchBALD: only the examples with the top BALD scores are candidates
        (None: the whole pool).
    progress : bool, optional
        A progress bar over the pool's batches.

    Returns
    -------
    Acquisition
        ``indices`` (best first) and ``scores``.

    Raises
    ------
    ValueError
        ``k`` larger than the pool, an empty pool, a model without stochastic
        layers, a classification score on a regressor (use ``"variance"``),
        an unknown method or stochastic mode, ``stochastic`` with BatchBALD.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    >>> picked = acquire(net, torch.randn(100, 4), 5, method="bald", num_samples=20, seed=0)
    >>> picked.indices.shape, bool((picked.scores[:-1] >= picked.scores[1:]).all())
    (torch.Size([5]), True)
    """
    method = check_option(method, "method", "acquire", METHODS)
    num_samples = check_int(num_samples, "num_samples", "acquire")
    k = check_int(k, "k", "acquire")
    batch_size = check_int(batch_size, "batch_size", "acquire")
    if stochastic is not None:
        check_option(stochastic, "stochastic", "acquire", STOCHASTIC)
        if method == "batchbald":
            raise ValueError("The 'stochastic' parameter of acquire must be None with method='batchbald'.")
    likelihood = _likelihood_of(model, likelihood)
    if method in (*CLASSIFICATION_SCORES, "batchbald") and isinstance(likelihood, Gaussian):
        raise ValueError(
            f"The 'method' parameter of acquire is {method!r}, which needs class probabilities, but the model is a "
            "regressor (Gaussian likelihood). Use method='variance' (the epistemic variance of the sampled means) "
            "or 'random'."
        )
    base = seed_or_draw(seed)
    gen = torch.Generator().manual_seed(derive_seed(base, 1))
    if hasattr(pool, "__len__") and not isinstance(pool, (dict, DataLoader)):  # a sized pool: check before scoring
        _check_k(k, len(pool))
    batches = _pool_batches(pool, batch_size)
    kept = _score_pool(model, batches, method, num_samples, base, likelihood, output, progress, gen)
    _check_k(k, kept.shape[1] if kept.ndim == 3 else kept.shape[0])
    if method == "batchbald":
        return batchbald(kept, k, num_configurations=num_configurations, num_candidates=num_candidates, generator=gen)
    if stochastic is not None:
        return stochastic_batch(kept, k, mode=stochastic, beta=beta, generator=gen)
    top = kept.topk(k)
    return Acquisition(top.indices, top.values)


# size: the loop of acquire, its options passed through
def _score_pool(
    model: nn.Module,
    batches: Iterable[Any],
    method: str,
    num_samples: int,
    base: int,
    likelihood: Categorical | Gaussian,
    output: _calls.Output,
    progress: bool | None,
    gen: torch.Generator,
) -> Tensor:
    """Per-example scores ``(N,)``, or for BatchBALD the probabilities ``(T, N, K)`` (float32), batch by batch."""
    net = _calls.unwrap(model)
    device, dtype = _calls.device_dtype(net)
    kept: list[Tensor] = []
    for batch in progress_bar(batches, progress=progress, desc="acquire", unit="batch"):
        x = split_unlabelled(batch, "pool", "acquire")[0]
        if method == "random":
            kept.append(torch.rand(_calls.check_input(x, "pool", "acquire"), generator=gen, dtype=torch.float64))
            continue
        x = _calls.to_model(_calls.from_numpy(x), device, dtype)
        s = sample_prepared(net, x, num_samples, output, False, base, None, "acquire", consistent=True).cpu()
        kept.append(
            _probs(s).float() if method == "batchbald" else acquisition_scores(s, method, likelihood=likelihood)
        )
    if not kept:
        return torch.empty(0, dtype=torch.float64)
    return torch.cat(kept, dim=1 if method == "batchbald" else 0)


# --------------------------------------------------------------------------- the pool-based loop


@dataclass
class ActiveHistory:
    """One run of :func:`run_loop`: a row per round (the initial set, then one per acquisition).

    Attributes
    ----------
    labels : list of int
        Labelled examples the round's model was trained on.
    metrics : list of dict
        The round's test metrics (``evaluate(...).mc``: accuracy, nll, ... for
        a classifier).
    chosen : list of list of int
        Dataset indices acquired after the round (best first; empty after the last).
    seconds : list of float
        Wall time of the round (train, evaluate, acquire).
    labelled : list of int
        Every labelled dataset index, in the order labelled (the initial set first).
    method : str
    stopped : bool
        Whether the run is over (its last round or ``stop_when``); a
        resumed finished run returns at once.
    """

    labels: list[int] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    chosen: list[list[int]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    labelled: list[int] = field(default_factory=list)
    method: str = "bald"
    stopped: bool = False

    def curve(self, metric: str = "accuracy") -> tuple[list[int], list[float]]:
        """``(labels, values)`` of ``metric`` over the rounds.

        Parameters
        ----------
        metric : str
            A key of the rounds' metrics (those of :func:`bayesdrop.evaluate`).

        Returns
        -------
        labels : list of int
            Labelled examples at each evaluation.
        values : list of float
            The metric at each.
        """
        return list(self.labels), [m[metric] for m in self.metrics]

    def labels_to_reach(self, metric: str, value: float, *, higher_is_better: bool = True) -> int | None:
        """The fewest labels at which ``metric`` reached ``value`` (None if it never did).

        Parameters
        ----------
        metric : str
            A key of the rounds' metrics, e.g. ``"accuracy"``.
        value : float
            The threshold.
        higher_is_better : bool
            Reached means at or above ``value`` (True) or at or below it.

        Returns
        -------
        int or None
            The number of labels at the first round that reached it.

        Examples
        --------
        >>> h = ActiveHistory(labels=[20, 30, 40], metrics=[{"accuracy": a} for a in (0.5, 0.91, 0.89)])
        >>> h.labels_to_reach("accuracy", 0.9)
        30
        """
        for n, m in zip(self.labels, self.metrics, strict=True):
            if (m[metric] >= value) if higher_is_better else (m[metric] <= value):
                return n
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats (JSON, checkpoints).

        Returns
        -------
        dict
            One key per field.
        """
        return asdict(self)


def _targets(dataset: Dataset[Any]) -> Tensor:
    """Every label of a map-style dataset of ``(x, y)`` items."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[1].reshape(-1)
    own = getattr(dataset, "targets", None)
    if own is not None:
        return torch.as_tensor(own).reshape(-1)
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])  # type: ignore[arg-type]


def initial_labels(labels: Tensor, size: int, *, balanced: bool = True, seed: int = 0) -> list[int]:
    """Indices of an initial labelled set: ``size`` at random, or spread evenly over the classes.

    Balanced: ``size // K`` of every class (the rest at random from the
    remaining examples), as Gal et al. 2017 start from 2 images of each digit.

    Parameters
    ----------
    labels : Tensor (N,)
        Every example's class, 0..K-1.
    size : int
    balanced : bool
    seed : int

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        ``size`` above N; balanced with ``size`` below the number of classes
        or a class with fewer than ``size // K`` examples (say which).

    Examples
    --------
    >>> sorted(torch.tensor([0, 1, 0, 1, 0, 1])[initial_labels(torch.tensor([0, 1, 0, 1, 0, 1]), 4)].tolist())
    [0, 0, 1, 1]
    """
    size = check_int(size, "initial", "run_loop")
    if balanced and labels.is_floating_point():
        raise ValueError(
            "The 'balanced' parameter of run_loop asks for the same number of examples of every class, but the "
            "labels are real numbers (a regression). Pass balanced=False."
        )
    labels = labels.reshape(-1).long().cpu()
    if size > labels.numel():
        raise ValueError(f"The 'initial' parameter of run_loop must be at most the dataset size {labels.numel()}.")
    gen = torch.Generator().manual_seed(derive_seed(seed, 7))
    order = torch.randperm(labels.numel(), generator=gen)
    if not balanced:
        return order[:size].tolist()
    classes = int(labels.max()) + 1
    per = size // classes
    if per == 0:
        raise ValueError(
            f"The 'initial' parameter of run_loop is {size}, fewer than the {classes} classes: a balanced initial "
            "set needs at least one example of every class. Pass initial >= the number of classes or balanced=False."
        )
    picked: list[int] = []
    for c in range(classes):
        members = order[labels[order] == c][:per]
        if members.numel() < per:
            raise ValueError(
                f"The dataset has {members.numel()} examples of class {c}; a balanced initial set of {size} needs "
                f"{per} of every class 0..{classes - 1}. Pass balanced=False or a smaller 'initial'."
            )
        picked += members.tolist()
    chosen = set(picked)
    picked += [i for i in order.tolist() if i not in chosen][: size - len(picked)]
    return picked


def _fingerprint(dataset: Dataset[Any], labels: Tensor) -> list[int]:
    """Size and a checksum of the labels: a resume must see the same pool."""
    weights = torch.arange(1, labels.numel() + 1, dtype=torch.float64) % 9973
    return [len(dataset), int((labels.double() * weights).sum())]  # type: ignore[arg-type]


def _rows(dataset: Dataset[Any], index: list[int]) -> Any:
    """Inputs of ``dataset[index]``: a slice of the tensor of a ``TensorDataset``, else a ``Subset``."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0][torch.as_tensor(index, dtype=torch.long)]
    return Subset(dataset, index)


def _train_default(
    fit_options: dict[str, Any], likelihood: Categorical | Gaussian
) -> Callable[[nn.Module, Any, int], None]:
    def train(model: nn.Module, data: Any, seed: int) -> None:
        opts = {"epochs": 50, "progress": False, **fit_options}
        fit(model, data, likelihood=likelihood, seed=seed, **opts)

    return train


def _labelled_data(dataset: Dataset[Any], labelled: list[int]) -> Any:
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        idx = torch.as_tensor(labelled, dtype=torch.long)
        return dataset.tensors[0][idx], dataset.tensors[1][idx]
    return Subset(dataset, labelled)


# size: the loop's protocol (data, training, acquisition, checkpoint) as keywords
def run_loop(
    dataset: Dataset[Any],
    make_model: Callable[[], nn.Module],
    *,
    test: Any,
    rounds: int,
    k: int = 10,
    method: str = "bald",
    initial: int = 20,
    balanced: bool = True,
    subset: int | None = None,
    train: Callable[[nn.Module, Any], Any] | None = None,
    fit_options: dict[str, Any] | None = None,
    acquire_options: dict[str, Any] | None = None,
    eval_samples: int = 20,
    likelihood: Categorical | Gaussian | None = None,
    stop_when: Callable[[ActiveHistory], bool] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> ActiveHistory:
    """Pool-based active learning: train, evaluate, acquire ``k`` labels, repeat ``rounds`` times.

    Round r trains a freshly built model (``make_model()``) on the labelled
    examples, evaluates it on ``test`` (:func:`bayesdrop.evaluate` with
    ``eval_samples`` MC samples), then acquires ``k`` pool examples with
    :func:`acquire` (on a random ``subset`` of the pool when given, as Gal et
    al. 2017 score 2,000 random pool images) and labels them from
    ``dataset``. Every round's randomness (model initialisation, training,
    the subset, the masks) is derived from ``seed`` and the round, so a run
    resumed from its checkpoint equals an uninterrupted one.

    Parameters
    ----------
    dataset : Dataset
        A map-style dataset of ``(x, y)`` items: the pool, with its labels as
        the oracle (a ``TensorDataset`` is sliced directly, without a loader).
    make_model : callable
        Returns a freshly initialised model (called once per round, under the round's seed).
    test : (X, y), Dataset or DataLoader
        Test data for :func:`bayesdrop.evaluate`.
    rounds : int
        Acquisitions; the history has ``rounds + 1`` rows.
    k : int
        Labels acquired per round.
    method : str
        :func:`acquire`'s method.
    initial : int
        Size of the initial labelled set.
    balanced : bool
        The initial set spread evenly over the classes (:func:`initial_labels`).
    subset : int, optional
        Score a random subset of this many pool examples each round (None: the whole pool).
    train : callable, optional
        ``train(model, data)`` trains ``model`` in place on ``data`` (an
        ``(X, y)`` pair for a ``TensorDataset``, else a ``Subset``); by
        default :func:`bayesdrop.fit` with ``fit_options`` (``epochs`` 50
        unless given).
    fit_options : dict, optional
        Keywords of :func:`bayesdrop.fit` for the default training.
    acquire_options : dict, optional
        More keywords of :func:`acquire` (``num_samples``, ``stochastic``,
        ``num_configurations``, ``batch_size``, ...).
    eval_samples : int
        T of the test evaluation.
    likelihood : Categorical or Gaussian, optional
        ``Categorical()`` by default.
    stop_when : callable, optional
        ``stop_when(history)`` after every round's evaluation: True ends the
        run there, before its acquisition (say, once a target accuracy is
        reached; ``rounds`` stays the most).
    checkpoint : path, optional
        Written (atomically) after every acquisition: the labelled indices
        and the history, so a crash loses no acquired label.
    resume : bool
        Continue from ``checkpoint`` (which must come from the same dataset).
    seed : int
    progress : bool, optional
        A progress bar over the rounds.

    Returns
    -------
    ActiveHistory

    Raises
    ------
    ValueError
        Bad sizes, a balanced initial set that misses a class, an
        acquisition larger than the pool, a resume from another dataset or
        without a checkpoint.
    """
    rounds = check_int(rounds, "rounds", "run_loop", minimum=0)
    k = check_int(k, "k", "run_loop")
    initial = check_int(initial, "initial", "run_loop")
    method = check_option(method, "method", "run_loop", METHODS)
    likelihood = Categorical() if likelihood is None else likelihood
    labels = _targets(dataset)
    fingerprint = _fingerprint(dataset, labels)
    if initial + rounds * k > len(labels):
        raise ValueError(
            f"run_loop would label {initial} + {rounds} x {k} = {initial + rounds * k} examples, more than the "
            f"dataset's {len(labels)}. Lower 'rounds', 'k' or 'initial'."
        )
    history = _start(checkpoint, resume, fingerprint, labels, initial, balanced, seed, method)
    fit_train = _train_default(fit_options or {}, likelihood)
    options = {"num_samples": 100, "method": method, "likelihood": likelihood, **(acquire_options or {})}
    done = rounds + 1 if history.stopped else len(history.labels)
    for r in progress_bar(range(done, rounds + 1), progress=progress, desc=f"active learning ({method})", unit="round"):
        start = time.perf_counter()
        with seeded(derive_seed(seed, r, 0)):
            model = make_model()
            data = _labelled_data(dataset, history.labelled)
            if train is None:
                fit_train(model, data, derive_seed(seed, r, 1))
            else:
                train(model, data)
        ev = evaluate(model, test, likelihood=likelihood, num_samples=eval_samples, seed=derive_seed(seed, r, 2))
        history.labels.append(len(history.labelled))
        history.metrics.append({key: float(v) for key, v in ev.mc.items()})
        history.stopped = r == rounds or (stop_when is not None and bool(stop_when(history)))
        chosen: list[int] = []
        if not history.stopped:
            chosen = _acquire_round(model, dataset, history.labelled, k, subset, options, derive_seed(seed, r, 3))
        history.chosen.append(chosen)
        history.seconds.append(time.perf_counter() - start)
        history.labelled += chosen
        if checkpoint is not None:
            save_atomic({"fingerprint": fingerprint, "history": history.to_dict()}, checkpoint)
        if history.stopped:
            break
    return history


# size: the resume checks need every piece of the run's identity
def _start(
    checkpoint: str | os.PathLike[str] | None,
    resume: bool,
    fingerprint: list[int],
    labels: Tensor,
    initial: int,
    balanced: bool,
    seed: int,
    method: str,
) -> ActiveHistory:
    """A fresh history with the initial labels, or the one in the checkpoint."""
    if not resume:
        return ActiveHistory(labelled=initial_labels(labels, initial, balanced=balanced, seed=seed), method=method)
    if checkpoint is None or not os.path.exists(checkpoint):
        raise ValueError(f"run_loop(resume=True) needs an existing 'checkpoint' file. Got {checkpoint!r}.")
    state = torch.load(checkpoint, weights_only=True)
    if list(state["fingerprint"]) != fingerprint:
        raise ValueError(
            f"The checkpoint {os.fspath(checkpoint)!r} was written for another pool (size and label checksum "
            f"{state['fingerprint']}, this dataset {fingerprint}); resume with the dataset it was made from."
        )
    history = ActiveHistory(**state["history"])
    if history.method != method:
        raise ValueError(f"The checkpoint was written by method {history.method!r}; run_loop got {method!r}.")
    return history


# size: one round's acquisition, its pieces passed through
def _acquire_round(
    model: nn.Module,
    dataset: Dataset[Any],
    labelled: list[int],
    k: int,
    subset: int | None,
    options: dict[str, Any],
    seed: int,
) -> list[int]:
    """Dataset indices of the ``k`` examples acquired from the (subset of the) unlabelled pool."""
    taken = torch.zeros(len(dataset), dtype=torch.bool)  # type: ignore[arg-type]
    taken[torch.as_tensor(labelled, dtype=torch.long)] = True
    pool = (~taken).nonzero()[:, 0]
    if subset is not None and subset < pool.numel():
        gen = torch.Generator().manual_seed(derive_seed(seed, 1))
        pool = pool[torch.randperm(pool.numel(), generator=gen)[:subset]].sort().values
    picked = acquire(model, _rows(dataset, pool.tolist()), k, seed=seed, **options)
    return pool[picked.indices].tolist()
