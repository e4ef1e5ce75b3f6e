"""Input conversion and validation shared by the metric functions (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

Array = npt.NDArray[np.float64]
ArrayLike = Any  # torch.Tensor | np.ndarray | sequence of numbers

ROW_SUM_TOL = 1e-5


def as_float(x: ArrayLike, name: str) -> Array:
    """``x`` as a float64 numpy array; NaN and infinities raise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].ravel()[0]
        raise ValueError(f"The '{name}' parameter must be finite. Got {bad} instead.")
    return arr


def as_probs(probs: ArrayLike, name: str = "probs", ndims: tuple[int, ...] = (1, 2)) -> Array:
    """Validated probabilities: values in [0, 1], rows of 2-D arrays summing to 1."""
    p = as_float(probs, name)
    if p.ndim not in ndims:
        raise ValueError(
            f"The '{name}' parameter must have {' or '.join(map(str, ndims))} dimensions. Got shape {p.shape} instead."
        )
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        bad = p.min() if p.min() < 0.0 else p.max()
        raise ValueError(f"The '{name}' parameter must hold probabilities in [0, 1]. Got {bad} instead.")
    if p.ndim >= 2:
        sums = p.sum(-1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOL
        if np.any(off):
            raise ValueError(
                f"The '{name}' parameter must have rows summing to 1 (within {ROW_SUM_TOL}). "
                f"Got a row summing to {sums[off].ravel()[0]} instead; apply a softmax to logits first."
            )
    return p


def as_labels(labels: ArrayLike, n: int, num_classes: int, name: str = "labels") -> npt.NDArray[np.int64]:
    """Validated integer labels in [0, num_classes), one per example."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"The '{name}' parameter must have shape ({n},), one label per example. Got shape {y.shape} instead."
        )
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = y[~np.isfinite(y) | (y != np.round(y))][0]
            raise ValueError(f"The '{name}' parameter must hold integer class labels. Got {bad} instead.")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"The '{name}' parameter must hold integer class labels. Got dtype {y.dtype} instead.")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"The '{name}' parameter must hold labels in [0, {num_classes - 1}]. Got {bad} instead.")
    return y


def probs_and_labels(probs: ArrayLike, labels: ArrayLike) -> tuple[Array, npt.NDArray[np.int64]]:
    """Validate a probability array (N, K) or (N,) with its labels."""
    p = as_probs(probs)
    k = p.shape[1] if p.ndim == 2 else 2
    return p, as_labels(labels, p.shape[0], k)


def same_length(name_a: str, a: Array, name_b: str, b: Array) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"The '{name_a}' and '{name_b}' parameters must have the same shape. Got {a.shape} and {b.shape} instead."
        )
