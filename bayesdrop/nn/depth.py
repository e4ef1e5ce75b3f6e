"""Dropping whole residual branches and paths: DropPath, stochastic depth, FractalNet joins.

All of them sample under :func:`bayesdrop.sampling`, so MC over the network's
depth is possible at prediction time.

References
----------
- Huang, Sun, Liu, Sedra & Weinberger 2016, "Deep networks with stochastic
  depth", arXiv:1603.09382 (eq. 2-4; linear decay rule, eq. 4).
- Larsson, Maire & Shakhnarovich 2017, "FractalNet: ultra-deep neural networks
  without residuals", arXiv:1605.07648 (sec. 3.1 drop-path: local and global).
- timm ``layers/drop.py`` (``drop_path`` scaling by 1/(1-p)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_float, check_int, check_probability
from . import functional as BF
from ._protocol import StochasticModule

__all__ = ["DropPath", "DropPathJoin", "StochasticDepth", "linear_decay"]


class DropPath(StochasticModule):
    r"""Drop a residual branch per example, timm's convention.

    - train / sampling: :math:`y_n = x_n b_n / (1 - p)`, :math:`b_n \sim \mathrm{Bernoulli}(1-p)`;
    - eval: :math:`y = x`.

    Parameters
    ----------
    p : float
        Drop probability of each example's branch.

    Notes
    -----
    Shape: input ``(N, *)``; output the same shape.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = check_probability(p, "p", "DropPath")

    def forward(self, x: Tensor) -> Tensor:
        return BF.drop_path(x, self.p) if self.stochastic else x

    def extra_repr(self) -> str:
        return f"p={self.p}"


class StochasticDepth(StochasticModule):
    r"""A residual block whose branch is dropped per example (Huang et al. 2016).

    :math:`y = x + \mathrm{DropPath}_p(f(x))`: in train / sampling the branch
    ``block`` survives with probability 1 - p and is scaled by 1/(1-p); eval
    gives :math:`x + f(x)`, the expectation (Huang et al.'s test rule
    :math:`x + (1-p) f(x)` with the scaling moved to training).

    Parameters
    ----------
    block : nn.Module
        The residual branch f, mapping x to a tensor of the same shape.
    p : float
        Drop probability of the branch.
    """

    def __init__(self, block: nn.Module, p: float = 0.5) -> None:
        super().__init__()
        self.block = block
        self.p = check_probability(p, "p", "StochasticDepth")

    def forward(self, x: Tensor) -> Tensor:
        branch = self.block(x)
        return x + (BF.drop_path(branch, self.p) if self.stochastic else branch)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def linear_decay(num_blocks: int, p_last: float = 0.5) -> list[float]:
    r"""Drop probabilities of Huang et al.'s linear decay rule.

    Survival :math:`p_l = 1 - \frac{l}{L}(1 - p_L)` for blocks l = 1..L, so
    the drop probability is :math:`\frac{l}{L} \cdot` ``p_last`` (``p_last``
    = :math:`1 - p_L` is the last block's drop probability; 0.5 in the paper).

    Parameters
    ----------
    num_blocks : int
        L, the number of residual blocks.
    p_last : float
        The last block's drop probability.

    Returns
    -------
    list of float
        Drop probability of blocks 1..L.

    Examples
    --------
    >>> linear_decay(4, 0.5)
    [0.125, 0.25, 0.375, 0.5]
    """
    num_blocks = check_int(num_blocks, "num_blocks", "linear_decay")
    p_last = check_probability(p_last, "p_last", "linear_decay")
    return [l / num_blocks * p_last for l in range(1, num_blocks + 1)]


class DropPathJoin(StochasticModule):
    r"""FractalNet's join with local and global drop-path (Larsson et al. 2017, sec. 3.1).

    The join is the mean of its incoming paths. Train: with probability
    ``p_global`` a batch uses global drop-path and keeps a single path chosen
    at random (the same for the whole batch); otherwise local drop-path drops
    each path with probability ``p_local`` independently per example, keeping
    at least one. Under sampling every example draws its own mode and paths,
    so that the copies of a tiled MC batch are independent. Eval: the mean of
    all paths.

    Parameters
    ----------
    num_paths : int
        Number of joined paths (at least 2).
    p_local, p_global : float
        Local drop probability (0.15) and probability of a global batch (0.5).

    Notes
    -----
    Shape: input ``(N, num_paths, *)`` (or a sequence of ``num_paths`` tensors of
    shape ``(N, *)``); output ``(N, *)``.
    """

    def __init__(self, num_paths: int, p_local: float = 0.15, p_global: float = 0.5) -> None:
        super().__init__()
        self.num_paths = check_int(num_paths, "num_paths", "DropPathJoin", minimum=2)
        self.p_local = check_probability(p_local, "p_local", "DropPathJoin")
        self.p_global = check_float(p_global, "p_global", "DropPathJoin", low=0.0, high=1.0)

    def _keep(self, n: int, device: torch.device) -> Tensor:
        """Keep mask (n, num_paths) with at least one path per row."""
        # sampling (eval mode): every example on its own; training: one global/local choice per batch
        return BF.drop_path_join_mask(
            n, self.num_paths, self.p_local, self.p_global, per_example=not self.training, device=device
        )

    def forward(self, paths: Tensor | Sequence[Tensor]) -> Tensor:
        x = paths if isinstance(paths, Tensor) else torch.stack(list(paths), 1)
        if x.shape[1] != self.num_paths:
            raise ValueError(f"DropPathJoin expects {self.num_paths} paths on dimension 1. Got {x.shape[1]} instead.")
        if not self.stochastic:
            return x.mean(1)
        keep = self._keep(x.shape[0], x.device).to(x.dtype)
        keep = keep.view(*keep.shape, *([1] * (x.ndim - 2)))
        return (x * keep).sum(1) / keep.sum(1)

    def extra_repr(self) -> str:
        return f"num_paths={self.num_paths}, p_local={self.p_local}, p_global={self.p_global}"
