"""torch.distributed helpers and seed derivation (private).

bayesdrop ships no launcher: it works inside a process group the user started
(``torchrun``, ``torch.multiprocessing`` + ``init_process_group``). Without an
initialised process group, or with one process, every helper here is the
single-process identity, so the same code runs in a notebook and under
``torchrun``.

Seeds: a user's seed is never used as is on several ranks. :func:`derive_seed`
hashes the seed with the rank (and, in ``evaluate``, the position of the batch
in the data) with SplitMix64's finaliser, so two ranks, or two batches, never
draw the same noise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

_MASK = (1 << 64) - 1


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def _mix(z: int) -> int:
    # SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijection on 64 bits.
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
    return z ^ (z >> 31)


def derive_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed from ``seed`` and ``parts`` (rank, batch index, ...).

    Examples
    --------
    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    z = _mix((seed + 0x9E3779B97F4A7C15) & _MASK)
    for p in parts:
        z = _mix((z ^ (p + 0x9E3779B97F4A7C15)) & _MASK)
    return z >> 1


def seed_or_draw(seed: int | None) -> int:
    """``seed``, or a seed drawn from torch's global RNG (so ``torch.manual_seed`` makes a run reproducible)."""
    return int(torch.randint(0, 2**62, ())) if seed is None else seed


def rank_seed(seed: int | None) -> int | None:
    """``seed`` made distinct per rank; None stays None on a single process.

    Under several processes an unseeded call draws a base seed from torch's
    global RNG (so ``torch.manual_seed`` still makes the run reproducible) and
    combines it with the rank: ranks that share a global RNG state, as they
    do after the same ``torch.manual_seed``, still draw different noise.
    """
    if not is_distributed():
        return seed
    return derive_seed(seed_or_draw(seed), rank())


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | None = None) -> Iterator[None]:
    """The one way bayesdrop seeds: torch's RNG seeded with ``seed`` inside, the caller's state restored after.

    The CPU generator is forked always, the CUDA generator of ``device``
    when it is a CUDA device. ``seed=None``: the global RNG as it is (so
    ``torch.manual_seed`` at the top of a script makes a run reproducible).
    Under several processes pass :func:`rank_seed` of the user's seed.
    """
    if seed is None:
        yield
        return
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum of ``t`` over all ranks (``t`` itself on one process)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` on one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
