"""The model calling convention shared by ``sample``, ``fit``, ``evaluate`` and ``diagnostics`` (private).

An input ``x`` is a tensor (``model(x)``), a tuple or list of tensors
(``model(*x)``) or a dict of tensors (``model(**x)``, the way Hugging Face
models take a tokenised batch); all tensors are batched on dim 0. What the
model returns is a tensor, or a tuple, dict or dataclass-like object from
which ``output`` (an index, a key or a callable) picks the tensor. The model
decides device and dtype: :func:`prepare` looks through a DDP wrapper and
moves the input once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

Output = int | str | Callable[[Any], Tensor] | None


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


def call_model(model: nn.Module, x: Any) -> Any:
    """``model(x)``, ``model(*x)`` or ``model(**x)`` for a tensor, a tuple/list or a dict."""
    if isinstance(x, Mapping):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


def select_output(out: Any, output: Output, owner: str) -> Tensor:
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


def tensors_in(x: Any) -> list[Tensor]:
    """The tensors of a model input or output (a tensor, a tuple/list or a dict; other values are skipped)."""
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
    tensors = tensors_in(x)
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


def take_rows(x: Any, index: Tensor | slice | int) -> Any:
    """The rows ``index`` of every tensor in ``x`` (other values pass unchanged)."""
    if isinstance(x, Tensor):
        return x[index]
    if isinstance(x, Mapping):
        return {k: take_rows(v, index) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(take_rows(v, index) for v in x)
    return x


def row_bytes(x: Any) -> int:
    """Bytes of one example of ``x``."""
    return sum(t[0].numel() * t.element_size() for t in tensors_in(x) if t.shape[0] > 0)


def from_numpy(x: Any) -> Any:
    """``x`` with every numpy array (alone, in a tuple/list or in a dict) turned into a tensor."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, Mapping):
        return {k: from_numpy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(from_numpy(v) for v in x)
    return x


def prepare(model: nn.Module, x: Any) -> tuple[nn.Module, Any]:
    """The module inside any DDP wrapper, and ``x`` moved to its device (floating tensors in its dtype)."""
    net = unwrap(model)
    device, dtype = device_dtype(net)
    return net, to_model(x, device, dtype)
