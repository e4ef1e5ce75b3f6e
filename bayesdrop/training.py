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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from . import _data
from . import _distributed as D
from ._checks import check_float, check_int
from ._io import atomic_write
from .likelihoods import Categorical, Gaussian
from .nn._protocol import StochasticModule, deterministic
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
        Epoch of the lowest validation NLL.
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
        return asdict(self)


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it.

    Parameters
    ----------
    obj : object
        What ``torch.save`` writes.
    path : path
        Destination; its folder is created.
    """
    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``weights_only=True``: data, never code).

    Parameters
    ----------
    path : path
        A checkpoint file.

    Returns
    -------
    dict
        The checkpoint's state (model, likelihood, optimiser, history, RNG states, ...).
    """
    state: dict[str, Any] = torch.load(path, weights_only=True)
    return state


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


# ----------------------------------------------------------------- RNG states


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ----------------------------------------------------------------- the run


@dataclass
class _Run:
    """What a checkpoint holds besides the model, likelihood, optimiser and scheduler."""

    history: History
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already done
    sums: list[float] = field(default_factory=lambda: [0.0] * 5)  # loss*k, nll*k, k, kl, batches
    best_val: float = math.inf
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    epoch_rng: dict[str, Tensor] = field(default_factory=dict)  # RNG + loader order at the epoch's start
    batch_rng: dict[str, Tensor] = field(default_factory=dict)  # RNG at the start of batch `batch`


