"""Batches, devices and model calls shared by ``sample``, ``fit`` and ``evaluate`` (private).

One calling convention everywhere: an input ``x`` is a tensor (``model(x)``),
a tuple or list of tensors (``model(*x)``) or a dict of tensors
(``model(**x)``, the way HuggingFace models take a tokenised batch); all
tensors are batched on dim 0. What the model returns is a tensor, or a
tuple, dict or dataclass-like object from which ``output`` (an index, a key
or a callable) picks the tensor.

Data for ``fit`` and ``evaluate`` is a pair ``(X, y)`` of arrays/tensors, a
map-style ``Dataset`` of ``(x, y)`` items, or any re-iterable of ``(x, y)``
batches (a ``DataLoader``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from torch.utils.data.distributed import DistributedSampler

Output = int | str | Callable[[Any], Tensor] | None

#: Samplers whose order is a function of torch's global RNG, their own
#: generator and (DistributedSampler) seed and epoch: ``fit`` can replay them.
REPLAYABLE_SAMPLERS = (SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler, DistributedSampler)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` (or ``DataParallel``) wrapper."""
    inner = getattr(model, "module", None)
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) and isinstance(inner, nn.Module):
        return inner
    return model


def device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device of the model's first parameter (or buffer) and its floating dtype."""
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    return device, floats[0] if floats else torch.get_default_dtype()


def to_model(obj: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move every tensor in ``obj`` to ``device``; floating tensors take ``dtype``, integers stay integers."""
    if isinstance(obj, Tensor):
        if obj.is_floating_point():
            return obj.to(device=device, dtype=dtype)
        return obj.to(device=device)
    if isinstance(obj, Mapping):
        return {k: to_model(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_model(v, device, dtype) for v in obj)
    return obj


def call(model: nn.Module, x: Any) -> Any:
    """``model(x)``, ``model(*x)`` or ``model(**x)`` for a tensor, a tuple/list or a dict."""
    if isinstance(x, Mapping):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


def select(out: Any, output: Output, owner: str) -> Tensor:
    """The tensor that ``output`` picks from a model's return value."""
    if output is None:
        if isinstance(out, Tensor):
            return out
        raise TypeError(
            f"The model returned a {type(out).__name__}, not a tensor: pass {owner}(..., output=...) with an index, "
            "a key or a callable (e.g. output='logits' or output=lambda o: o.logits) to pick the tensor."
        )
    if callable(output):
        picked = output(out)
    elif isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError(
            f"The 'output' parameter of {owner} must be None, an int, a str or a callable. "
            f"Got {type(output).__name__} instead."
        )
    else:
        picked = _pick(out, output, owner)
    if not isinstance(picked, Tensor):
        raise ValueError(
            f"The 'output' parameter of {owner} must select a tensor. Got {output!r}, which selected a "
            f"{type(picked).__name__} instead."
        )
    return picked


def _pick(out: Any, key: int | str, owner: str) -> Any:
    try:
        if isinstance(key, int):
            if not isinstance(out, (tuple, list)):
                raise IndexError
            return out[key]
        if isinstance(out, Mapping):
            return out[key]
        return getattr(out, key)
    except (IndexError, KeyError, AttributeError):
        pass
    if isinstance(out, Mapping):
        have = f"keys {sorted(map(str, out))}"
    elif isinstance(out, (tuple, list)):
        have = f"a {type(out).__name__} of length {len(out)}"
    else:
        have = f"a {type(out).__name__}"
    raise ValueError(
        f"The 'output' parameter of {owner} selects nothing: {key!r} is not in the model's output ({have})."
    )


def _tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, Mapping):
        return [v for v in x.values() if isinstance(v, Tensor)]
    if isinstance(x, (tuple, list)):
        return [v for v in x if isinstance(v, Tensor)]
    return []


def check_input(x: Any, name: str, owner: str) -> int:
    """Validate a model input (tensor, tuple/list or dict of tensors) and return its batch size."""
    if not isinstance(x, (Tensor, Mapping, tuple, list)):
        raise TypeError(
            f"The '{name}' parameter of {owner} must be a tensor, a tuple/list of tensors or a dict of tensors. "
            f"Got {type(x).__name__} instead."
        )
    tensors = _tensors(x)
    if not tensors:
        raise TypeError(f"The '{name}' parameter of {owner} must contain at least one tensor. Got {x!r} instead.")
    sizes = {tuple(t.shape[:1]) for t in tensors}
    if () in sizes:
        raise ValueError(f"The '{name}' parameter of {owner} must have a batch dimension. Got a 0-d tensor instead.")
    if len(sizes) != 1:
        raise ValueError(
            f"The '{name}' parameter of {owner} must hold tensors with the same batch size (dim 0). "
            f"Got sizes {sorted(s[0] for s in sizes)} instead."
        )
    return int(tensors[0].shape[0])


