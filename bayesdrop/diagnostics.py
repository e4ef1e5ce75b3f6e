"""What dropout does to hidden units: activation statistics, co-adaptation and features.

Srivastava et al. (2014, sec. 7) show that dropout makes hidden activations
sparser (figure 8: histograms of the units' mean activations and of the
activations) and the features less co-adapted and more distinct (figure 7:
first-layer features of an autoencoder). These functions measure the same
quantities on any model, with forward hooks on named modules, over a whole
dataset streamed in batches:

- :func:`activation_statistics`: per layer, each unit's mean activation, the
  fraction of activations near zero (overall and per unit) and histograms of
  the activations and of the units' means;
- :func:`unit_correlations` and :func:`coadaptation`: the correlation matrix
  of a layer's units over the data and the mean absolute off-diagonal
  correlation (1 for units that are copies of each other);
- :func:`tile_features`: the rows of a first-layer weight as an image grid.

A layer's "units" are the last dimension of a ``(N, U)`` output, or the
channels of a ``(N, C, *spatial)`` output (each spatial position then counts
as one observation). The model runs in eval mode (the deterministic network)
unless ``train_mode=True`` asks for the noisy one; the model's modes are
restored afterwards. :mod:`bayesdrop.plots` draws the results
(:func:`bayesdrop.plots.activation_histograms`,
:func:`bayesdrop.plots.feature_grid`).

References
----------
- Srivastava et al. 2014, JMLR 15, sec. 7.1-7.2.
- Hinton et al. 2012, arXiv:1207.0580 (co-adaptation).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from ._calls import call_model, device_dtype, to_model
from ._checks import check_float, check_int

__all__ = ["ActivationStats", "activation_statistics", "coadaptation", "tile_features", "unit_correlations"]

#: Activation modules hooked when ``layers`` is not given.
ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Softplus)

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ActivationStats:
    """Activation statistics of one layer over a dataset.

    Attributes
    ----------
    mean : array (U,)
        Each unit's mean activation.
    near_zero : float
        Fraction of all activations with ``|a| <= zero_tol``.
    unit_near_zero : array (U,)
        The same fraction per unit.
    counts, edges : arrays (bins,), (bins + 1,)
        Histogram of all activations.
    mean_counts, mean_edges : arrays
        Histogram of the units' mean activations (figure 8a of Srivastava et al.).
    num_observations : int
        Activations per unit that entered the statistics.
    """

    mean: Array
    near_zero: float
    unit_near_zero: Array
    counts: Array
    edges: Array
    mean_counts: Array
    mean_edges: Array
    num_observations: int

    @property
    def num_units(self) -> int:
        """U, the number of units."""
        return int(self.mean.shape[0])


def _units(out: Any, name: str) -> Tensor:
    """A layer output as ``(observations, units)`` float64."""
    if not isinstance(out, Tensor):
        raise TypeError(f"layer '{name}' returned {type(out).__name__}; diagnostics need a tensor output")
    a = out.detach().to(torch.float64)
    if a.ndim < 2:
        raise ValueError(f"layer '{name}' returned shape {tuple(a.shape)}; diagnostics need (N, units, ...)")
    if a.ndim > 2:  # (N, C, *spatial): channels are the units
        a = a.movedim(1, -1).reshape(-1, a.shape[1])
    return a


def _inputs(data: Any, batch_size: int) -> Iterator[Any]:
    """Model inputs from a tensor/array (chunked) or an iterable of batches (``x`` or ``(x, y)``)."""
    if isinstance(data, np.ndarray):
        data = torch.as_tensor(data)
    if isinstance(data, Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size]
        return
    if isinstance(data, Mapping) or not isinstance(data, Iterable):
        raise TypeError(
            "The 'data' parameter must be a tensor or array of inputs, or an iterable of batches (x or (x, y)) "
            f"such as a DataLoader. Got {type(data).__name__} instead."
        )
    for batch in data:
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            batch = batch[0]
        yield batch


def _resolve(model: nn.Module, layers: Sequence[str] | None, owner: str) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    if layers is None:
        found: dict[str, nn.Module] = {n: m for n, m in modules.items() if n and isinstance(m, ACTIVATIONS)}
        if not found:
            raise ValueError(
                f"The 'layers' parameter of {owner} is needed: the model has no activation module "
                f"({', '.join(c.__name__ for c in ACTIVATIONS)}) to hook by default."
            )
        return found
    if isinstance(layers, str):
        layers = [layers]
    missing = [n for n in layers if n not in modules]
    if missing:
        names = ", ".join(repr(n) for n in modules if n)
        raise ValueError(
            f"The 'layers' parameter of {owner} must name modules of the model ({names}). Got {missing!r} instead."
        )
    return {n: modules[n] for n in layers}


def _run(
    model: nn.Module, data: Any, targets: dict[str, nn.Module], batch_size: int, train_mode: bool
) -> Iterator[dict[str, Tensor]]:
    """Yield, per batch, each target layer's output as (observations, units)."""
    device, dtype = device_dtype(model)
    captured: dict[str, Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=n: captured.__setitem__(name, _units(out, name)))
        for n, m in targets.items()
    ]
    flags = {m: m.training for m in model.modules()}
    try:
        if train_mode:
            model.train()
        else:
            model.eval()
        with torch.no_grad():
            for x in _inputs(data, batch_size):
                captured.clear()
                call_model(model, to_model(x, device, dtype))
                missing = [n for n in targets if n not in captured]
                if missing:
                    raise ValueError(f"layers {missing} were not called by the model's forward pass")
                yield dict(captured)
    finally:
        for h in hooks:
            h.remove()
        for m, flag in flags.items():
            m.training = flag


