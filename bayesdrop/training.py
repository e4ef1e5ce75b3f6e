"""``fit`` and ``elbo_loss``: minimise the negative ELBO of a model with learned noise.

The loss per example is the likelihood's NLL plus the KL of the variational
layers scaled by 1/N_train (Kingma et al. 2015, eq. 3; Molchanov et al. 2017,
eq. 2): for a minibatch of size M the stochastic estimate of the negative
ELBO divided by N is ``mean NLL over the batch + KL / N``. A linear warm-up
multiplies the KL term by ``min(1, t / kl_warmup_epochs)`` (t in epochs,
updated every step; Sønderby et al. 2016, arXiv:1602.02282).

Under torch.distributed (a ``DistributedDataParallel`` model and a
``DistributedSampler``) every rank minimises ``mean NLL of its batch + KL /
N`` with the global N; DDP averages the gradients, so the KL enters each step
once, not once per rank.

References
----------
- Kingma, Salimans & Welling 2015, arXiv:1506.02557.
- Molchanov, Ashukha & Vetrov 2017, arXiv:1701.05369.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Iterable, Sized
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data.distributed import DistributedSampler

from . import _batches, _calls, _checkpoint
from . import _distributed as distributed
from ._checkpoint import load_checkpoint, save_atomic
from ._checks import check_float, check_int
from ._progress import progress_bar
from .likelihoods import Categorical, Gaussian
from .montecarlo import sample_batches
from .nn._protocol import StochasticModule, deterministic
from .nn.concrete import ConcreteDropout
from .nn.variational import kl_divergence

__all__ = ["History", "elbo_loss", "fit", "load_checkpoint", "noise_parameters", "save_atomic"]

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]

Likelihood = Gaussian | Categorical


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run (loss = NLL + scaled KL, per example).

    Attributes
    ----------
    epoch : list of int
        Epochs completed (1-based).
    loss, nll, kl : list of float
        Per epoch: mean loss and NLL per example, mean KL per batch (nats).
    kl_scale : list of float
        The KL weight per example at the end of each epoch (warm-up included).
    val_nll : list of float
        Validation NLL per epoch (empty without ``val_data``).
    best_epoch : int or None
        Epoch of the lowest validation NLL (from the end of the KL warm-up on).
    stopped_early : bool
        Whether early stopping ended the run.
    kl_weight : float
        ``kl_scale / dataset_size``: the full KL weight per example.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    kl_scale: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    kl_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The history as plain lists and numbers.

        Returns
        -------
        dict
            One key per field (JSON-ready; checkpoints store it).
        """
        return asdict(self)


