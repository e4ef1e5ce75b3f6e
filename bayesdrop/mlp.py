"""The multilayer perceptron behind the estimators and the UCI benchmark.

``method`` picks the noise before every linear layer (input included):
``"variational"`` (sparse variational dropout, a learned alpha per weight;
Molchanov et al. 2017, arXiv:1701.05369), ``"mc"`` (Bernoulli dropout at a
fixed rate; Gal & Ghahramani 2016, arXiv:1506.02142), ``"gaussian"``
(multiplicative N(1, p/(1-p)); Srivastava et al. 2014, sec. 10) and
``"concrete"`` (a learned Bernoulli rate per layer; Gal, Hron & Kendall 2017,
arXiv:1705.07832). :class:`Standardized` wraps a network trained on
standardised data so that it takes and returns raw units.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from .likelihoods import Gaussian
from .nn import ConcreteDropout, Dropout, GaussianDropout, VariationalLinear
from .nn.variational import AlphaMode

__all__ = ["METHODS", "SCALINGS", "Standardized", "build_mlp", "one_scale", "standardization"]

Method = Literal["variational", "mc", "gaussian", "concrete"]
Scaling = Literal["column", "global", "auto"]
#: How :func:`standardization` scales the columns of a matrix.
SCALINGS: tuple[str, ...] = get_args(Scaling)
#: Every noise :func:`build_mlp` knows, in the order tables list them.
METHODS: tuple[Method, ...] = get_args(Method)


def build_mlp(
    n_in: int,
    hidden: tuple[int, ...],
    n_out: int,
    method: Method,
    p: float,
    *,
    alpha: AlphaMode = "weight",
    lengthscale: float = 1e-2,
    min_p: float = 0.0,
) -> nn.Sequential:
    """The estimators' network: ReLU MLP with noise before every linear layer.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden : tuple of int
        Hidden widths.
    method : {"variational", "mc", "gaussian", "concrete"}
        The noise (see the module docstring).
    p : float
        The dropout rate (the initial one for "variational" and "concrete").
    alpha : {"weight", "input", "layer"}
        The alpha of the variational layers (see :class:`bayesdrop.nn.VariationalLinear`).
    lengthscale : float
        The weight prior's length-scale of the concrete-dropout layers (see
        :class:`bayesdrop.nn.ConcreteDropout`).
    min_p : float
        The floor under the learned rates of "concrete" (see
        :class:`bayesdrop.nn.ConcreteDropout`), below ``p``.

    Returns
    -------
    nn.Sequential
    """
    layers: list[nn.Module] = []
    sizes = [n_in, *hidden]
    for i, width in enumerate([*hidden, n_out]):
        if method == "variational":
            layers.append(
                VariationalLinear(
                    sizes[i],
                    width,
                    alpha=alpha,
                    init_log_alpha=max(math.log(p / (1 - p)), -8.0) if p > 0 else -8.0,
                )
            )
        elif method == "concrete":
            layers.append(
                ConcreteDropout(nn.Linear(sizes[i], width), init_p=max(p, 1e-3), lengthscale=lengthscale, min_p=min_p)
            )
        else:
            layers.append(Dropout(p) if method == "mc" else GaussianDropout(p))
            layers.append(nn.Linear(sizes[i], width))
        if i < len(hidden):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Standardized(nn.Module):
    """Raw inputs -> network -> raw-unit predictive parameters.

    Regression: ``(N, 2)`` means and log-variances in the target's units;
    classification: logits. The buffer ``temperature`` (1 until an estimator
    fits it on validation data) divides the logits, or multiplies the noise
    standard deviation of a regressor.

    Parameters
    ----------
    net : nn.Module
        The network trained on standardised inputs (and targets).
    likelihood : nn.Module
        Its likelihood; a ``Gaussian``'s outputs are mapped back to the target's units.
    x_mean, x_std : Tensor
        The inputs' standardisation.
    y_mean, y_std : float
        The target's standardisation (0 and 1 for a classifier).
    """

    def __init__(
        self, net: nn.Module, likelihood: nn.Module, x_mean: Tensor, x_std: Tensor, y_mean: float, y_std: float
    ) -> None:
        super().__init__()
        self.net = net
        self.likelihood = likelihood
        self.register_buffer("x_mean", x_mean)
        self.register_buffer("x_std", x_std)
        self.register_buffer("temperature", torch.ones((), dtype=x_std.dtype))
        self.y_mean, self.y_std = y_mean, y_std

    x_mean: Tensor
    x_std: Tensor
    temperature: Tensor

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net((x - self.x_mean) / self.x_std)
        if isinstance(self.likelihood, Gaussian):
            mean, log_var = self.likelihood.split(out)
            log_var = log_var + 2 * (math.log(self.y_std) + self.temperature.log())
            return torch.cat([mean * self.y_std + self.y_mean, log_var], -1)
        return out / self.temperature


def standardization(
    ref: npt.ArrayLike, scaling: Scaling = "column"
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Column means and standard deviations (ddof 0) of ``ref``; a constant column gets std 1.

    Parameters
    ----------
    ref : array (N, D) or (N,)
        The data the statistics come from (a training split).
    scaling : {"column", "global", "auto"}
        For a matrix: each column's own standard deviation (``"column"``), or
        one deviation pooled over every column about its own mean for all of
        them (``"global"``: for features in one unit such as pixels, where a
        column that is almost constant in ``ref`` would otherwise get a tiny
        deviation), or ``"global"`` when :func:`one_scale` says the columns
        share one scale and ``"column"`` otherwise (``"auto"``). A vector
        always gets its own.

    Returns
    -------
    mean, std : arrays (D,) or scalars
        ``(x - mean) / std`` standardises ``x`` on ``ref``'s scale.

    Examples
    --------
    >>> standardization([[0.0, 1.0], [2.0, 1.0]])
    (array([1., 1.]), array([1., 1.]))
    >>> standardization([[0.0, 1.0], [2.0, 1.0]], "global")[1]  # sqrt((1 + 1 + 0 + 0) / 4)
    array([0.70710678, 0.70710678])
    """
    a = np.asarray(ref, dtype=np.float64)
    mean, std = a.mean(0), a.std(0)
    if a.ndim == 2 and (scaling == "global" or (scaling == "auto" and one_scale(a))):
        pooled = float(np.sqrt(np.mean((a - mean) ** 2)))
        std = np.full_like(std, pooled)
    return mean, np.where(std > 0, std, 1.0)


def one_scale(ref: npt.ArrayLike) -> bool:
    """Whether the columns of ``ref`` share one scale: every value lies in a range at most twice the median column's.

    Pixels (all in [0, 1], or [0, 16] for scikit-learn's digits) share one;
    tabular features in different units (an area in the hundreds beside a
    ratio below 1) do not.

    Parameters
    ----------
    ref : array (N, D)
        The data (a training split).

    Returns
    -------
    bool
        True when the whole range of ``ref`` is at most twice the median of its columns' ranges.

    Examples
    --------
    >>> one_scale([[0.0, 0.0, 1.0], [1.0, 0.1, 0.0]]), one_scale([[0.0, 500.0], [1.0, 900.0]])
    (True, False)
    """
    a = np.asarray(ref, dtype=np.float64)
    ranges = a.max(0) - a.min(0)
    median = float(np.median(ranges))
    return median > 0 and float(a.max() - a.min()) <= 2 * median