def _observed_ranges(
    model: nn.Module, data: Any, targets: dict[str, nn.Module], batch_size: int, train_mode: bool
) -> dict[str, tuple[float, float]]:
    """Each layer's smallest and largest activation over the data (a first pass; width 1 when constant)."""
    lows = dict.fromkeys(targets, math.inf)
    highs = dict.fromkeys(targets, -math.inf)
    for out in _run(model, data, targets, batch_size, train_mode):
        for n, a in out.items():
            lows[n], highs[n] = min(lows[n], float(a.min())), max(highs[n], float(a.max()))
    return {n: (lows[n], highs[n] if highs[n] > lows[n] else lows[n] + 1.0) for n in targets}


def activation_statistics(
    model: nn.Module,
    data: Any,
    layers: Sequence[str] | str | None = None,
    *,
    zero_tol: float = 1e-6,
    bins: int = 50,
    hist_range: tuple[float, float] | None = None,
    batch_size: int = 512,
    train_mode: bool = False,
) -> dict[str, ActivationStats]:
    """Per-layer activation statistics of ``model`` over ``data``.

    Parameters
    ----------
    model : nn.Module
    data : Tensor, array or iterable of batches
        Model inputs, or batches ``x`` / ``(x, y)`` (a DataLoader).
    layers : str or sequence of str, optional
        Names of the modules whose outputs are measured (``model.named_modules()``);
        by default every activation module (ReLU, Sigmoid, Tanh, GELU, ...).
    zero_tol : float
        ``|a| <= zero_tol`` counts as zero (sparsity).
    bins : int
        Histogram bins.
    hist_range : (float, float), optional
        Histogram range of the activations; by default the observed minimum
        and maximum (one extra pass over the data).
    batch_size : int
        Rows per forward pass when ``data`` is a tensor.
    train_mode : bool
        Measure the noisy network (train mode) instead of the deterministic one.

    Returns
    -------
    dict of str to ActivationStats

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(1.0), net[0].bias.fill_(0.0)
    >>> stats = activation_statistics(net, -torch.rand(10, 2))  # negative inputs: every ReLU output is 0
    >>> stats["1"].near_zero, stats["1"].mean.tolist()
    (1.0, [0.0, 0.0, 0.0])
    """
    owner = "activation_statistics"
    zero_tol = check_float(zero_tol, "zero_tol", owner, low=0.0)
    bins = check_int(bins, "bins", owner)
    batch_size = check_int(batch_size, "batch_size", owner)
    targets = _resolve(model, layers, owner)
    if hist_range is None:
        ranges = _observed_ranges(model, data, targets, batch_size, train_mode)
    else:
        if len(hist_range) != 2 or not hist_range[0] < hist_range[1]:
            raise ValueError(
                f"The 'hist_range' parameter of {owner} must be (low, high) with low < high. Got {hist_range!r}."
            )
        ranges = {n: (float(hist_range[0]), float(hist_range[1])) for n in targets}
    sums: dict[str, Tensor] = {}
    zeros: dict[str, Tensor] = {}
    counts: dict[str, Tensor] = {}
    observations = dict.fromkeys(targets, 0)
    for out in _run(model, data, targets, batch_size, train_mode):
        for n, a in out.items():
            sums[n] = sums[n] + a.sum(0) if n in sums else a.sum(0)
            z = (a.abs() <= zero_tol).sum(0).to(torch.float64)
            zeros[n] = zeros[n] + z if n in zeros else z
            lo, hi = ranges[n]
            h = torch.histc(a.clamp(lo, hi), bins=bins, min=lo, max=hi)
            counts[n] = counts[n] + h if n in counts else h
            observations[n] += a.shape[0]
    if not sums:
        raise ValueError(f"The 'data' parameter of {owner} is empty.")
    result = {}
    for n in targets:
        obs = float(observations[n])
        mean = (sums[n] / obs).numpy()
        unit_zero = (zeros[n] / obs).numpy()
        lo, hi = ranges[n]
        mean_counts, mean_edges = np.histogram(mean, bins=bins)
        result[n] = ActivationStats(
            mean=mean,
            near_zero=float(unit_zero.mean()),
            unit_near_zero=unit_zero,
            counts=counts[n].numpy(),
            edges=np.linspace(lo, hi, bins + 1),
            mean_counts=mean_counts.astype(np.float64),
            mean_edges=mean_edges.astype(np.float64),
            num_observations=int(obs),
        )
    return result


