"""``fit``: minimise the negative ELBO of a model with learned noise.

The loss per example is the likelihood's NLL plus the KL of the variational
layers scaled by 1/N_train (Kingma et al. 2015, eq. 3; Molchanov et al. 2017,
eq. 2): for a minibatch of size M the stochastic estimate of the negative
ELBO divided by N is ``mean NLL over the batch + KL / N``. A linear warm-up
multiplies the KL term by ``min(1, t / kl_warmup_epochs)`` (t in epochs,
updated every step; Sønderby et al. 2016, arXiv:1602.02282).

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
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._checks import check_float, check_int
from .likelihoods import Categorical, Gaussian
from .nn._protocol import deterministic
from .nn.variational import kl_divergence

__all__ = ["History", "fit", "load_checkpoint", "save_atomic"]

Likelihood = Gaussian | Categorical


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run (loss = NLL + scaled KL, per example)."""

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
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``weights_only=True``: data, never code)."""
    state: dict[str, Any] = torch.load(path, weights_only=True)
    return state


def _tensors(data: Any, name: str, categorical: bool) -> tuple[Tensor, Tensor]:
    if isinstance(data, torch.utils.data.TensorDataset):
        data = data.tensors
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"The '{name}' parameter of fit must be a pair (X, y) of tensors or arrays. Got {type(data).__name__} instead."
        )
    x = torch.as_tensor(np.asarray(data[0]) if not isinstance(data[0], Tensor) else data[0]).float()
    y = torch.as_tensor(np.asarray(data[1]) if not isinstance(data[1], Tensor) else data[1])
    y = y.long() if categorical else y.float()
    if len(x) != len(y):
        raise ValueError(
            f"The '{name}' parameter of fit must have as many targets as inputs. Got {len(x)} and {len(y)}."
        )
    if len(x) == 0:
        raise ValueError(f"The '{name}' parameter of fit must not be empty.")
    if not torch.isfinite(x).all() or (not categorical and not torch.isfinite(y).all()):
        raise ValueError(f"The '{name}' parameter of fit contains NaN or infinite values.")
    return x, y


@contextlib.contextmanager
def _rng(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _val_nll(model: nn.Module, likelihood: Likelihood, val: tuple[Tensor, Tensor]) -> float:
    with torch.no_grad(), deterministic(model):
        return float(likelihood.nll(model(val[0]), val[1]))


def fit(
    model: nn.Module,
    train_data: Any,
    *,
    likelihood: Likelihood,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    kl_weight: float | None = None,
    kl_warmup_epochs: int = 0,
    val_data: Any = None,
    early_stopping: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    weight_decay: float = 0.0,
) -> History:
    """Train ``model`` and ``likelihood`` by minimising the negative ELBO with Adam.

    Parameters
    ----------
    model : nn.Module
        Network mapping inputs to the likelihood's parameters (means, or means
        and log-variances, or logits).
    train_data : (X, y)
        Tensors or arrays; X ``(N, ...)``, y ``(N,)`` or ``(N, D)``.
    likelihood : Gaussian or Categorical
        Its parameters (a learned noise) are trained too.
    epochs : int
        Passes over the data.
    lr : float
        Adam learning rate.
    batch_size : int
        Minibatch size.
    kl_weight : float, optional
        Weight of the summed KL per example; ``1 / N_train`` by default (the
        ELBO). 0 trains without the KL.
    kl_warmup_epochs : int
        Linear warm-up of the KL weight over this many epochs (0: none).
    val_data : (X, y), optional
        Validation data; its NLL (eval-mode pass) is recorded every epoch.
    early_stopping : int, optional
        Stop after this many epochs without a better validation NLL and
        restore the best weights of the model and the likelihood (requires
        ``val_data``).
    seed : int, optional
        Makes the run deterministic (shuffling and noise) and leaves the
        caller's global RNG state untouched.
    progress : bool
        Show a tqdm progress bar with loss, KL and validation NLL.
    checkpoint : path, optional
        Write the full state (model, likelihood, optimiser, epoch and batch,
        history, RNG states) atomically after every epoch and on
        ``KeyboardInterrupt`` (then re-raised).
    resume : bool
        Continue from ``checkpoint`` if it exists; the result equals an
        uninterrupted run with the same seed.
    weight_decay : float
        L2 penalty of Adam (Gal & Ghahramani's prior term for MC dropout).

    Returns
    -------
    History
        The model is left in eval mode.

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
    kl_warmup_epochs = check_int(kl_warmup_epochs, "kl_warmup_epochs", "fit", minimum=0)
    weight_decay = check_float(weight_decay, "weight_decay", "fit", low=0.0)
    if early_stopping is not None:
        early_stopping = check_int(early_stopping, "early_stopping", "fit")
        if val_data is None:
            raise ValueError("The 'early_stopping' parameter of fit needs val_data.")
    if resume and checkpoint is None:
        raise ValueError("The 'resume' parameter of fit needs a checkpoint path.")
    categorical = isinstance(likelihood, Categorical)
    x, y = _tensors(train_data, "train_data", categorical)
    val = _tensors(val_data, "val_data", categorical) if val_data is not None else None
    n = len(x)
    weight = 1.0 / n if kl_weight is None else check_float(kl_weight, "kl_weight", "fit", low=0.0)
    params = list(model.parameters()) + list(likelihood.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    num_batches = math.ceil(n / batch_size)
    history = History(kl_weight=weight)

    with _rng(seed):
        gen = torch.Generator()
        gen.manual_seed(int(torch.randint(0, 2**62, ())))
        start_epoch, start_batch, perm = 0, 0, None
        sums = [0.0, 0.0, 0.0]
        # best val NLL, best state, epochs without improvement
        best: tuple[float, dict[str, Any] | None, int] = (math.inf, None, 0)
        if resume and checkpoint is not None and Path(checkpoint).exists():
            state = load_checkpoint(checkpoint)
            model.load_state_dict(state["model"])
            likelihood.load_state_dict(state["likelihood"])
            opt.load_state_dict(state["optimizer"])
            history = History(**state["history"])
            start_epoch, start_batch = state["epoch"], state["batch"]
            perm = state["perm"]
            gen.set_state(state["gen_state"])
            torch.set_rng_state(state["rng_state"])
            sums = list(state["sums"])
            best = (state["best_val"], state["best_state"], state["bad_epochs"])

        def snapshot(epoch: int, batch: int, rng_state: Tensor) -> None:
            if checkpoint is None:
                return
            save_atomic(
                {
                    "format": "bayesdrop-checkpoint",
                    "model": model.state_dict(),
                    "likelihood": likelihood.state_dict(),
                    "optimizer": opt.state_dict(),
                    "history": history.to_dict(),
                    "epoch": epoch,
                    "batch": batch,
                    "perm": perm,
                    "gen_state": gen.get_state(),
                    "rng_state": rng_state,
                    "sums": sums,
                    "best_val": best[0],
                    "best_state": best[1],
                    "bad_epochs": best[2],
                },
                checkpoint,
            )

        model.train()
        likelihood.train()
        bar = tqdm(range(start_epoch, epochs), desc="fit", disable=not progress, leave=False)
        epoch, batch, stepped, rng_at_batch = start_epoch, start_batch, False, torch.get_rng_state()
        try:
            for epoch in bar:
                if perm is None:
                    perm = torch.randperm(n, generator=gen)
                for batch in range(start_batch, num_batches):
                    rng_at_batch, stepped = torch.get_rng_state(), False
                    idx = perm[batch * batch_size : (batch + 1) * batch_size]
                    t = epoch + (batch + 1) / num_batches
                    scale = weight * (min(1.0, t / kl_warmup_epochs) if kl_warmup_epochs else 1.0)
                    nll = likelihood.nll(model(x[idx]), y[idx])
                    kl = kl_divergence(model)
                    loss = nll + scale * kl
                    opt.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]
                    opt.step()
                    stepped = True
                    k = len(idx)
                    sums[0] += float(loss.detach()) * k
                    sums[1] += float(nll.detach()) * k
                    sums[2] += float(kl.detach())
                history.epoch.append(epoch + 1)
                history.loss.append(sums[0] / n)
                history.nll.append(sums[1] / n)
                history.kl.append(sums[2] / num_batches)
                history.kl_scale.append(
                    weight * (min(1.0, (epoch + 1) / kl_warmup_epochs) if kl_warmup_epochs else 1.0)
                )
                sums, start_batch, perm = [0.0, 0.0, 0.0], 0, None
                postfix = {"loss": f"{history.loss[-1]:.4f}", "kl": f"{history.kl[-1]:.1f}"}
                if val is not None:
                    v = _val_nll(model, likelihood, val)
                    history.val_nll.append(v)
                    postfix["val_nll"] = f"{v:.4f}"
                    if v < best[0]:
                        best = (
                            v,
                            copy.deepcopy({"model": model.state_dict(), "likelihood": likelihood.state_dict()}),
                            0,
                        )
                        history.best_epoch = epoch + 1
                    else:
                        best = (best[0], best[1], best[2] + 1)
                bar.set_postfix(postfix)
                stop = early_stopping is not None and best[2] >= early_stopping
                history.stopped_early = stop
                snapshot(epoch + 1, 0, torch.get_rng_state())
                if stop:
                    break
        except KeyboardInterrupt:
            if len(history.epoch) > epoch:  # the epoch was recorded: resume at the next one
                snapshot(epoch + 1, 0, torch.get_rng_state())
            elif stepped:
                snapshot(epoch, batch + 1, torch.get_rng_state())
            else:
                snapshot(epoch, batch, rng_at_batch)
            raise
        finally:
            bar.close()
    if early_stopping is not None and best[1] is not None:
        model.load_state_dict(best[1]["model"])
        likelihood.load_state_dict(best[1]["likelihood"])
    model.eval()
    likelihood.eval()
    return history
