"""DropConnect (Wan et al. 2013): Bernoulli noise on the weights.

Training and sampling draw a fresh mask on every weight for every example
(so that the copies of a tiled MC batch get different masks; a single mask
per forward would make every sample of a batch identical). Two inference
rules, chosen by ``inference``:

- ``"weight_scaling"``: eval output :math:`a(q W x + b)`, the keep-probability
  scaled mean weights (exact for the pre-activation's mean).
- ``"moment_matching"``: Wan et al.'s Gaussian inference (sec. 3.2): the
  pre-activation is approximated by :math:`u \\sim N(q W x, q(1-q) (W \\odot W)
  (x \\odot x))`, the activation is applied to ``num_inference_samples`` draws
  of u (plus the bias) and averaged. Deterministic given the layer's
  ``inference_seed``.

References
----------
Wan, Zeiler, Zhang, LeCun & Fergus 2013, "Regularization of neural networks
using DropConnect", ICML (eq. 1-2, sec. 3.2 inference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, check_option, check_probability, check_spatial_dims
from . import functional as BF
from ._protocol import StochasticModule

__all__ = ["DropConnectConv", "DropConnectLinear"]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda t: t,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}
Inference = Literal["weight_scaling", "moment_matching"]
Activation = Literal["identity", "relu", "sigmoid", "tanh"]
INFERENCE: tuple[Inference, ...] = get_args(Inference)


class _DropConnect(StochasticModule):
    weight: Tensor
    bias: Tensor | None

    def _setup(
        self, p: float, activation: str, inference: str, num_inference_samples: int, inference_seed: int
    ) -> None:
        name = type(self).__name__
        self.p = check_probability(p, "p", name)
        self.activation = check_option(activation, "activation", name, tuple(_ACTIVATIONS))
        self.inference = check_option(inference, "inference", name, INFERENCE)
        self.num_inference_samples = check_int(num_inference_samples, "num_inference_samples", name)
        self.inference_seed = inference_seed

    def _act(self, t: Tensor) -> Tensor:
        return _ACTIVATIONS[self.activation](t)

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _masked(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if self.stochastic:
            return self._act(self._masked(x))
        q = 1.0 - self.p
        if self.inference == "weight_scaling" or self.p == 0.0:
            return self._act(self._affine(x, q * self.weight, self.bias))
        mean = self._affine(x, q * self.weight, None)
        var = self._affine(x * x, q * (1 - q) * self.weight**2, None)
        gen = torch.Generator(device=x.device).manual_seed(self.inference_seed)
        return BF.drop_connect_moment_matching(
            x, mean, var, self.bias, self._act, num_samples=self.num_inference_samples, generator=gen
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, activation={self.activation!r}, inference={self.inference!r}"


class DropConnectLinear(_DropConnect):
    r"""Linear layer with DropConnect and a selectable inference rule.

    - train / sampling: :math:`a((W \odot M_n) x_n + b)`, a fresh mask per example;
    - eval: weight scaling :math:`a(q W x + b)` or moment matching (module docstring).

    Parameters
    ----------
    in_features, out_features, bias
        As in :class:`torch.nn.Linear`.
    p : float
        Drop probability of each weight (q = 1 - p keeps).
    activation : {"identity", "relu", "sigmoid", "tanh"}
        Nonlinearity applied inside the layer (moment matching averages it
        over the Gaussian pre-activation).
    inference : {"weight_scaling", "moment_matching"}
    num_inference_samples : int
        Draws of the pre-activation for moment matching (100).
    inference_seed : int
        Seed of those draws, so that eval mode is deterministic.

    Notes
    -----
    Shape: input ``(N, in_features)``; output ``(N, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        *,
        activation: Activation = "identity",
        inference: Inference = "weight_scaling",
        num_inference_samples: int = 100,
        inference_seed: int = 0,
    ) -> None:
        super().__init__()
        ref = nn.Linear(
            check_int(in_features, "in_features", "DropConnectLinear"),
            check_int(out_features, "out_features", "DropConnectLinear"),
            bias,
        )
        self.in_features, self.out_features = in_features, out_features
        self.weight, self.bias = ref.weight, ref.bias
        self._setup(p, activation, inference, num_inference_samples, inference_seed)

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def _masked(self, x: Tensor) -> Tensor:
        return BF.drop_connect_linear(x, self.weight, self.bias, self.p)


class DropConnectConv(_DropConnect):
    """Convolution (1-, 2- or 3-D by ``dims``) with DropConnect; rules as :class:`DropConnectLinear`.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, bias
        As in :class:`torch.nn.Conv2d` (groups are not supported).
    dims : {1, 2, 3}
    p, activation, inference, num_inference_samples, inference_seed
        As in :class:`DropConnectLinear`.
    """

    # size: the arguments of torch's nn.Conv*d plus DropConnect's own, so that a conv layer swaps in by name.
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        p: float = 0.5,
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        bias: bool = True,
        *,
        dims: int = 2,
        activation: Activation = "identity",
        inference: Inference = "weight_scaling",
        num_inference_samples: int = 100,
        inference_seed: int = 0,
    ) -> None:
        super().__init__()
        dims = check_spatial_dims(dims, "DropConnectConv")
        cls: Any = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        ref = cls(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self.weight, self.bias = ref.weight, ref.bias
        self.stride, self.padding, self.dilation = ref.stride, ref.padding, ref.dilation
        self.dims = dims
        self._setup(p, activation, inference, num_inference_samples, inference_seed)

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        conv = BF.CONV_FUNCTIONS[self.dims]
        return conv(x, weight, bias, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def _masked(self, x: Tensor) -> Tensor:
        return BF.drop_connect_conv(
            x,
            self.weight,
            self.bias,
            self.p,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )
