"""Fast dropout (Wang & Manning 2013): propagate means and variances instead of sampling.

A unit whose inputs are dropped sums many independent terms, so its
pre-activation is approximately Gaussian. With inverted dropout on the inputs
(keep q = 1 - p, kept inputs scaled by 1/q, alpha = p/q), a linear layer
maps inputs of mean m and variance v (independent units) to

.. math:: E[u] = W m + b, \\quad Var[u] = (W \\odot W)\\,v + \\alpha\\,(W \\odot W)(m^2 + v)

(the paper's :math:`\\sum q w x`, :math:`\\sum q(1-q) w^2 x^2` up to the
1/q scaling). ReLU moments are exact for Gaussian inputs, the sigmoid uses
the probit approximation (:func:`bayesdrop.nn.functional.relu_moments`,
``sigmoid_moments``).

References
----------
Wang & Manning 2013, "Fast dropout training", ICML (sec. 2-4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, check_probability, check_tensor
from . import functional as BF
from ._protocol import StochasticModule
from .dropout import Dropout, GaussianDropout

__all__ = ["FastDropoutLinear", "moment_propagation"]


class FastDropoutLinear(StochasticModule):
    r"""Dropout on the inputs of a linear layer, with a Gaussian pre-activation.

    - train / sampling: :math:`u \sim N(Wx + b, \alpha (W \odot W)(x \odot x))`,
      the Gaussian approximation of ``Linear(Dropout(p)(x))`` drawn per example
      (Wang & Manning 2013, sec. 3.1);
    - eval: :math:`Wx + b`;
    - :meth:`forward_moments` propagates a mean and a variance (used by
      :func:`moment_propagation`).

    Parameters
    ----------
    in_features, out_features, bias
        As in :class:`torch.nn.Linear`.
    p : float
        Drop probability of the inputs.

    Notes
    -----
    Shape: input ``(N, in_features)``; output ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True) -> None:
        super().__init__()
        name = "FastDropoutLinear"
        self.p = check_probability(p, "p", name)
        ref = nn.Linear(
            check_int(in_features, "in_features", name), check_int(out_features, "out_features", name), bias
        )
        self.in_features, self.out_features = in_features, out_features
        self.weight, self.bias = ref.weight, ref.bias

    @property
    def alpha(self) -> float:
        return self.p / (1.0 - self.p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.stochastic or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        return BF.local_reparam_linear(x, self.weight, self.alpha * self.weight**2, self.bias)

    def forward_moments(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the pre-activation for inputs of the given moments.

        Parameters
        ----------
        mean, var : Tensor
            Elementwise mean and variance of the input ``(N, in_features)``.

        Returns
        -------
        mean, var : Tensor
            ``(N, out_features)`` each: ``W m + b`` and
            ``W^2 v + alpha W^2 (m^2 + v)`` (Wang & Manning 2013).
        """
        w2 = self.weight**2
        out_mean = F.linear(mean, self.weight, self.bias)
        out_var = F.linear(var, w2) + self.alpha * F.linear(mean * mean + var, w2)
        return out_mean, out_var

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}"


def _dropout_moments(mean: Tensor, var: Tensor, p: float) -> tuple[Tensor, Tensor]:
    # y = x xi, E xi = 1, Var xi = alpha: E y = m, Var y = v + alpha (m^2 + v)
    alpha = p / (1.0 - p)
    return mean, var + alpha * (mean * mean + var)


def moment_propagation(model: nn.Module, x: Tensor, input_var: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Predictive mean and variance of a dropout network in one deterministic pass.

    Walks an ``nn.Sequential`` of ``nn.Linear``, ``FastDropoutLinear``,
    ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Identity``, and dropout layers
    (bayesdrop's ``Dropout`` without ``shared_dims`` and ``GaussianDropout``,
    torch's ``nn.Dropout``), treating units as independent Gaussians (Wang &
    Manning 2013). Differentiable, so it serves as a training objective
    (:func:`bayesdrop.nn.functional.expected_gaussian_nll` of its output) and
    as a fast alternative to MC sampling.

    Parameters
    ----------
    model : nn.Sequential
    x : Tensor
        Inputs ``(N, in_features)``.
    input_var : Tensor, optional
        Variance of the inputs (0 by default).

    Returns
    -------
    mean, var : Tensor

    Raises
    ------
    TypeError
        For a layer it cannot propagate, naming it.

    Examples
    --------
    >>> net = nn.Sequential(Dropout(0.5), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.fill_(1.0), net[1].bias.fill_(0.0)
    >>> m, v = moment_propagation(net, torch.tensor([[1.0, 2.0]]))
    >>> m.item(), v.item()
    (3.0, 5.0)
    """
    check_tensor(x, "x", "moment_propagation")
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"The 'model' parameter of moment_propagation must be an nn.Sequential. Got {type(model).__name__} instead."
        )
    mean = x
    var = torch.zeros_like(x) if input_var is None else input_var
    for i, layer in enumerate(model):
        if isinstance(layer, FastDropoutLinear):
            mean, var = layer.forward_moments(mean, var)
        elif type(layer) is nn.Linear:
            mean, var = F.linear(mean, layer.weight, layer.bias), F.linear(var, layer.weight**2)
        elif isinstance(layer, (Dropout, GaussianDropout)) and not layer.shared_dims:
            mean, var = _dropout_moments(mean, var, layer.p)
        elif type(layer) is nn.Dropout:
            mean, var = _dropout_moments(mean, var, float(layer.p))
        elif isinstance(layer, nn.ReLU):
            mean, var = BF.relu_moments(mean, var)
        elif isinstance(layer, nn.Sigmoid):
            mean, var = BF.sigmoid_moments(mean, var)
        elif isinstance(layer, nn.Identity):
            continue
        else:
            raise TypeError(
                f"moment_propagation cannot propagate layer {i} ({type(layer).__name__}); supported: Linear, "
                "FastDropoutLinear, ReLU, Sigmoid, Identity, Dropout, GaussianDropout, nn.Dropout."
            )
    return mean, var