def unit_correlations(
    model: nn.Module, data: Any, layer: str, *, batch_size: int = 512, train_mode: bool = False
) -> Array:
    """Correlation matrix ``(U, U)`` of a layer's units over ``data`` (NaN rows for constant units).

    Accumulated in one pass from sums, sums of squares and cross products in
    float64 (centred on the first batch's means for accuracy).

    Parameters
    ----------
    model : nn.Module
    data : Tensor, array or iterable of batches
    layer : str
        The module's name in ``model.named_modules()``.
    batch_size : int
    train_mode : bool

    Returns
    -------
    array (U, U)
    """
    owner = "unit_correlations"
    batch_size = check_int(batch_size, "batch_size", owner)
    targets = _resolve(model, [layer], owner)
    shift: Tensor | None = None
    n = 0.0
    s: Tensor | None = None
    cross: Tensor | None = None
    for out in _run(model, data, targets, batch_size, train_mode):
        a = out[layer]
        if shift is None:
            shift = a.mean(0)
        a = a - shift
        s = a.sum(0) if s is None else s + a.sum(0)
        cross = a.T @ a if cross is None else cross + a.T @ a
        n += a.shape[0]
    if s is None or cross is None or n < 2:
        raise ValueError(f"The 'data' parameter of {owner} must hold at least two observations.")
    mean = s / n
    cov = cross / n - torch.outer(mean, mean)
    std = cov.diagonal().clamp(min=0).sqrt()
    scale = torch.outer(std, std)
    tiny = std <= 1e-12 * max(1.0, float(std.max()))
    corr = cov / torch.where(scale > 0, scale, torch.ones_like(scale))
    corr = corr.clamp(-1.0, 1.0)
    corr[tiny, :] = float("nan")
    corr[:, tiny] = float("nan")
    return corr.numpy()


