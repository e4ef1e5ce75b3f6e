"""Concrete dropout: Bernoulli dropout whose rate is learned through a relaxed mask.

Dropout with rate p on the inputs of a linear (or convolutional) layer is a
variational distribution over that layer's weight matrix: each row of
:math:`M` is kept or zeroed together. Its KL to the prior
:math:`N(0, l^{-2})` on the weights is, up to a constant (Gal, Hron & Kendall
2017, eq. 3),

.. math:: \\mathrm{KL} \\approx \\frac{l^2 (1-p)}{2} \\|M\\|^2 - K\\,\\mathcal{H}(p),

with :math:`K` the number of dropped units and :math:`\\mathcal{H}` the
Bernoulli entropy. With inverted dropout the stored weight is
:math:`W = (1-p) M`, so the first term reads :math:`l^2 \\|W\\|^2 / (2(1-p))`
(the bias, never dropped, adds :math:`l^2 \\|b\\|^2 / 2`). Gradients reach p
through the concrete relaxation of the Bernoulli mask (eq. 5): with
:math:`u \\sim U(0, 1)` and temperature t,

.. math:: \\tilde z = \\sigma\\Big(\\tfrac{1}{t}\\big(\\log p - \\log(1-p) + \\log u - \\log(1-u)\\big)\\Big)

is a relaxed "drop" indicator, and the input is multiplied by
:math:`(1 - \\tilde z) / (1 - p)`.

References
----------
- Gal, Hron & Kendall 2017, "Concrete Dropout", arXiv:1705.07832, sec. 3-4.
- Maddison et al. 2017 / Jang et al. 2017 (the concrete relaxation).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_float, check_probability
from . import functional as BF
from ._protocol import StochasticModule

__all__ = ["ConcreteDropout"]

_EPS = 1e-7


class ConcreteDropout(StochasticModule):
    r"""Dropout on the inputs of ``layer`` with a learned rate p (concrete dropout).

    Modes (the protocol of every bayesdrop layer):

    - train: the relaxed mask :math:`(1 - \tilde z)/(1 - p)` (differentiable in p);
    - sampling (``bayesdrop.sampling``, so ``sample`` and ``evaluate``): hard
      Bernoulli masks with the learned rate, ``m / (1 - p)``;
    - eval: weight scaling, which for inverted dropout is ``layer(x)``.

    Its :meth:`kl` (the regulariser) enters the loss of :func:`bayesdrop.fit`
    through :func:`bayesdrop.kl_divergence`, divided by the dataset size like
    every KL of the ELBO.

    Parameters
    ----------
    layer : nn.Linear or nn.Conv1d / Conv2d / Conv3d
        The layer whose inputs are dropped: the features of a linear layer,
        whole input channels of a convolution (spatial dropout).
    init_p : float
        Initial drop probability in (0, 1), 0.1 by default (Gal et al.).
    temperature : float
        Temperature t > 0 of the relaxation, 0.1 by default (Gal et al.).
    lengthscale : float
        Prior length-scale l >= 0: the weights' prior is :math:`N(0, l^{-2})`;
        0 leaves only the entropy term.
    min_p : float
        A floor under the learned rate, in [0, ``init_p``), 0 by default (Gal
        et al.). It is a projection: every training forward first moves a
        logit that an optimiser step took below the floor back onto it, so
        above the floor the rate learns exactly as without one, and at the
        floor it rises again as soon as the gradient says so. The
        regulariser's entropy term is divided by the dataset size, so with
        much data the learned rate falls towards 0 and the network fits the
        training set (``benchmarks/learned_noise.md``); a floor keeps the
        noise of a dropout network of that rate.

    Notes
    -----
    Shape: as ``layer``.

    Examples
    --------
    >>> import torch, bayesdrop
    >>> layer = ConcreteDropout(torch.nn.Linear(4, 2), init_p=0.2)
    >>> round(float(layer.p.detach()), 3)
    0.2
    >>> bayesdrop.sample(layer, torch.randn(3, 4), 5, seed=0).shape
    torch.Size([5, 3, 2])
    """

    noise_parameters = ("p_logit",)

    def __init__(
        self,
        layer: nn.Module,
        init_p: float = 0.1,
        *,
        temperature: float = 0.1,
        lengthscale: float = 1e-2,
        min_p: float = 0.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
            raise TypeError(
                f"The 'layer' parameter of {name} must be an nn.Linear or nn.Conv1d/2d/3d (the layer whose inputs "
                f"are dropped). Got {type(layer).__name__} instead."
            )
        init_p = check_probability(init_p, "init_p", name)
        if init_p <= 0.0:
            raise ValueError(f"The 'init_p' parameter of {name} must be a float in (0, 1). Got {init_p!r} instead.")
        self.temperature = check_float(temperature, "temperature", name, low=0.0, low_open=True)
        self.lengthscale = check_float(lengthscale, "lengthscale", name, low=0.0)
        self.min_p = check_float(min_p, "min_p", name, low=0.0, high=init_p, high_open=True)  # below init_p
        self.layer = layer
        self._min_logit = math.log(self.min_p) - math.log1p(-self.min_p) if self.min_p > 0 else -math.inf
        self.p_logit = nn.Parameter(torch.tensor(math.log(init_p) - math.log1p(-init_p)))

    @property
    def p(self) -> Tensor:
        """The learned drop probability, ``sigmoid(p_logit)`` held at ``min_p`` or above (a scalar tensor with a
        graph)."""
        return torch.sigmoid(self.p_logit.clamp(min=self._min_logit))

    @property
    def units(self) -> int:
        """K: the number of dropped units (input features or input channels)."""
        layer = self.layer
        return int(layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels)

    def _shared_dims(self, x: Tensor) -> tuple[int, ...]:
        if isinstance(self.layer, nn.Linear):
            return ()
        return tuple(range(2, x.ndim))  # whole channels of (N, C, *spatial)

    def relaxed_mask(self, x: Tensor) -> Tensor:
        """The concrete keep mask times 1/(1 - p), broadcastable to ``x`` (differentiable in p).

        Parameters
        ----------
        x : Tensor
            The layer's input ``(N, features)`` or ``(N, C, *spatial)``; a
            convolution's mask covers whole channels.

        Returns
        -------
        Tensor
            The relaxed mask at the layer's ``temperature``.
        """
        return BF.relaxed_keep_mask(x, self.p, self.temperature, shared_dims=self._shared_dims(x))

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.min_p > 0:
            with torch.no_grad():  # project the last optimiser step back onto the floor (box-constrained descent)
                self.p_logit.clamp_(min=self._min_logit)
        if self.sampling:
            x = BF.dropout(x, float(self.p.detach()), shared_dims=self._shared_dims(x))
        elif self.training:
            x = x * self.relaxed_mask(x)
        out: Tensor = self.layer(x)
        return out

    def kl(self) -> Tensor:
        r"""The regulariser :math:`l^2\|W\|^2/(2(1-p)) + l^2\|b\|^2/2 - K\,\mathcal{H}(p)` (nats, up to a constant).

        Returns
        -------
        Tensor
            A scalar; :func:`bayesdrop.kl_divergence` sums it over the model's
            layers (Gal, Hron & Kendall 2017, eq. 3).
        """
        p = self.p
        l2 = self.lengthscale**2
        weight = self.layer.weight
        kl = l2 * weight.square().sum() / (2 * (1 - p))
        bias = getattr(self.layer, "bias", None)
        if bias is not None:
            kl = kl + l2 * bias.square().sum() / 2
        entropy = -(p * torch.log(p + _EPS) + (1 - p) * torch.log1p(-p + _EPS))
        return kl - self.units * entropy

    def extra_repr(self) -> str:
        floor = f", min_p={self.min_p}" if self.min_p else ""
        return f"p={float(self.p.detach()):.4g}, temperature={self.temperature}, lengthscale={self.lengthscale}{floor}"
