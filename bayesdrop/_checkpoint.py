"""Checkpoints of :func:`bayesdrop.fit` and exact resume (private).

A checkpoint holds the model, the likelihood, the optimiser and scheduler,
the state of the run (history, epoch, batch, running sums, early stopping) and,
per rank, the RNG states and the loader's generators at the start of the
epoch and of the next batch. Resuming restores them and replays the batch
order up to the batch where the run stopped, so the result equals an
uninterrupted run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from torch.utils.data.distributed import DistributedSampler

from . import _distributed as distributed
from ._batches import sampler_of
from .files import atomic_write

FORMAT, VERSION = "bayesdrop-checkpoint", 3

#: Samplers whose order is a function of torch's global RNG, their own
#: generator and (DistributedSampler) seed and epoch: ``fit`` can replay them.
REPLAYABLE_SAMPLERS = (SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler, DistributedSampler)


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
    """Load a checkpoint written by :func:`bayesdrop.fit` (``weights_only=True``: data, never code).

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


# --------------------------------------------------------------------------- RNG and batch order


def replayable(data: Iterable[Any]) -> bool:
    """Whether ``fit`` can reproduce the order of ``data``'s batches from saved RNG states."""
    if isinstance(data, (list, tuple)):
        return True
    if not isinstance(data, DataLoader) or isinstance(data.dataset, IterableDataset):
        return False
    if data.batch_sampler is not None and type(data.batch_sampler) is not BatchSampler:
        return False
    return type(sampler_of(data)) in REPLAYABLE_SAMPLERS


def capture(data: Iterable[Any], device: torch.device) -> dict[str, Tensor]:
    """RNG states and the loader's private generators: what decides the noise and the order from here on."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if isinstance(data, DataLoader):
        if data.generator is not None:
            state["order_loader"] = data.generator.get_state()
        gen = getattr(sampler_of(data), "generator", None)
        if isinstance(gen, torch.Generator) and gen is not data.generator:
            state["order_sampler"] = gen.get_state()
    return state


def restore(state: dict[str, Tensor], data: Iterable[Any], device: torch.device) -> None:
    """Set what :func:`capture` saved."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    if isinstance(data, DataLoader):
        if "order_loader" in state and data.generator is not None:
            data.generator.set_state(state["order_loader"])
        gen = getattr(sampler_of(data), "generator", None)
        if "order_sampler" in state and isinstance(gen, torch.Generator):
            gen.set_state(state["order_sampler"])


# --------------------------------------------------------------------------- the file


def save_run(path: str | os.PathLike[str], run: dict[str, Any], parts: dict[str, Any], shared: bool) -> None:
    """Write the run's fields and the state dicts in ``parts`` atomically.

    ``run`` holds ``epoch_rng`` and ``batch_rng`` (this rank's RNG states);
    every rank's are gathered first, then rank 0 writes.
    """
    mine = (run["epoch_rng"], run["batch_rng"])
    rngs = distributed.all_gather_objects(mine) if shared else [mine]
    if shared and distributed.rank() != 0:
        return
    kept = {k: v for k, v in run.items() if k not in ("epoch_rng", "batch_rng")}
    payload = {"format": FORMAT, "version": VERSION, **parts, **kept, "world_size": len(rngs)}
    save_atomic({**payload, "epoch_rng": [r[0] for r in rngs], "batch_rng": [r[1] for r in rngs]}, path)


def load_run(path: str | os.PathLike[str], modules: dict[str, Any], shared: bool) -> dict[str, Any]:
    """The run's fields saved at ``path`` (this rank's RNG states); each of ``modules`` gets its saved state."""
    state = load_checkpoint(path)
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise ValueError(
            f"The 'checkpoint' parameter of fit must name a checkpoint written by this version of fit. "
            f"Got {str(path)!r} (format {state.get('format')!r}, version {state.get('version')!r}) instead."
        )
    ranks = distributed.world_size() if shared else 1
    if state["world_size"] != ranks:
        raise ValueError(
            f"The 'checkpoint' {str(path)!r} was written by {state['world_size']} process(es); resuming it "
            f"needs the same number. Got {ranks} instead."
        )
    for name, module in modules.items():
        if module is not None and state[name] is not None:
            module.load_state_dict(state[name])
    r = distributed.rank() if shared else 0
    run = {k: v for k, v in state.items() if k not in ("format", "version", "world_size", *modules)}
    return {**run, "epoch_rng": state["epoch_rng"][r], "batch_rng": state["batch_rng"][r]}