@dataclass
class _Trainer:
    """One ``fit`` call: the step, the epoch, validation and the checkpoint state."""

    model: nn.Module
    likelihood: Likelihood
    opt: torch.optim.Optimizer
    sched: Any
    data: Iterable[Any]
    val: Iterable[Any] | None
    device: torch.device
    dtype: torch.dtype
    n: int  # dataset size in the KL weight
    kl_scale: float
    warmup: int
    output: _data.Output
    checkpoint: str | os.PathLike[str] | None

    def __post_init__(self) -> None:
        self.bar: Any = None  # the progress bar of the run
        self.net = _data.unwrap(self.model)
        self.num_batches: int | None = None  # for the KL warm-up within an epoch; unknown for a stream
        with contextlib.suppress(TypeError):
            self.num_batches = len(self.data) if isinstance(self.data, Sized) else None
        # Several processes share one model (DDP) and shard the data: gradients of the likelihood (outside the
        # DDP wrapper) are averaged and the epoch's sums are added over ranks.
        self.ddp = isinstance(self.model, nn.parallel.DistributedDataParallel)
        self.sharded = isinstance(_data.sampler_of(self.data), DistributedSampler)
        self.shared = (self.ddp or self.sharded) and D.is_distributed()  # one run over several ranks

    # -- one step ---------------------------------------------------------------
    def step(self, x: Any, y: Tensor, t: float) -> tuple[float, float, float, int]:
        x = _data.to_model(x, self.device, self.dtype)
        y = _data.to_model(y, self.device, self.dtype)
        scale = self.kl_scale * (min(1.0, t / self.warmup) if self.warmup else 1.0)
        out = _data.select(_data.call(self.model, x), self.output, "fit")
        loss, nll, kl = _elbo(self.net, self.likelihood, out, y, self.n, scale)
        self.opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        if self.ddp and D.is_distributed():  # the likelihood is outside the DDP wrapper: average its gradients
            for p in self.likelihood.parameters():
                if p.grad is not None:
                    D.all_reduce_sum(p.grad).div_(D.world_size())
        self.opt.step()
        return float(loss.detach()), float(nll.detach()), float(kl.detach()), len(y)

    # -- one epoch --------------------------------------------------------------
    def epoch(self, run: _Run) -> None:
        """Train one epoch from batch ``run.batch`` on, replaying the order when resuming mid-epoch."""
        _data.set_epoch(self.data, run.epoch)
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
            x, y = _data.split(batch, "data", "fit")
            t = run.epoch + ((i + 1) / self.num_batches if self.num_batches else 1.0)
            loss, nll, kl, k = self.step(x, y, t)
            sums = [a + b for a, b in zip(run.sums, (loss * k, nll * k, k, kl, 1), strict=True)]
            run.sums, run.batch, run.batch_rng = sums, i + 1, self.capture()
            if self.num_batches:
                self.bar.update()

    def capture(self) -> dict[str, Tensor]:
        """RNG states and the loader's generators: what decides the noise and the order from here on."""
        return {**_rng_state(self.device), **{f"order_{k}": v for k, v in _data.order_state(self.data).items()}}

    def restore(self, state: dict[str, Tensor]) -> None:
        _set_rng_state(state, self.device)
        _data.set_order_state(self.data, {k[6:]: v for k, v in state.items() if k.startswith("order_")})

    def close_epoch(self, run: _Run) -> dict[str, str]:
        """Record the epoch in the history (summed over ranks), validate, step the scheduler."""
        sums = torch.tensor(run.sums, dtype=torch.float64)
        loss_k, nll_k, k, kl, nb = (D.all_reduce_sum(sums) if self.sharded else sums).tolist()
        h = run.history
        h.epoch.append(run.epoch + 1)
        h.loss.append(loss_k / k)
        h.nll.append(nll_k / k)
        h.kl.append(kl / nb)
        h.kl_scale.append(h.kl_weight * (min(1.0, (run.epoch + 1) / self.warmup) if self.warmup else 1.0))
        postfix = {"loss": f"{h.loss[-1]:.4f}", "kl": f"{h.kl[-1]:.1f}"}
        if self.val is not None:
            v = self.validate()
            h.val_nll.append(v)
            postfix["val_nll"] = f"{v:.4f}"
            if v < run.best_val:
                state = {"model": self.net.state_dict(), "likelihood": self.likelihood.state_dict()}
                run.best_val, run.best_state, run.bad_epochs = v, copy.deepcopy(state), 0
                h.best_epoch = run.epoch + 1
            else:
                run.bad_epochs += 1
        if self.sched is not None:
            self.sched.step()
        run.epoch, run.batch, run.sums = run.epoch + 1, 0, [0.0] * 5
        return postfix

    def validate(self) -> float:
        """Mean NLL of the eval-mode pass over the validation data (all ranks' batches together)."""
        total = torch.zeros(2, dtype=torch.float64)
        assert self.val is not None
        with torch.no_grad(), deterministic(self.net):
            for batch in self.val:
                x, y = _data.split(batch, "val_data", "fit")
                x = _data.to_model(x, self.device, self.dtype)
                y = _data.to_model(y, self.device, self.dtype)
                out = _data.select(_data.call(self.net, x), self.output, "fit")
                total += torch.tensor([float(self.likelihood.nll(out, y)) * len(y), len(y)], dtype=torch.float64)
        if isinstance(_data.sampler_of(self.val), DistributedSampler):
            D.all_reduce_sum(total)
        return float(total[0] / total[1])

    # -- checkpoints ------------------------------------------------------------
    def save(self, run: _Run) -> None:
        """Write the run atomically (rank 0; every rank's RNG states gathered first)."""
        if self.checkpoint is None:
            return
        rngs = D.all_gather_objects((run.epoch_rng, run.batch_rng)) if self.shared else [(run.epoch_rng, run.batch_rng)]
        if self.shared and D.rank() != 0:
            return
        state = {k: v for k, v in asdict(run).items() if k not in ("history", "epoch_rng", "batch_rng")}
        save_atomic(
            {
                "format": "bayesdrop-checkpoint",
                "version": 2,
                "model": self.net.state_dict(),
                "likelihood": self.likelihood.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": None if self.sched is None else self.sched.state_dict(),
                "history": run.history.to_dict(),
                "world_size": len(rngs),
                "epoch_rng": [r[0] for r in rngs],
                "batch_rng": [r[1] for r in rngs],
                **state,
            },
            self.checkpoint,
        )

    def load(self, path: str | os.PathLike[str]) -> _Run:
        """The run saved at ``path``, with the model, likelihood, optimiser and scheduler restored."""
        state = load_checkpoint(path)
        if state.get("format") != "bayesdrop-checkpoint" or state.get("version") != 2:
            raise ValueError(
                f"The 'checkpoint' parameter of fit must name a checkpoint written by this version of fit. "
                f"Got {str(path)!r} (format {state.get('format')!r}, version {state.get('version')!r}) instead."
            )
        ranks = D.world_size() if self.shared else 1
        if state["world_size"] != ranks:
            raise ValueError(
                f"The 'checkpoint' {str(path)!r} was written by {state['world_size']} process(es); resuming it "
                f"needs the same number. Got {ranks} instead."
            )
        self.net.load_state_dict(state["model"])
        self.likelihood.load_state_dict(state["likelihood"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state["scheduler"] is not None:
            self.sched.load_state_dict(state["scheduler"])
        fields = {k: state[k] for k in ("epoch", "batch", "sums", "best_val", "best_state", "bad_epochs")}
        r = D.rank() if self.shared else 0
        return _Run(
            History(**state["history"]), epoch_rng=state["epoch_rng"][r], batch_rng=state["batch_rng"][r], **fields
        )


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
    early_stopping: int | None = None,
    output: _data.Output = None,
    seed: int | None = None,
    progress: bool = True,
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
        Validation data; its mean NLL (eval-mode pass) is recorded every epoch.
    early_stopping : int, optional
        Stop after this many epochs without a better validation NLL and
        restore the best weights of the model and the likelihood (requires
        ``val_data``).
    output : int, str or callable, optional
        Picks the tensor from a model that returns a tuple, dict or
        ``ModelOutput`` (see :func:`bayesdrop.sample`).
    seed : int, optional
        Makes the run deterministic (shuffling and noise) and leaves the
        caller's global RNG state untouched. Under torch.distributed the seed
        is combined with the rank.
    progress : bool
        Show a tqdm progress bar with loss, KL and validation NLL (rank 0).
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
    if not isinstance(likelihood, (Gaussian, Categorical)):
        raise TypeError(
            f"The 'likelihood' parameter of fit must be a Gaussian or Categorical. Got {type(likelihood).__name__} instead."
        )
    epochs = check_int(epochs, "epochs", "fit")
    batch_size = check_int(batch_size, "batch_size", "fit")
    lr = check_float(lr, "lr", "fit", low=0.0, low_open=True)
    kl_scale = check_float(kl_scale, "kl_scale", "fit", low=0.0)
    kl_warmup_epochs = check_int(kl_warmup_epochs, "kl_warmup_epochs", "fit", minimum=0)
    weight_decay = check_float(weight_decay, "weight_decay", "fit", low=0.0)
    if optimizer is not None and weight_decay:
        raise ValueError(
            "The 'weight_decay' parameter of fit applies to the default optimiser only. Got weight_decay="
            f"{weight_decay} with an optimizer factory instead: give the factory its weight_decay."
        )
    if early_stopping is not None:
        early_stopping = check_int(early_stopping, "early_stopping", "fit")
        if val_data is None:
            raise ValueError("The 'early_stopping' parameter of fit needs val_data.")
    if resume and checkpoint is None:
        raise ValueError("The 'resume' parameter of fit needs a checkpoint path.")
    categorical = isinstance(likelihood, Categorical)
    loaders = {"shuffle": True, "batch_size": batch_size, "owner": "fit", "categorical": categorical}
    data = _data.batches(data, None, name="data", **loaders)  # type: ignore[arg-type]
    val = None if val_data is None else _data.batches(val_data, None, name="val_data", **loaders)  # type: ignore[arg-type]
    n = _data.dataset_size(data, dataset_size, "data", "fit")
    if device is not None:
        model.to(device)
    dev, dtype = _data.device_dtype(model)
    likelihood.to(device=dev, dtype=dtype)
    groups = _param_groups(model, likelihood, None if optimizer is not None else weight_decay)
    opt = optimizer(groups) if optimizer is not None else torch.optim.Adam(groups, lr=lr)
    sched = scheduler(opt) if scheduler is not None else None
    trainer = _Trainer(
        model, likelihood, opt, sched, data=data, val=val, device=dev, dtype=dtype, n=n, kl_scale=kl_scale,
        warmup=kl_warmup_epochs, output=output, checkpoint=checkpoint,
    )  # fmt: skip
    with D.seeded(D.rank_seed(seed), dev):  # per rank under torch.distributed
        run = _Run(History(kl_weight=kl_scale / n))
        if resume and checkpoint is not None and Path(checkpoint).exists():
            if not _data.replayable(data):
                raise ValueError(
                    f"The 'resume' parameter of fit cannot continue exactly with this data: a {type(data).__name__} "
                    "whose batch order fit cannot replay (an IterableDataset, a custom sampler or a one-off "
                    "iterable). Use a DataLoader over a map-style dataset with a standard sampler, or start afresh."
                )
            run = trainer.load(checkpoint)
            if run.batch == 0:
                trainer.restore(run.batch_rng)
        _train(trainer, run, epochs, early_stopping, progress)
    if early_stopping is not None and run.best_state is not None:
        trainer.net.load_state_dict(run.best_state["model"])
        likelihood.load_state_dict(run.best_state["likelihood"])
    model.eval()
    likelihood.eval()
    return run.history


def _train(trainer: _Trainer, run: _Run, epochs: int, early_stopping: int | None, progress: bool) -> None:
    """The training loop: epochs of steps, a record and a checkpoint after each."""
    trainer.model.train()
    trainer.likelihood.train()
    quiet = not progress or (trainer.shared and D.rank() != 0)
    per = trainer.num_batches or 1  # the bar counts batches when an epoch's length is known, else epochs
    bar = tqdm(
        total=epochs * per,
        initial=run.epoch * per + (run.batch if trainer.num_batches else 0),
        desc="fit",
        unit="batch" if trainer.num_batches else "epoch",
        disable=quiet,
        leave=False,
    )
    trainer.bar = bar
    try:
        while run.epoch < epochs and not run.history.stopped_early:
            trainer.epoch(run)
            bar.set_postfix({"epoch": run.epoch + 1, **trainer.close_epoch(run)})
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