def coadaptation(model: nn.Module, data: Any, layer: str, *, batch_size: int = 512, train_mode: bool = False) -> float:
    """Mean absolute correlation between different units of ``layer`` over ``data``.

    1 when the units are copies of each other (or of each other's negatives),
    0 for uncorrelated units. Units that are constant over the data (dead
    ReLUs) have no correlation and are left out.

    Parameters
    ----------
    model : nn.Module
    data : Tensor, array or iterable of batches
    layer : str
    batch_size : int
    train_mode : bool

    Returns
    -------
    float

    Examples
    --------
    >>> lin = nn.Linear(1, 4)
    >>> net = nn.Sequential(lin, nn.Identity())
    >>> round(coadaptation(net, torch.randn(100, 1), "1"), 6)  # four affine copies of one input
    1.0
    """
    corr = unit_correlations(model, data, layer, batch_size=batch_size, train_mode=train_mode)
    off = corr[~np.eye(len(corr), dtype=bool)]
    off = off[np.isfinite(off)]
    if off.size == 0:
        raise ValueError(f"layer '{layer}' has fewer than two units that vary over the data")
    return float(np.abs(off).mean())


def tile_features(
    weight: Tensor | npt.ArrayLike, image_shape: tuple[int, int], *, ncols: int | None = None, pad: int = 1
) -> Array:
    """The rows of a first-layer weight ``(U, H*W)`` tiled as one image, each scaled to [0, 1].

    Parameters
    ----------
    weight : Tensor or array (U, H * W)
        One feature (a unit's incoming weights) per row, e.g. ``linear.weight``.
    image_shape : (H, W)
    ncols : int, optional
        Features per row of the grid (about sqrt(U) by default).
    pad : int
        Pixels between features (NaN, drawn as background).

    Returns
    -------
    array (rows * (H + pad) - pad, ncols * (W + pad) - pad)

    Examples
    --------
    > tile_features(torch.arange(8.0).reshape(2, 4), (2, 2), pad=1).shape
    (2, 5)
    """
    w = weight.detach().cpu().numpy() if isinstance(weight, Tensor) else np.asarray(weight)
    w = np.asarray(w, dtype=np.float64)
    h, wd = image_shape
    if w.ndim != 2 or w.shape[1] != h * wd:
        raise ValueError(
            f"The 'weight' parameter of tile_features must have shape (units, {h * wd}) for image_shape "
            f"{image_shape}. Got {w.shape} instead."
        )
    units = w.shape[0]
    ncols = check_int(ncols if ncols is not None else math.ceil(math.sqrt(units)), "ncols", "tile_features")
    pad = check_int(pad, "pad", "tile_features", minimum=0)
    nrows = math.ceil(units / ncols)
    grid = np.full((nrows * (h + pad) - pad, ncols * (wd + pad) - pad), np.nan)
    lo = w.min(1, keepdims=True)
    span = w.max(1, keepdims=True) - lo
    scaled = (w - lo) / np.where(span > 0, span, 1.0)
    for i in range(units):
        r, c = divmod(i, ncols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (wd + pad) : c * (wd + pad) + wd] = scaled[i].reshape(h, wd)
    return grid


def __getattr__(name: str) -> Any:
    if name == "feature_grid":  # renamed in 0.2: plots.feature_grid draws, this function computes
        warnings.warn(
            "bayesdrop.diagnostics.feature_grid was renamed tile_features (bayesdrop.plots.feature_grid draws it).",
            DeprecationWarning,
            stacklevel=2,
        )
        return tile_features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
