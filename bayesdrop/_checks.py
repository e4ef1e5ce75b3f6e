"""Argument validation with one error format.

Every message names the parameter, its owner, the allowed values and the value
received, e.g. "The 'p' parameter of GaussianDropout must be a float in
[0, 1). Got 1.5 instead."
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def invalid(name: str, owner: str, allowed: str, value: Any, exc: type[Exception] = ValueError) -> Exception:
    return exc(f"The '{name}' parameter of {owner} must be {allowed}. Got {value!r} instead.")


def check_probability(value: Any, name: str, owner: str) -> float:
    """Return ``value`` as a float after checking it lies in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, owner, "a float in [0, 1)", value, TypeError)
    if not (0.0 <= float(value) < 1.0):  # NaN fails this comparison too
        raise invalid(name, owner, "a float in [0, 1)", value)
    return float(value)


def check_int(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    """Return ``value`` after checking it is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, owner, f"an int >= {minimum}", value, TypeError)
    if value < minimum:
        raise invalid(name, owner, f"an int >= {minimum}", value)
    return value


def check_float(
    value: Any,
    name: str,
    owner: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given interval."""
    lb = "(" if low_open else "["
    rb = ")" if high_open else "]"
    allowed = f"a float in {lb}{low:g}, {high:g}{rb}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, owner, allowed, value, TypeError)
    v = float(value)
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if math.isnan(v) or not ok:
        raise invalid(name, owner, allowed, value)
    return v


def check_option(value: Any, name: str, owner: str, options: Iterable[str]) -> str:
    """Return ``value`` after checking it is one of ``options``."""
    opts = tuple(options)
    if value not in opts:
        allowed = "one of " + ", ".join(repr(o) for o in opts)
        raise invalid(name, owner, allowed, value)
    return str(value)


def check_tensor(value: Any, name: str, owner: str) -> torch.Tensor:
    """Return ``value`` after checking it is a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise invalid(name, owner, "a torch.Tensor", type(value).__name__, TypeError)
    return value


def check_spatial_dims(value: Any, owner: str) -> int:
    """Return ``value`` after checking it is 1, 2 or 3 (a conv1d/2d/3d layout), for the ``dims`` parameter."""
    if isinstance(value, bool) or value not in (1, 2, 3):
        raise invalid("dims", owner, "one of 1, 2, 3", value)
    return int(value)


def check_dims(value: Any, name: str, owner: str) -> tuple[int, ...]:
    """Return ``value`` as a tuple of non-batch dimension indices (no 0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise invalid(name, owner, "a tuple of ints", value, TypeError)
    if any(d == 0 for d in value):
        raise invalid(name, owner, "a tuple of non-batch dimensions (0 is the batch)", tuple(value))
    return tuple(value)
