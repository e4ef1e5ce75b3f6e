"""Data for ``fit`` and ``evaluate`` as batches (private).

Data is a pair ``(X, y)`` of arrays/tensors, a map-style ``Dataset`` of
``(x, y)`` items, or any re-iterable of batches (a ``DataLoader``). A batch is
an ``(x, y)`` pair, or a dict that carries its target under a key (the
Hugging Face way: ``{"input_ids": ..., "attention_mask": ..., "labels": ...}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset

from ._calls import check_input, from_numpy, take_rows, tensors_in


class TensorPairs(Dataset[tuple[Any, Tensor]]):
    """An in-memory ``(X, y)`` dataset that a ``DataLoader`` reads a batch at a time.

    ``__getitems__`` returns the batch by one indexing operation (with
    ``collate_fn=already_collated``), which is much faster than collating single rows;
    the batches equal those of a ``TensorDataset`` with the same sampler.
    """

    def __init__(self, x: Any, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Any, Tensor]:
        return take_rows(self.x, i), self.y[i]

    def __getitems__(self, idx: list[int]) -> tuple[Any, Tensor]:
        index = torch.as_tensor(idx, dtype=torch.long)
        return take_rows(self.x, index), self.y[index]


def already_collated(batch: Any) -> Any:
    """The ``collate_fn`` of :class:`TensorPairs`: the batch is already collated."""
    return batch


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))


def _is_pair(data: Any) -> bool:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return False
    x, y = data
    x_ok = isinstance(x, (Tensor, np.ndarray)) or (
        isinstance(x, Mapping) and all(isinstance(v, Tensor) for v in x.values())
    )
    return x_ok and isinstance(y, (Tensor, np.ndarray, list))


def pairs(x: Any, y: Any, name: str, owner: str, categorical: bool) -> TensorPairs:
    """An ``(X, y)`` pair as a validated :class:`TensorPairs`."""
    x = {k: _as_tensor(v) for k, v in x.items()} if isinstance(x, Mapping) else _as_tensor(x)
    y = _as_tensor(y)
    n = check_input(x, name, owner)
    if n != len(y):
        raise ValueError(
            f"The '{name}' parameter of {owner} must have as many targets as inputs. Got {n} and {len(y)}."
        )
    if n == 0:
        raise ValueError(f"The '{name}' parameter of {owner} must not be empty.")
    finite = [t for t in tensors_in(x) if t.is_floating_point()] + ([] if categorical else [y])
    if any(not torch.isfinite(t).all() for t in finite):
        raise ValueError(f"The '{name}' parameter of {owner} contains NaN or infinite values.")
    return TensorPairs(x, y)


def batches(
    data: Any, y: Any, *, batch_size: int, shuffle: bool, name: str, owner: str, categorical: bool
) -> Iterable[Any]:
    """``data`` as a re-iterable of ``(x, y)`` batches.

    An ``(X, y)`` pair (or ``data`` with ``y``) and a map-style ``Dataset``
    become a ``DataLoader`` (shuffled with torch's global RNG when
    ``shuffle``); a ``DataLoader`` or any other re-iterable is used as it is.
    """
    if y is not None:
        data = (data, y)
    if _is_pair(data):
        ds = pairs(data[0], data[1], name, owner, categorical)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=already_collated)
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle)
    if isinstance(data, Iterable) and not isinstance(data, (Tensor, np.ndarray, str, Mapping)):
        if iter(data) is data:
            raise TypeError(
                f"The '{name}' parameter of {owner} must be re-iterable (a DataLoader or a list of batches), "
                f"not a one-shot {type(data).__name__} such as a generator."
            )
        return data
    raise TypeError(
        f"The '{name}' parameter of {owner} must be a pair (X, y) of arrays/tensors, a Dataset or an iterable of "
        f"(x, y) batches such as a DataLoader. Got {type(data).__name__} instead."
    )


def dataset_size(data: Iterable[Any], given: int | None, name: str, owner: str) -> int:
    """``given``, else ``len(data.dataset)``, else an error naming ``dataset_size``."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ValueError(f"The 'dataset_size' parameter of {owner} must be an int >= 1. Got {given!r} instead.")
        return given
    ds = getattr(data, "dataset", None)
    if ds is not None and not isinstance(ds, IterableDataset):
        try:
            return len(ds)
        except TypeError:
            pass
    raise ValueError(
        f"The 'dataset_size' parameter of {owner} is required: the number of training examples cannot be read from "
        f"the '{name}' parameter (a {type(data).__name__} without a sized .dataset). Pass dataset_size=N."
    )