def rows(x: Any, index: Tensor | slice | int) -> Any:
    """The rows ``index`` of every tensor in ``x`` (other values pass unchanged)."""
    if isinstance(x, Tensor):
        return x[index]
    if isinstance(x, Mapping):
        return {k: rows(v, index) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(rows(v, index) for v in x)
    return x


def row_bytes(x: Any) -> int:
    """Bytes of one example of ``x``."""
    return sum(t[0].numel() * t.element_size() for t in _tensors(x) if t.shape[0] > 0)


# --------------------------------------------------------------------------- data


class TensorPairs(Dataset[tuple[Any, Tensor]]):
    """An in-memory ``(X, y)`` dataset that a ``DataLoader`` reads a batch at a time.

    ``__getitems__`` returns the batch by one indexing operation (with
    ``collate_fn=first``), which is much faster than collating single rows;
    the batches equal those of a ``TensorDataset`` with the same sampler.
    """

    def __init__(self, x: Any, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Any, Tensor]:
        return rows(self.x, i), self.y[i]

    def __getitems__(self, idx: list[int]) -> tuple[Any, Tensor]:
        index = torch.as_tensor(idx, dtype=torch.long)
        return rows(self.x, index), self.y[index]


def first(batch: Any) -> Any:
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
    finite = [t for t in _tensors(x) if t.is_floating_point()] + ([] if categorical else [y])
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
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=first)
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


def split(batch: Any, name: str, owner: str) -> tuple[Any, Tensor]:
    """A batch as ``(x, y)``, with a clear error for anything else."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[1], Tensor):
        x = batch[0]
        if isinstance(x, Tensor) or (isinstance(x, (Mapping, tuple, list)) and _tensors(x)):
            return x, batch[1]
    what = type(batch).__name__
    if isinstance(batch, (tuple, list)):
        what += f" of length {len(batch)} ({', '.join(type(b).__name__ for b in batch)})"
    raise TypeError(
        f"The '{name}' parameter of {owner} must yield (x, y) batches, x a tensor, a tuple or a dict of tensors and "
        f"y a tensor. Got a {what} instead."
    )


# --------------------------------------------------------------------------- order


def _samplers(loader: DataLoader[Any]) -> tuple[Any, Any]:
    batch_sampler = loader.batch_sampler
    sampler = batch_sampler.sampler if isinstance(batch_sampler, BatchSampler) else loader.sampler
    return batch_sampler, sampler


def sampler_of(data: Iterable[Any]) -> Any:
    """The index sampler of a ``DataLoader`` (None for other iterables)."""
    return _samplers(data)[1] if isinstance(data, DataLoader) else None


def replayable(data: Iterable[Any]) -> bool:
    """Whether ``fit`` can reproduce the order of ``data``'s batches from saved RNG states."""
    if isinstance(data, (list, tuple)):
        return True
    if not isinstance(data, DataLoader) or isinstance(data.dataset, IterableDataset):
        return False
    batch_sampler, sampler = _samplers(data)
    if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
        return False
    return type(sampler) in REPLAYABLE_SAMPLERS


def order_state(data: Iterable[Any]) -> dict[str, Tensor]:
    """States of the private generators that decide ``data``'s order."""
    state: dict[str, Tensor] = {}
    if isinstance(data, DataLoader):
        if data.generator is not None:
            state["loader"] = data.generator.get_state()
        gen = getattr(sampler_of(data), "generator", None)
        if isinstance(gen, torch.Generator) and gen is not data.generator:
            state["sampler"] = gen.get_state()
    return state


def set_order_state(data: Iterable[Any], state: dict[str, Tensor]) -> None:
    if isinstance(data, DataLoader):
        if "loader" in state and data.generator is not None:
            data.generator.set_state(state["loader"])
        gen = getattr(sampler_of(data), "generator", None)
        if "sampler" in state and isinstance(gen, torch.Generator):
            gen.set_state(state["sampler"])


def set_epoch(data: Iterable[Any], epoch: int) -> None:
    """Call ``set_epoch`` on a distributed (or any epoch-aware) sampler."""
    for obj in (sampler_of(data), getattr(data, "batch_sampler", None)):
        set_to = getattr(obj, "set_epoch", None)
        if callable(set_to):
            set_to(epoch)