def _elbo(
    model: nn.Module, likelihood: Likelihood, output: Tensor, target: Tensor, dataset_size: int, kl_scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    nll = likelihood.nll(output, target)
    kl = kl_divergence(model)
    return nll + (kl_scale / dataset_size) * kl, nll, kl


def elbo_loss(
    model: nn.Module,
    likelihood: Likelihood,
    output: Tensor,
    target: Tensor,
    *,
    dataset_size: int,
    kl_scale: float = 1.0,
) -> Tensor:
    """The per-example negative ELBO of one batch: ``mean NLL + kl_scale * KL(model) / dataset_size``.

    The loss :func:`fit` minimises, for training in one's own loop (or in
    Lightning, Accelerate, ...): call the model, then this, then
    ``backward``. ``kl_scale`` below 1 during the first epochs is a KL
    warm-up. Under ``DistributedDataParallel`` pass the global dataset size;
    DDP's gradient averaging then counts the KL once per step.

    Parameters
    ----------
    model : nn.Module
        The model whose variational layers give the KL (a DDP wrapper works).
    likelihood : Gaussian or Categorical
    output : Tensor
        The model's output on the batch (what the likelihood reads).
    target : Tensor
        The batch's targets.
    dataset_size : int
        N, the number of training examples (the whole set, not the batch).
    kl_scale : float
        Multiplier of the KL term (1 is the ELBO).

    Returns
    -------
    Tensor
        A scalar with an autograd graph.

    Examples
    --------
    >>> from bayesdrop.nn import VariationalLinear
    >>> net, lik = VariationalLinear(3, 1), Gaussian()
    >>> x, y = torch.randn(8, 3), torch.randn(8)
    >>> loss = elbo_loss(net, lik, net(x), y, dataset_size=100)
    >>> bool(torch.isclose(loss, lik.nll(net(x).detach(), y) + net.kl() / 100, rtol=0.5))
    True
    """
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1:
        raise ValueError(
            f"The 'dataset_size' parameter of elbo_loss must be an int >= 1. Got {dataset_size!r} instead."
        )
    kl_scale = check_float(kl_scale, "kl_scale", "elbo_loss", low=0.0)
    return _elbo(model, likelihood, output, target, dataset_size, kl_scale)[0]


def noise_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``model`` that parameterise noise (log sigma^2, log alpha, a learned noise).

    These are what each stochastic layer lists in ``noise_parameters``
    (``VariationalLinear``: ``log_sigma2`` or ``log_alpha_param``) and every
    parameter of a likelihood. :func:`fit` never applies weight decay to them.

    Parameters
    ----------
    model : nn.Module
        Any module (a likelihood counts too).

    Returns
    -------
    list of nn.Parameter
        In module order.
    """
    found: list[nn.Parameter] = []
    for m in model.modules():
        names = m.noise_parameters if isinstance(m, StochasticModule) else ()
        if isinstance(m, (Gaussian, Categorical)):
            names = tuple(n for n, _ in m.named_parameters(recurse=False))
        for n in names:
            p = getattr(m, n, None)
            if isinstance(p, nn.Parameter):
                found.append(p)
    return found


def _param_groups(model: nn.Module, likelihood: Likelihood, weight_decay: float | None) -> list[dict[str, Any]]:
    """Two groups: weights (decayed) and noise parameters (never decayed)."""
    noise = {id(p) for p in noise_parameters(model)} | {id(p) for p in likelihood.parameters()}
    seen: set[int] = set()
    weights: list[nn.Parameter] = []
    noisy: list[nn.Parameter] = []
    for p in [*model.parameters(), *likelihood.parameters()]:
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (noisy if id(p) in noise else weights).append(p)
    first: dict[str, Any] = {"params": weights}
    if weight_decay is not None:
        first["weight_decay"] = weight_decay
    return [first, {"params": noisy, "weight_decay": 0.0}]


# ----------------------------------------------------------------- the run


@dataclass
class _Sums:
    """Running sums of the current epoch (this rank's batches)."""

    loss: float = 0.0  # loss per example times the batch's examples, summed
    nll: float = 0.0  # NLL per example times the batch's examples, summed
    examples: float = 0.0
    kl: float = 0.0  # KL of each batch, summed
    batches: float = 0.0

    def add(self, loss: float, nll: float, kl: float, examples: int) -> _Sums:
        return _Sums(self.loss + loss * examples, self.nll + nll * examples, self.examples + examples, self.kl + kl,
                     self.batches + 1)  # fmt: skip

    def total(self, over_ranks: bool) -> _Sums:
        """These sums, added over the ranks when the data is sharded."""
        t = torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)
        return _Sums(*(distributed.all_reduce_sum(t) if over_ranks else t).tolist())


@dataclass
class _Run:
    """The state of a run that a checkpoint holds besides the model, likelihood, optimiser and scheduler."""

    history: History
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already done
    sums: _Sums = field(default_factory=_Sums)
    best_val: float = math.inf
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    epoch_rng: dict[str, Tensor] = field(default_factory=dict)  # RNG + loader order at the epoch's start
    batch_rng: dict[str, Tensor] = field(default_factory=dict)  # RNG at the start of batch `batch`

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> _Run:
        fields_ = {
            k: saved[k] for k in ("epoch", "batch", "best_val", "best_state", "bad_epochs", "epoch_rng", "batch_rng")
        }
        return cls(History(**saved["history"]), sums=_Sums(**saved["sums"]), **fields_)


@dataclass(frozen=True)
class _KLSchedule:
    """The KL weight per example: ``scale / dataset_size``, warmed up linearly over ``warmup`` epochs."""

    scale: float
    warmup: int
    dataset_size: int

    def at(self, t: float) -> float:
        """The multiplier of KL / N at epoch ``t`` (fractional within an epoch)."""
        return self.scale * (min(1.0, t / self.warmup) if self.warmup else 1.0)


@dataclass
class _Trainer:
    """One ``fit`` call: the step, the epoch, validation and the checkpoint state."""

    model: nn.Module
    likelihood: Likelihood
    opt: torch.optim.Optimizer
    sched: Any
    data: Iterable[Any]
    val: Iterable[Any] | None
    kl: _KLSchedule
    output: _calls.Output
    target: str
    checkpoint: str | os.PathLike[str] | None
    val_samples: int = 0  # 0: validate the eval-mode pass; T: the MC predictive with T samples
    val_seed: int = 0

    def __post_init__(self) -> None:
        self.bar: Any = None  # the progress bar of the run
        self.net = _calls.unwrap(self.model)
        self.device, self.dtype = _calls.device_dtype(self.net)
        # Concrete dropout's regulariser adds a weight term and the negative entropy of its masks to the KL, so
        # the sum can be negative: the progress bar says which it shows.
        concrete = any(isinstance(m, ConcreteDropout) for m in self.net.modules())
        self.regulariser = "kl+concrete reg" if concrete else "kl"
        self.num_batches: int | None = None  # for the KL warm-up within an epoch; unknown for a stream
        with contextlib.suppress(TypeError):
            self.num_batches = len(self.data) if isinstance(self.data, Sized) else None
        # Several processes share one model (DDP) and shard the data: gradients of the likelihood (outside the
        # DDP wrapper) are averaged and the epoch's sums are added over ranks.
        self.ddp = isinstance(self.model, nn.parallel.DistributedDataParallel)
        self.sharded = isinstance(_batches.sampler_of(self.data), DistributedSampler)
        self.shared = (self.ddp or self.sharded) and distributed.is_distributed()  # one run over several ranks

    # -- one step ---------------------------------------------------------------
    def step(self, x: Any, y: Tensor, t: float) -> tuple[float, float, float, int]:
        x = _calls.to_model(x, self.device, self.dtype)
        y = _calls.to_model(y, self.device, self.dtype)
        out = _calls.select_output(_calls.call_model(self.model, x), self.output, "fit")
        loss, nll, kl = _elbo(self.net, self.likelihood, out, y, self.kl.dataset_size, self.kl.at(t))
        self.opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        if self.ddp and distributed.is_distributed():  # the likelihood is outside the DDP wrapper
            for p in self.likelihood.parameters():
                if p.grad is not None:
                    distributed.all_reduce_sum(p.grad).div_(distributed.world_size())
        self.opt.step()
        return float(loss.detach()), float(nll.detach()), float(kl.detach()), len(y)

    # -- one epoch --------------------------------------------------------------
    def epoch(self, run: _Run) -> None:
        """Train one epoch from batch ``run.batch`` on, replaying the order when resuming mid-epoch."""
        _batches.set_epoch(self.data, run.epoch)
        if run.batch == 0:
            run.epoch_rng = run.batch_rng = self.capture()
        else:
            self.restore(run.epoch_rng)
        batches = iter(self.data)
        for _ in range(run.batch):
            next(batches)
        if run.batch:
            self.restore(run.batch_rng)
        for i, batch in enumerate(batches, start=run.batch):
            x, y = _batches.split_batch(batch, "data", "fit", self.target)
            t = run.epoch + ((i + 1) / self.num_batches if self.num_batches else 1.0)
            loss, nll, kl, k = self.step(x, y, t)
            run.sums, run.batch, run.batch_rng = run.sums.add(loss, nll, kl, k), i + 1, self.capture()
            if self.num_batches:
                self.bar.update()

    def capture(self) -> dict[str, Tensor]:
        return _checkpoint.capture(self.data, self.device)

    def restore(self, state: dict[str, Tensor]) -> None:
        _checkpoint.restore(state, self.data, self.device)

    def close_epoch(self, run: _Run) -> dict[str, str]:
        """Record the epoch in the history (summed over ranks), validate, step the scheduler."""
        sums = run.sums.total(over_ranks=self.sharded)
        h = run.history
        h.epoch.append(run.epoch + 1)
        h.loss.append(sums.loss / sums.examples)
        h.nll.append(sums.nll / sums.examples)
        h.kl.append(sums.kl / sums.batches)
        h.kl_scale.append(self.kl.at(run.epoch + 1) / self.kl.dataset_size)
        postfix = {"loss": f"{h.loss[-1]:.4f}", self.regulariser: f"{h.kl[-1]:.1f}"}
        if self.val is not None:
            v = self.validate()
            h.val_nll.append(v)
            postfix["val_nll"] = f"{v:.4f}"
            if run.epoch + 1 < self.kl.warmup:
                pass  # the objective still changes: no best epoch and no patience spent during the KL warm-up
            elif v < run.best_val:
                state = {"model": self.net.state_dict(), "likelihood": self.likelihood.state_dict()}
                run.best_val, run.best_state, run.bad_epochs = v, copy.deepcopy(state), 0
                h.best_epoch = run.epoch + 1
            else:
                run.bad_epochs += 1
        if self.sched is not None:
            self.sched.step()
        run.epoch, run.batch, run.sums = run.epoch + 1, 0, _Sums()
        return postfix

    def validate(self) -> float:
        """Mean validation NLL (all ranks' batches together): the eval-mode pass, or the MC predictive."""
        total = torch.zeros(2, dtype=torch.float64)
        assert self.val is not None
        if self.val_samples:
            return self._validate_mc(total)
        with torch.no_grad(), deterministic(self.net):
            for batch in self.val:
                x, y = _batches.split_batch(batch, "val_data", "fit", self.target)
                x = _calls.to_model(x, self.device, self.dtype)
                y = _calls.to_model(y, self.device, self.dtype)
                out = _calls.select_output(_calls.call_model(self.net, x), self.output, "fit")
                total += torch.tensor([float(self.likelihood.nll(out, y)) * len(y), len(y)], dtype=torch.float64)
        if isinstance(_batches.sampler_of(self.val), DistributedSampler):
            distributed.all_reduce_sum(total)
        return float(total[0] / total[1])

    def _validate_mc(self, total: Tensor) -> float:
        """Mean NLL of the MC predictive, -log (1/T) sum_t p(y | sample t), on common draws every epoch."""
        assert self.val is not None

        def split(batch: Any) -> tuple[Any, Tensor]:
            return _batches.split_batch(batch, "val_data", "fit", self.target)

        t = self.val_samples
        for _, out, y in sample_batches(self.net, self.val, split, t, self.output, False, self.val_seed, "fit"):
            assert out is not None
            y = _calls.to_model(y, self.device, self.dtype)
            with torch.no_grad():
                log_p = torch.stack([self.likelihood.log_prob(out[i], y) for i in range(t)])
            log_mean = torch.logsumexp(log_p.double(), 0) - math.log(t)
            total += torch.tensor([-float(log_mean.sum()), len(y)], dtype=torch.float64)
        if isinstance(_batches.sampler_of(self.val), DistributedSampler):
            distributed.all_reduce_sum(total)
        return float(total[0] / total[1])

    # -- checkpoints ------------------------------------------------------------
    def _modules(self) -> dict[str, Any]:
        return {"model": self.net, "likelihood": self.likelihood, "optimizer": self.opt, "scheduler": self.sched}

    def save(self, run: _Run) -> None:
        """Write the run atomically (rank 0; every rank's RNG states gathered first)."""
        if self.checkpoint is None:
            return
        parts = {k: None if m is None else m.state_dict() for k, m in self._modules().items()}
        fields_ = {f.name: getattr(run, f.name) for f in fields(run)}
        fields_["history"], fields_["sums"] = run.history.to_dict(), asdict(run.sums)
        _checkpoint.save_run(self.checkpoint, fields_, parts, self.shared)

    def load(self, path: str | os.PathLike[str]) -> _Run:
        """The run saved at ``path``, with the model, likelihood, optimiser and scheduler restored."""
        return _Run.from_saved(_checkpoint.load_run(path, self._modules(), self.shared))


# size: fit's options are flat keywords, as in scikit-learn and Lightning's Trainer; each has one meaning and a default.
def fit(
    model: nn.Module,
    data: Any,
    *,
    likelihood: Likelihood,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    dataset_size: int | None = None,
    optimizer: OptimizerFactory | None = None,
    scheduler: SchedulerFactory | None = None,
    weight_decay: float = 0.0,
    kl_scale: float = 1.0,
    kl_warmup_epochs: int = 0,
    val_data: Any = None,
    val_samples: int = 0,
    early_stopping: int | None = None,
    output: _calls.Output = None,
    target: str = "labels",
    seed: int | None = None,
    progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` and ``likelihood`` by minimising the negative ELBO (:func:`elbo_loss`).

    Parameters
    ----------
    model : nn.Module
        Network mapping inputs to the likelihood's parameters (means, or means
        and log-variances, or logits); may be wrapped in
        ``DistributedDataParallel``.
    data : (X, y), Dataset or iterable of (x, y) batches
        Arrays/tensors ``(X, y)`` (batched and shuffled by ``fit``), a
        map-style ``Dataset`` of ``(x, y)`` items (the same), or any
        re-iterable of ``(x, y)`` batches such as a ``DataLoader`` (used as
        it is; ``batch_size`` is then ignored). ``x`` is a tensor (called as
        ``model(x)``), a tuple of tensors (``model(*x)``) or a dict of tensors
        (``model(**x)``).
    likelihood : Gaussian or Categorical
        Its parameters (a learned noise) are trained too.
    epochs : int
        Passes over the data.
    lr : float
        Learning rate of the default optimiser (Adam).
    batch_size : int
        Minibatch size for ``(X, y)`` and ``Dataset`` data.
    device : torch.device or str, optional
        Where to train; the model is moved there. By default the device of
        the model's parameters. Inputs, targets and the likelihood move there;
        floating inputs take the model's dtype, integer inputs (token ids)
        stay integers.
    dataset_size : int, optional
        N in the KL weight 1/N: by default ``len(data.dataset)`` or the length
        of ``(X, y)``/``Dataset`` data; required when it cannot be known (an
        iterable without a sized ``.dataset``). Under torch.distributed, the
        global size (which ``len(loader.dataset)`` is).
    optimizer : callable, optional
        ``param_groups -> torch.optim.Optimizer``, e.g.
        ``lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9)``. It
        receives two groups: the weights (no ``weight_decay`` key, so the
        optimiser's default applies) and the noise parameters (with
        ``weight_decay=0``). Default: Adam with ``lr`` and ``weight_decay``.
    scheduler : callable, optional
        ``optimizer -> learning-rate scheduler``, stepped once per epoch.
    weight_decay : float
        L2 penalty of the default Adam on the weights only; never on noise
        parameters (``log_sigma2``, ``log_alpha``, the likelihood's noise, see
        :func:`noise_parameters`).
    kl_scale : float
        Multiplier of the KL term (1 is the ELBO, 0 trains without the KL).
    kl_warmup_epochs : int
        Linear warm-up of the KL weight over this many epochs (0: none).
    val_data : like ``data``, optional
        Validation data; its mean NLL is recorded every epoch.
    val_samples : int
        0 (the default): the validation NLL is that of the eval-mode pass
        (fast). T > 0: that of the MC predictive with T samples, what
        :func:`bayesdrop.sample` and :func:`bayesdrop.evaluate` predict (the
        mean over samples of the likelihoods); the same noise is drawn every
        epoch (from ``seed``), so epochs are compared on common draws.
    early_stopping : int, optional
        Stop after this many epochs without a better validation NLL (counted
        from the end of the KL warm-up, when the objective stops changing) and
        restore the best weights of the model and the likelihood (requires
        ``val_data``).
    output : int, str or callable, optional
        Picks the tensor from a model that returns a tuple, dict or
        ``ModelOutput`` (see :func:`bayesdrop.sample`).
    target : str
        The key of the targets in dict batches (Hugging Face style): the
        other keys go to the model as keyword arguments (``"labels"``).
    seed : int, optional
        Makes the run deterministic (shuffling and noise) and leaves the
        caller's global RNG state untouched. Under torch.distributed the seed
        is combined with the rank.
    progress : bool or None
        A tqdm progress bar with the loss, the regulariser per batch ("kl";
        "kl+concrete reg" with concrete dropout, whose regulariser includes
        the negative entropy of its masks and can be negative) and the
        validation NLL (rank 0). None
        (the default): shown in a terminal or notebook, hidden in a log;
        True: always (at most one redraw every 30 s in a log); False: never.
    checkpoint : path, optional
        Write the full state (model, likelihood, optimiser, scheduler, epoch
        and batch, history, every rank's RNG states, the loader's generators)
        atomically after every epoch (rank 0) and, on one process, on
        ``KeyboardInterrupt`` (then re-raised).
    resume : bool
        Continue from ``checkpoint`` if it exists; the result equals an
        uninterrupted run with the same seed. Needs data whose order ``fit``
        can replay: ``(X, y)``, a ``Dataset``, a list of batches, or a
        ``DataLoader`` over a map-style dataset with a sequential, random,
        subset-random, weighted-random or distributed sampler.

    Returns
    -------
    History
        The model is left in eval mode.

    Raises
    ------
    TypeError
        If ``data`` yields anything but ``(x, y)`` batches of tensors.
    ValueError
        If ``dataset_size`` cannot be known, ``resume`` is asked with data
        whose order ``fit`` cannot replay, or an argument is out of range.

    Examples
    --------
    >>> from bayesdrop.nn import VariationalLinear
    >>> x = torch.randn(64, 3); y = x.sum(1)
    >>> net = nn.Sequential(VariationalLinear(3, 16), nn.ReLU(), VariationalLinear(16, 1))
    >>> h = fit(net, (x, y), likelihood=Gaussian(), epochs=3, seed=0, progress=False)
    >>> len(h.loss), round(h.kl_weight, 6)
    (3, 0.015625)
    """
    _check_fit_options(likelihood, epochs, batch_size, lr, kl_scale, kl_warmup_epochs, weight_decay)
    if optimizer is not None and weight_decay:
        raise ValueError(
            "The 'weight_decay' parameter of fit applies to the default optimiser only. Got weight_decay="
            f"{weight_decay} with an optimizer factory instead: give the factory its weight_decay."
        )
    check_int(val_samples, "val_samples", "fit", minimum=0)
    if early_stopping is not None:
        early_stopping = check_int(early_stopping, "early_stopping", "fit")
        if val_data is None:
            raise ValueError("The 'early_stopping' parameter of fit needs val_data.")
    if resume and checkpoint is None:
        raise ValueError("The 'resume' parameter of fit needs a checkpoint path.")
    loaders = {
        "shuffle": True,
        "batch_size": batch_size,
        "owner": "fit",
        "categorical": isinstance(likelihood, Categorical),
    }
    data = _batches.batches(data, None, name="data", **loaders)  # type: ignore[arg-type]
    loaders["shuffle"] = False  # validation in a fixed order, drawing nothing from the training RNG
    val = None if val_data is None else _batches.batches(val_data, None, name="val_data", **loaders)  # type: ignore[arg-type]
    n = _batches.dataset_size(data, dataset_size, "data", "fit")
    if device is not None:
        model.to(device)
    dev, dtype = _calls.device_dtype(model)
    likelihood.to(device=dev, dtype=dtype)
    groups = _param_groups(model, likelihood, None if optimizer is not None else weight_decay)
    opt = optimizer(groups) if optimizer is not None else torch.optim.Adam(groups, lr=lr)
    sched = scheduler(opt) if scheduler is not None else None
    kl = _KLSchedule(kl_scale, kl_warmup_epochs, n)
    val_seed = distributed.seed_or_draw(seed)
    trainer = _Trainer(model, likelihood, opt, sched, data, val, kl, output, target, checkpoint, val_samples, val_seed)
    with distributed.seeded(distributed.rank_seed(seed), dev):  # per rank under torch.distributed
        run = _Run(History(kl_weight=kl_scale / n))
        if resume and checkpoint is not None and Path(checkpoint).exists():
            run = _resume(trainer, checkpoint)
        _train(trainer, run, epochs, early_stopping, progress)
    if early_stopping is not None and run.best_state is not None:
        trainer.net.load_state_dict(run.best_state["model"])
        likelihood.load_state_dict(run.best_state["likelihood"])
    model.eval()
    likelihood.eval()
    return run.history


def _check_fit_options(
    likelihood: Any, epochs: int, batch_size: int, lr: float, kl_scale: float, warmup: int, weight_decay: float
) -> None:
    """The errors of :func:`fit`'s plain options, each naming the parameter."""
    if not isinstance(likelihood, (Gaussian, Categorical)):
        raise TypeError(
            f"The 'likelihood' parameter of fit must be a Gaussian or Categorical. Got {type(likelihood).__name__} instead."
        )
    check_int(epochs, "epochs", "fit")
    check_int(batch_size, "batch_size", "fit")
    check_float(lr, "lr", "fit", low=0.0, low_open=True)
    check_float(kl_scale, "kl_scale", "fit", low=0.0)
    check_int(warmup, "kl_warmup_epochs", "fit", minimum=0)
    check_float(weight_decay, "weight_decay", "fit", low=0.0)


def _resume(trainer: _Trainer, checkpoint: str | os.PathLike[str]) -> _Run:
    """The run saved in ``checkpoint``, restored into ``trainer`` (data whose order can be replayed only)."""
    if not _checkpoint.replayable(trainer.data):
        raise ValueError(
            f"The 'resume' parameter of fit cannot continue exactly with this data: a {type(trainer.data).__name__} "
            "whose batch order fit cannot replay (an IterableDataset, a custom sampler or a one-off "
            "iterable). Use a DataLoader over a map-style dataset with a standard sampler, or start afresh."
        )
    run = trainer.load(checkpoint)
    if run.batch == 0:
        trainer.restore(run.batch_rng)
    return run


def _train(trainer: _Trainer, run: _Run, epochs: int, early_stopping: int | None, progress: bool | None) -> None:
    """The training loop: epochs of steps, a record and a checkpoint after each."""
    trainer.model.train()
    trainer.likelihood.train()
    shown = False if trainer.shared and distributed.rank() != 0 else progress
    per = trainer.num_batches or 1  # the bar counts batches when an epoch's length is known, else epochs
    bar = progress_bar(
        total=epochs * per,
        initial=run.epoch * per + (run.batch if trainer.num_batches else 0),
        desc="fit",
        unit="batch" if trainer.num_batches else "epoch",
        progress=shown,
        leave=False,
    )
    trainer.bar = bar
    try:
        while run.epoch < epochs and not run.history.stopped_early:
            trainer.epoch(run)
            bar.set_postfix(
                {"epoch": run.epoch + 1, **trainer.close_epoch(run)}, refresh=False
            )  # shown at the next redraw
            if not trainer.num_batches:
                bar.update()
            run.history.stopped_early = early_stopping is not None and run.bad_epochs >= early_stopping
            run.batch_rng = trainer.capture()
            trainer.save(run)
    except KeyboardInterrupt:
        # run.batch_rng is the state at the start of batch run.batch (a step cut short is redone), or at the
        # epoch's start. No collective inside an interrupt: under torch.distributed the last epoch's
        # checkpoint stays.
        if not trainer.shared:
            trainer.save(run)
        raise
    finally:
        bar.close()
