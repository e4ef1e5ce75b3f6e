"""Where dropout goes relative to BatchNorm, and a diagnostic of the variance shift.

Dropout placed before a BatchNorm layer changes the variance that BatchNorm
sees between training (dropout on, scaled by 1/(1-p)) and inference (dropout
off), so the running variance no longer matches the test-time statistics:
the "variance shift" of Li et al. 2019. Cai et al. 2019 recommend applying
dropout right before the convolution, after the BatchNorm and ReLU of the
block (``conv_block``).

References
----------
- Li, Chen, Hu & Yang 2019, "Understanding the disharmony between dropout and
  batch normalization by variance shift", arXiv:1801.05134.
- Cai et al. 2019, "Effective and efficient dropout for deep convolutional
  neural networks", arXiv:1904.03392 (BN -> ReLU -> Dropout -> Conv).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_int, check_spatial_dims, check_tensor
from ._protocol import deterministic
from .dropout import Dropout

__all__ = ["conv_block", "variance_shift"]

_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
#: torch's convolution module of each number of spatial dimensions.
CONV_MODULES: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conv_block(
    in_channels: int,
    out_channels: int,
    p: float,
    kernel_size: int = 3,
    *,
    padding: int | str = "same",
    dims: int = 2,
    spatial: bool = False,
    **conv_kwargs: Any,
) -> nn.Sequential:
    """Cai et al. 2019's block: ``BatchNorm -> ReLU -> Dropout(p) -> Conv``.

    The dropout sits right before the convolution, after the BatchNorm and the
    ReLU that normalise the previous block's output; ``spatial=True`` drops
    whole feature maps.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the convolution.
    p : float
        Dropout rate.
    kernel_size : int
        Kernel size of the convolution.
    padding : int or str
        Its padding (``"same"`` by default).
    dims : int
        1, 2 or 3 spatial dimensions.
    spatial : bool
        Drop whole feature maps (spatial dropout).
    **conv_kwargs
        Passed on to the convolution.

    Returns
    -------
    nn.Sequential
        BatchNorm, ReLU, Dropout, Conv.

    Examples
    --------
    >>> [type(m).__name__ for m in conv_block(3, 8, 0.1)]
    ['BatchNorm2d', 'ReLU', 'Dropout', 'Conv2d']
    """
    dims = check_spatial_dims(dims, "conv_block")
    check_int(in_channels, "in_channels", "conv_block")
    check_int(out_channels, "out_channels", "conv_block")
    shared = tuple(range(2, 2 + dims)) if spatial else ()
    return nn.Sequential(
        _BN[dims](in_channels),
        nn.ReLU(),
        Dropout(p, shared_dims=shared),
        CONV_MODULES[dims](in_channels, out_channels, kernel_size, padding=padding, **conv_kwargs),
    )


@torch.no_grad()
def variance_shift(model: nn.Module, x: Tensor) -> dict[str, float]:
    r"""Shift between each BatchNorm's running variance and the variance it sees in eval mode.

    Runs ``model`` in eval mode on ``x`` and, for every BatchNorm layer, takes
    the per-channel variance of its input over the batch (and spatial
    positions); returns :math:`\mathrm{mean}_c(\mathrm{running\_var}_c /
    \mathrm{eval\_var}_c) - 1` per layer name. 0 means the running statistics
    match inference; dropout right before a BatchNorm makes it positive, as
    the running variance was collected with the dropout noise (Li et al.
    2019). Train the model (or run it in train mode on data) first so that the
    running statistics are meaningful. The model's mode is restored.

    Parameters
    ----------
    model : nn.Module
        A trained model with BatchNorm layers.
    x : Tensor
        A batch of inputs.

    Returns
    -------
    dict of str to float
        One shift per BatchNorm layer, by module name.
    """
    check_tensor(x, "x", "variance_shift")
    seen: dict[str, Tensor] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:

            def hook(mod: nn.Module, inputs: tuple[Tensor, ...], _out: Tensor, name: str = name) -> None:
                t = inputs[0].transpose(0, 1).flatten(1)
                seen[name] = t.var(1, unbiased=False)

            hooks.append(m.register_forward_hook(hook))
    if not hooks:
        raise ValueError("variance_shift needs a model with BatchNorm layers that track running statistics.")
    try:
        with deterministic(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    out = {}
    for name, var in seen.items():
        running = modules[name].running_var
        assert isinstance(running, Tensor)
        out[name] = float((running / var.clamp_min(1e-12)).mean() - 1.0)
    return out
