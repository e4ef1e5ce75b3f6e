"""Monte Carlo predictive sampling from any model with stochastic layers.

References
----------
Gal & Ghahramani 2016, "Dropout as a Bayesian approximation", arXiv:1506.02142
(MC dropout: average T stochastic forward passes at test time).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ._checks import check_int, check_tensor
from .nn._protocol import StochasticModule, deterministic

__all__ = ["DEFAULT_CHUNK_BYTES", "deterministic", "is_stochastic", "sample", "sampling"]

#: Torch's own dropout modules, switched to sampling by :func:`sampling`.
TORCH_DROPOUTS: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

#: Default memory budget of one forward pass of :func:`sample`: the tiled
#: input rows of one chunk take at most this many bytes (8 MiB), which keeps
#: the activations of typical MLPs inside the CPU's last-level cache.
DEFAULT_CHUNK_BYTES = 8 * 2**20


def is_stochastic(module: nn.Module) -> bool:
    """Whether ``module`` is a layer that :func:`sampling` switches on."""
    return isinstance(module, (StochasticModule, *TORCH_DROPOUTS))


@contextmanager
def sampling(model: nn.Module) -> Iterator[nn.Module]:
    """Make ``model``'s stochastic layers sample while everything else stays in eval.

    Inside the block every module is in eval mode (BatchNorm uses and keeps
    its running statistics), bayesdrop's stochastic layers and torch's dropout
    modules (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
    ``FeatureAlphaDropout``) draw noise. Every module's previous ``training``
    flag and sampling state are restored on exit, also when an exception is
    raised.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).train()
    >>> with sampling(net):
    ...     net.training, net[1].training
    (False, True)
    >>> net.training
    True
    """
    modules = list(model.modules())
    saved = [(m, m.training, getattr(m, "sampling", None)) for m in modules]
    try:
        for m in modules:
            m.training = False
            if isinstance(m, StochasticModule):
                m.sampling = True
            elif isinstance(m, TORCH_DROPOUTS):
                m.training = True
        yield model
    finally:
        for m, training, samp in saved:
            m.training = training
            if isinstance(m, StochasticModule):
                m.sampling = bool(samp)


def _draw(model: nn.Module, x: Tensor, num_samples: int, chunk_rows: int) -> Tensor:
    n = x.shape[0]
    total = num_samples * n
    out: Tensor | None = None
    for start in range(0, total, chunk_rows):
        stop = min(start + chunk_rows, total)
        # Row r of the virtual (T * N) tiled batch is example r % N of sample r // N.
        if stop - start == n and start % n == 0:
            rows = x
        elif start % n == 0 and (stop - start) % n == 0:
            rows = x.repeat((stop - start) // n, *([1] * (x.ndim - 1)))
        else:
            rows = x[torch.arange(start, stop, device=x.device) % n]
        y = model(rows)
        if not isinstance(y, Tensor):
            raise TypeError(f"sample() needs a model that returns a Tensor. Got {type(y).__name__} instead.")
        if out is None:
            out = y.new_empty((total, *y.shape[1:]))
        out[start:stop] = y
    assert out is not None
    return out.view(num_samples, n, *out.shape[1:])


def sample(
    model: nn.Module,
    x: Tensor,
    num_samples: int,
    *,
    seed: int | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """Draw ``num_samples`` stochastic forward passes of ``model`` on ``x``.

    The batch is tiled ``num_samples`` times and pushed through in as few
    forward passes as the memory budget allows (``chunk_size`` tiled rows at a
    time), under :func:`sampling`, without an autograd graph. Every row of the
    tiled batch draws its own noise, so samples are independent across
    samples and examples.

    Parameters
    ----------
    model : nn.Module
        Any module with at least one stochastic layer (bayesdrop's layers or
        torch's dropout modules); BatchNorm and other layers stay in eval.
    x : Tensor
        Input batch ``(N, ...)``.
    num_samples : int
        Number of samples T >= 1.
    seed : int, optional
        With a seed the draws are reproducible and torch's global RNG state is
        left as it was; without one they come from the global RNG.
    chunk_size : int, optional
        Rows of the tiled batch per forward pass. By default as many as fit
        :data:`DEFAULT_CHUNK_BYTES` (8 MiB) of input, at least one.

    Returns
    -------
    Tensor
        ``(num_samples, N, ...)``: the model's output shape with a new leading
        sample dimension.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or the model does not return one.
    ValueError
        If ``num_samples`` or ``chunk_size`` is below 1, or the model has no
        stochastic layer.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    >>> sample(net, torch.randn(5, 4), 10, seed=0).shape
    torch.Size([10, 5, 2])
    """
    check_tensor(x, "x", "sample")
    num_samples = check_int(num_samples, "num_samples", "sample")
    if x.ndim == 0:
        raise ValueError("The 'x' parameter of sample must have a batch dimension. Got a 0-d tensor instead.")
    if chunk_size is None:
        row_bytes = max(1, x[0].numel() * x.element_size())
        chunk_size = max(1, DEFAULT_CHUNK_BYTES // row_bytes)
    else:
        chunk_size = check_int(chunk_size, "chunk_size", "sample")
    if not any(is_stochastic(m) for m in model.modules()):
        raise ValueError(
            "sample() needs a model with a stochastic layer (bayesdrop.nn layers or torch's dropout modules); "
            f"{type(model).__name__} has none, so every sample would be the same."
        )
    with torch.no_grad(), sampling(model):
        if seed is None:
            return _draw(model, x, num_samples, chunk_size)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return _draw(model, x, num_samples, chunk_size)
