"""Max-pooling dropout (Wu & Gu 2015).

References
----------
Wu & Gu 2015, "Towards dropout training for convolutional neural networks",
Neural Networks 71, arXiv:1512.00242 (sec. 3: max-pooling dropout;
probabilistic weighted pooling, eq. 7-8).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._checks import check_int, check_probability
from . import functional as BF
from ._protocol import StochasticModule

__all__ = ["MaxPoolDropout2d"]


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    for e in t:
        check_int(e, name, "MaxPoolDropout2d")
    return (t[0], t[1])


class MaxPoolDropout2d(StochasticModule):
    r"""Dropout on the units of each pooling region before a 2-D max pool.

    - train / sampling: ``max_pool2d(x * m)`` with :math:`m \sim \mathrm{Bernoulli}(q)`
      per unit, q = 1 - p, no rescaling (a dropped unit is 0);
    - eval: probabilistic weighted pooling, the exact expectation of the
      training output: :math:`\sum_i q p^{n-i} a_{(i)}` over the region's
      activations sorted ascending for non-negative activations (all dropped
      gives 0), and the exact expectation in general
      (:func:`bayesdrop.nn.functional.max_pool_dropout_expectation`).

    Parameters
    ----------
    kernel_size : int or (int, int)
    p : float
        Drop probability of each unit.
    stride : int or (int, int), optional
        ``kernel_size`` by default. No padding.

    Notes
    -----
    Shape: input ``(N, C, H, W)``; output ``(N, C, H_out, W_out)`` as ``max_pool2d``.
    """

    def __init__(
        self, kernel_size: int | tuple[int, int], p: float = 0.5, stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.p = check_probability(p, "p", "MaxPoolDropout2d")

    def forward(self, x: Tensor) -> Tensor:
        if self.stochastic:
            dropped = x.mul(BF.bernoulli_mask(x.shape, self.p, device=x.device)) if self.p > 0 else x
            return F.max_pool2d(dropped, self.kernel_size, self.stride)
        return BF.max_pool_dropout_expectation(x, self.kernel_size, self.stride, self.p)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, p={self.p}, stride={self.stride}"
