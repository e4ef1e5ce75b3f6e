"""Unit noise: Bernoulli, Gaussian and spatial dropout.

References
----------
- Hinton et al. 2012, arXiv:1207.0580; Srivastava et al. 2014, JMLR 15
  (Bernoulli dropout; Gaussian dropout in sec. 10).
- Tompson et al. 2015, "Efficient object localization using convolutional
  networks", arXiv:1411.4280 (spatial dropout: whole feature maps).
- Gal & Ghahramani 2016b, arXiv:1512.05287 (one mask across time steps).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from .._checks import check_dims, check_float, check_probability, check_spatial_dims
from . import functional as BF
from ._protocol import StochasticModule

__all__ = ["Dropout", "GaussianDropout", "GaussianNoise", "SpatialDropout"]


class _UnitNoise(StochasticModule):
    def __init__(self, p: float = 0.5, *, shared_dims: Sequence[int] = ()) -> None:
        super().__init__()
        name = type(self).__name__
        self.p = check_probability(p, "p", name)
        self.shared_dims = check_dims(shared_dims, "shared_dims", name)

    def extra_repr(self) -> str:
        extra = f", shared_dims={self.shared_dims}" if self.shared_dims else ""
        return f"p={self.p}{extra}"


class Dropout(_UnitNoise):
    r"""Inverted Bernoulli dropout that also samples under ``bayesdrop.sampling``.

    A drop-in for :class:`torch.nn.Dropout`:

    - train / sampling: :math:`y = x \odot m / (1-p)`, :math:`m_i \sim
      \mathrm{Bernoulli}(1-p)`;
    - eval: :math:`y = E[y] = x`.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).
    shared_dims : tuple of int
        Dimensions sharing one mask value: ``(2, 3)`` on ``(N, C, H, W)`` is
        spatial dropout (whole feature maps, Tompson et al. 2015), ``(2,)``
        on ``(N, C, L)`` and ``(2, 3, 4)`` on ``(N, C, D, H, W)`` its 1-D
        and 3-D forms; ``(1,)`` on ``(N, T, F)`` keeps one mask across time
        steps (Gal & Ghahramani 2016b).

    Notes
    -----
    Shape: input ``(N, *)``; output the same shape.

    Examples
    --------
    >>> import torch
    >>> layer = Dropout(0.5).eval()
    >>> bool((layer(torch.ones(3)) == 1).all())
    True
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.stochastic:
            return x
        return BF.dropout(x, self.p, shared_dims=self.shared_dims)


class GaussianDropout(_UnitNoise):
    r"""Multiplicative Gaussian noise :math:`N(1, \alpha)`, :math:`\alpha = p/(1-p)`.

    Srivastava et al. 2014, sec. 10: the same mean and variance as Bernoulli
    dropout with rate ``p``.

    - train / sampling: :math:`y = x \odot \xi`, :math:`\xi_i \sim N(1, \alpha)`;
    - eval: :math:`y = x`.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1) that sets :math:`\alpha`.
    shared_dims : tuple of int
        As in :class:`Dropout`.

    Notes
    -----
    Shape: input ``(N, *)``; output the same shape.
    """

    @property
    def alpha(self) -> float:
        """Variance of the multiplicative noise, ``p / (1 - p)``."""
        return self.p / (1.0 - self.p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.stochastic:
            return x
        return BF.gaussian_dropout(x, self.p, shared_dims=self.shared_dims)


def SpatialDropout(p: float = 0.5, dims: int = 2) -> Dropout:
    """Spatial dropout (Tompson et al. 2015): ``Dropout(p, shared_dims=(2, ..., dims + 1))``.

    Whole feature maps of ``(N, C, *spatial)`` inputs with ``dims`` spatial
    dimensions are dropped together and the kept ones scaled by 1/(1-p).

    Parameters
    ----------
    p : float
        Drop probability of each feature map.
    dims : int
        1, 2 or 3 spatial dimensions.

    Returns
    -------
    Dropout
        With ``shared_dims`` over the spatial dimensions.

    Examples
    --------
    >>> SpatialDropout(0.2, dims=3)
    Dropout(p=0.2, shared_dims=(2, 3, 4))
    """
    dims = check_spatial_dims(dims, "SpatialDropout")
    return Dropout(p, shared_dims=tuple(range(2, 2 + dims)))


class GaussianNoise(StochasticModule):
    r"""Additive Gaussian input noise :math:`x + \epsilon`, :math:`\epsilon \sim N(0, \mathrm{std}^2)`.

    Bishop 1995 ("Training with noise is equivalent to Tikhonov
    regularization", Neural Computation 7): for a linear model trained with the
    squared loss summed over N examples, additive noise of variance
    :math:`s^2` matches ridge regression with penalty :math:`N s^2`.

    - train / sampling: :math:`x + \epsilon`; eval: :math:`x` (the expectation).

    Parameters
    ----------
    std : float
        Standard deviation of the additive noise (>= 0).

    Notes
    -----
    Shape: input ``(N, *)``; output the same shape.
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = check_float(std, "std", "GaussianNoise", low=0.0)

    def forward(self, x: Tensor) -> Tensor:
        return BF.gaussian_noise(x, self.std) if self.stochastic else x

    def extra_repr(self) -> str:
        return f"std={self.std}"