def split_batch(batch: Any, name: str, owner: str, target: str = "labels") -> tuple[Any, Tensor]:
    """A batch as ``(x, y)``: an ``(x, y)`` pair, or a dict whose ``target`` key holds y (the rest is x)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Tensor):
        x = batch[0]
        if isinstance(x, Tensor) or (isinstance(x, (Mapping, tuple, list)) and tensors_in(x)):
            return x, batch[1]
    if isinstance(batch, Mapping):
        if target in batch and isinstance(batch[target], Tensor):
            rest = {k: v for k, v in batch.items() if k != target}
            if tensors_in(rest):
                return rest, batch[target]
        raise TypeError(
            f"The '{name}' parameter of {owner} yielded a dict batch without a target tensor under the key "
            f"{target!r} (keys: {', '.join(map(repr, batch))}). Pass {owner}(..., target=KEY) with the key that "
            "holds the labels or targets; the other keys go to the model as keyword arguments."
        )
    what = type(batch).__name__
    if isinstance(batch, (tuple, list)):
        what += f" of length {len(batch)} ({', '.join(type(b).__name__ for b in batch)})"
    raise TypeError(
        f"The '{name}' parameter of {owner} must yield (x, y) batches, x a tensor, a tuple or a dict of tensors and "
        f"y a tensor, or dicts that hold the target under the key {target!r} (Hugging Face style). "
        f"Got a {what} instead."
    )


def sampler_of(data: Iterable[Any]) -> Any:
    """The index sampler of a ``DataLoader`` (None for other iterables)."""
    if not isinstance(data, DataLoader):
        return None
    batch_sampler = data.batch_sampler
    return batch_sampler.sampler if isinstance(batch_sampler, BatchSampler) else data.sampler


def set_epoch(data: Iterable[Any], epoch: int) -> None:
    """Call ``set_epoch`` on a distributed (or any epoch-aware) sampler."""
    for obj in (sampler_of(data), getattr(data, "batch_sampler", None)):
        set_to = getattr(obj, "set_epoch", None)
        if callable(set_to):
            set_to(epoch)


def split_unlabelled(batch: Any, name: str, owner: str, target: str = "labels") -> tuple[Any, Tensor]:
    """A batch's inputs, its labels (if any) ignored, and a placeholder label per example.

    ``(x,)`` (a ``TensorDataset`` of inputs), ``(x, y)``, a dict (the
    ``target`` key dropped) or the inputs themselves.
    """
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2) and isinstance(batch[-1], Tensor):
        x = batch[0]
    elif isinstance(batch, Mapping):
        x = {k: v for k, v in batch.items() if k != target}
    else:
        x = batch
    n = check_input(x, name, owner)
    return x, torch.zeros(n, dtype=torch.long)


def input_batches(data: Any, batch_size: int, name: str, owner: str) -> Iterable[Any]:
    """Inputs without labels as batches: a tensor, array or dict of them is cut into ``(x,)`` batches; anything
    else is read as :func:`batches` reads data (labels then ignored by :func:`split_unlabelled`)."""
    if isinstance(data, (Tensor, np.ndarray)) or (
        isinstance(data, Mapping) and all(isinstance(v, (Tensor, np.ndarray)) for v in data.values())
    ):
        x = from_numpy(data)
        n = check_input(x, name, owner)
        if n == 0:
            raise ValueError(f"The '{name}' parameter of {owner} must hold at least one example. Got none.")
        return [(take_rows(x, slice(i, i + batch_size)),) for i in range(0, n, batch_size)]
    return batches(data, None, batch_size=batch_size, shuffle=False, name=name, owner=owner, categorical=True)
