"""Variational dropout: Gaussian weight noise with a learned rate.

The posterior of each weight is :math:`N(\\theta, \\alpha\\theta^2)` and the
prior log-uniform, so the KL depends on alpha only (Kingma et al. 2015).
Three parameterisations of alpha are offered through ``alpha``:

- ``"weight"``: one alpha per weight (sparse variational dropout, Molchanov et
  al. 2017). The additive reparameterisation learns :math:`\\log\\sigma^2`
  and derives :math:`\\log\\alpha = \\log\\sigma^2 - \\log\\theta^2`, clipped to
  [-8, 8]; the forward pass samples pre-activations with the local
  reparameterisation trick, so the gradient does not blow up for large alpha.
- ``"input"``: one alpha per input unit (or input channel): Gaussian dropout on
  the layer's inputs with a learned rate (Kingma et al. 2015, "variational
  dropout A"). ``log_alpha`` is learned directly, clipped to [-8, 8].
- ``"layer"``: one scalar alpha, local reparameterisation of independent weight
  noise (Kingma et al. 2015, "variational dropout B").

In every mode the KL is summed over weights, each weight with its own alpha
(the input's or the layer's where they are tied). The clip never hides NaN:
``torch.clamp`` propagates it, and so does the eval-mode pruning mask.

References
----------
- Kingma, Salimans & Welling 2015, arXiv:1506.02557, sec. 2.3 and 3.
- Molchanov, Ashukha & Vetrov 2017, arXiv:1701.05369, sec. 4.2-4.3 and eq. 14.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float, check_int, check_option, check_spatial_dims
from . import functional as BF
from ._protocol import StochasticModule
from .concrete import ConcreteDropout
from .dropout import Dropout, GaussianDropout
from .functional import KLApproximation
from .placement import CONV_MODULES

__all__ = [
    "VariationalConv",
    "VariationalConv2d",
    "VariationalLinear",
    "kl_divergence",
    "named_variational_layers",
    "sparsity",
    "to_variational",
]

AlphaMode = Literal["weight", "input", "layer"]
ALPHA_MODES: tuple[AlphaMode, ...] = get_args(AlphaMode)
LOG_ALPHA_RANGE = (-8.0, 8.0)


class _Variational(StochasticModule):
    """Shared parameters and rules of the variational layers (private)."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    log_sigma2: nn.Parameter | None
    log_alpha_param: nn.Parameter | None
    noise_parameters = ("log_sigma2", "log_alpha_param")

    def _setup(
        self,
        weight_shape: tuple[int, ...],
        in_units: int,
        bias: bool,
        alpha: str,
        init_log_alpha: float,
        threshold: float,
    ) -> None:
        name = type(self).__name__
        self.alpha_mode = check_option(alpha, "alpha", name, ALPHA_MODES)
        self.threshold = check_float(threshold, "threshold", name)
        init = check_float(init_log_alpha, "init_log_alpha", name, low=LOG_ALPHA_RANGE[0], high=LOG_ALPHA_RANGE[1])
        self.in_units = in_units
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.empty(weight_shape[0])) if bias else None
        # nn.Linear / nn.ConvNd initialisation.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(math.prod(weight_shape[1:]))
            nn.init.uniform_(self.bias, -bound, bound)
        self.log_sigma2 = None
        self.log_alpha_param = None
        if self.alpha_mode == "weight":
            self.log_sigma2 = nn.Parameter(torch.empty(weight_shape))
        else:
            shape = (in_units,) if self.alpha_mode == "input" else ()
            self.log_alpha_param = nn.Parameter(torch.empty(shape))
        self.reset_log_alpha(init)

    @torch.no_grad()
    def reset_log_alpha(self, value: float) -> None:
        """Set every log alpha to ``value`` given the current weights."""
        if self.log_sigma2 is not None:
            self.log_sigma2.copy_(torch.log(self.weight**2 + 1e-16) + value)
        else:
            assert self.log_alpha_param is not None
            self.log_alpha_param.fill_(value)

    @property
    def log_alpha(self) -> Tensor:
        """Log noise variance, clipped to [-8, 8]: weight-, input- or scalar-shaped."""
        if self.log_sigma2 is not None:
            raw = self.log_sigma2 - torch.log(self.weight.square() + 1e-16)
        else:
            assert self.log_alpha_param is not None
            raw = self.log_alpha_param
        return raw.clamp(*LOG_ALPHA_RANGE)

    def weight_log_alpha(self) -> Tensor:
        """``log_alpha`` broadcast to the weight's shape."""
        la = self.log_alpha
        if self.alpha_mode == "input":
            la = la.view((1, -1) + (1,) * (self.weight.ndim - 2))
        return la.expand_as(self.weight)

    def kl(self, approximation: KLApproximation = "molchanov") -> Tensor:
        """KL divergence to the log-uniform prior, summed over weights (nats)."""
        if self.log_sigma2 is not None and approximation == "molchanov":
            return BF.kl_log_uniform_additive(self.weight, self.log_sigma2)
        return BF.kl_log_uniform(self.weight_log_alpha(), approximation).sum()

    def eval_weight(self) -> Tensor:
        """Mean weights with pruned ones (log alpha > threshold) set to zero."""
        la = self.weight_log_alpha()
        keep = torch.where(la > self.threshold, 0.0, 1.0 + 0.0 * la)  # NaN propagates
        return self.weight * keep

    #: The input dimension whose units own an alpha in input mode: features (last) or channels (1).
    _unit_dim = -1

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _noisy(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if not self.stochastic:
            return self._affine(x, self.eval_weight(), self.bias)
        if self.alpha_mode == "input":
            return self._affine(BF.unit_gaussian_dropout(x, self.log_alpha, dim=self._unit_dim), self.weight, self.bias)
        return self._noisy(x)

    def _weight_var(self) -> Tensor:
        if self.log_sigma2 is not None:
            return self.log_sigma2.exp()
        return self.log_alpha.exp() * self.weight**2

    def extra_repr(self) -> str:
        return f"alpha={self.alpha_mode!r}, threshold={self.threshold}, bias={self.bias is not None}"


class VariationalLinear(_Variational):
    r"""Linear layer with variational dropout and a learned noise rate.

    - train / sampling: ``alpha="weight"`` or ``"layer"``: pre-activations drawn
      from :math:`N(x\theta^T + \beta, x^2 (\alpha\theta^2)^T)` (local
      reparameterisation, Kingma et al. 2015 eq. 8); ``alpha="input"``:
      :math:`(x \odot \xi)\theta^T + \beta`, :math:`\xi_i \sim N(1, \alpha_i)`.
    - eval: :math:`x \tilde\theta^T + \beta` with :math:`\tilde\theta` the
      mean weights, those with :math:`\log\alpha >` ``threshold`` set to 0
      (Molchanov et al. 2017, sec. 4.4).

    Parameters
    ----------
    in_features, out_features : int
        Sizes as in :class:`torch.nn.Linear`.
    bias : bool
        Whether to learn a (deterministic) bias.
    alpha : {"weight", "input", "layer"}
        Granularity of the learned noise (see the module docstring).
    init_log_alpha : float
        Initial log alpha, in [-8, 8] (-4 by default).
    threshold : float
        Log alpha above which a weight is pruned at eval (3 by default).

    Notes
    -----
    Shape: input ``(N, *, in_features)``; output ``(N, *, out_features)``.

    Examples
    --------
    >>> import torch
    >>> layer = VariationalLinear(3, 2)
    >>> layer.log_alpha.shape, bool(layer.kl() > 0)
    (torch.Size([2, 3]), True)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        alpha: AlphaMode = "weight",
        init_log_alpha: float = -4.0,
        threshold: float = 3.0,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", "VariationalLinear")
        self.out_features = check_int(out_features, "out_features", "VariationalLinear")
        self._setup((out_features, in_features), in_features, bias, alpha, init_log_alpha, threshold)

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def _noisy(self, x: Tensor) -> Tensor:
        return BF.local_reparam_linear(x, self.weight, self._weight_var(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + super().extra_repr()


def _tuple(value: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


class VariationalConv(_Variational):
    r"""Convolution (1-D, 2-D or 3-D by ``dims``) with variational dropout.

    The same rules as :class:`VariationalLinear` with the convolution in place
    of the matrix product: the output units are drawn from
    :math:`N(\mathrm{conv}(x, \theta) + \beta, \mathrm{conv}(x^2, \sigma^2))`
    (Molchanov et al. 2017, sec. 4.3); ``alpha="input"`` learns one rate per
    input channel. ``VariationalConv2d`` is this class (``dims=2`` by default).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As in :class:`torch.nn.Conv2d`.
    dims : {1, 2, 3}
        Spatial dimensions: conv1d, conv2d or conv3d.
    alpha, init_log_alpha, threshold
        As in :class:`VariationalLinear`.

    Notes
    -----
    Shape: input ``(N, C_in, *spatial)`` with ``dims`` spatial dimensions; output
    ``(N, C_out, *spatial_out)`` as torch's convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        dims: int = 2,
        alpha: AlphaMode = "weight",
        init_log_alpha: float = -4.0,
        threshold: float = 3.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        dims = check_spatial_dims(dims, name)
        self.dims = dims
        self.in_channels = check_int(in_channels, "in_channels", name)
        self.out_channels = check_int(out_channels, "out_channels", name)
        self.groups = check_int(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"The 'groups' parameter of {name} must divide in_channels and out_channels. Got {groups} instead."
            )
        self.kernel_size = _tuple(kernel_size, dims)
        self.stride = _tuple(stride, dims)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, dims)
        self.dilation = _tuple(dilation, dims)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self._setup(shape, in_channels, bias, alpha, init_log_alpha, threshold)

    _unit_dim = 1

    def _conv_kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def weight_log_alpha(self) -> Tensor:
        """Log alpha of every weight, shaped like ``weight``.

        Returns
        -------
        Tensor
            The per-weight, per-input-channel or per-layer log alpha broadcast to
            the weight's shape (grouped convolutions map input channels to groups).
        """
        if self.alpha_mode == "input" and self.groups > 1:
            # weight[:, j] sees input channel (group of the output) * in/groups + j.
            la = self.log_alpha.view(self.groups, 1, -1).expand(-1, self.out_channels // self.groups, -1)
            shape = (self.out_channels, self.in_channels // self.groups) + (1,) * self.dims
            return la.reshape(shape).expand_as(self.weight)
        return super().weight_log_alpha()

    def _affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return BF.CONV_FUNCTIONS[self.dims](x, weight, bias, **self._conv_kwargs())

    def _noisy(self, x: Tensor) -> Tensor:
        return BF.local_reparam_conv(x, self.weight, self._weight_var(), self.bias, **self._conv_kwargs())

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dims={self.dims}, " + super().extra_repr()
        )


VariationalConv2d = VariationalConv


def named_variational_layers(model: nn.Module) -> list[tuple[str, VariationalLinear | VariationalConv]]:
    """The variational layers of ``model`` (``VariationalLinear``, ``VariationalConv``) with their names.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of (str, layer)
        In module order.
    """
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (VariationalLinear, VariationalConv))]


def _variational_layers(model: nn.Module) -> list[_Variational]:
    return [m for _, m in named_variational_layers(model)]


def kl_divergence(model: nn.Module, approximation: KLApproximation = "molchanov") -> Tensor:
    """Sum of the KL terms of every variational and concrete-dropout layer of ``model`` (nats).

    Variational layers contribute their KL to the log-uniform prior
    (``approximation`` applies to them); :class:`ConcreteDropout` layers their
    regulariser (weight prior and Bernoulli entropy). Returns a zero tensor
    for a model with neither.

    Parameters
    ----------
    model : nn.Module
        Any module.
    approximation : {"molchanov", "kingma"}
        The KL approximation (see :func:`bayesdrop.nn.functional.kl_log_uniform`).

    Returns
    -------
    Tensor
        Scalar with an autograd graph.

    Examples
    --------
    >>> model = nn.Sequential(VariationalLinear(2, 3), nn.ReLU(), VariationalLinear(3, 1))
    >>> bool(kl_divergence(model) == model[0].kl() + model[2].kl())
    True
    """
    terms = [
        m.kl(approximation) if isinstance(m, _Variational) else m.kl()
        for m in model.modules()
        if isinstance(m, (_Variational, ConcreteDropout))
    ]
    if not terms:
        p = next(model.parameters(), None)
        return torch.zeros((), device=None if p is None else p.device, dtype=None if p is None else p.dtype)
    return torch.stack(terms).sum()


@torch.no_grad()
def sparsity(model: nn.Module, threshold: float | None = None) -> float:
    """Fraction of variational weights whose log alpha exceeds the pruning threshold.

    Parameters
    ----------
    model : nn.Module
    threshold : float, optional
        By default each layer's own ``threshold`` (the one its eval pass
        prunes with), so the fraction is what eval mode zeroes; a value here
        applies to every layer.

    Returns
    -------
    float
        Pruned weights over all variational weights.

    Raises
    ------
    ValueError
        If ``model`` has no variational layer.
    """
    if threshold is not None:
        threshold = check_float(threshold, "threshold", "sparsity")
    layers = _variational_layers(model)
    if not layers:
        raise ValueError("sparsity() needs a model with variational layers (VariationalLinear, VariationalConv).")
    pruned = sum(
        int((layer.weight_log_alpha() > (layer.threshold if threshold is None else threshold)).sum())
        for layer in layers
    )
    total = sum(layer.weight.numel() for layer in layers)
    return pruned / total


_CONV_DIMS: dict[type[nn.Module], int] = {cls: dims for dims, cls in CONV_MODULES.items()}
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, Dropout, GaussianDropout)


def _convert_layer(layer: nn.Module, p: float, alpha: AlphaMode) -> _Variational:
    new: _Variational
    if type(layer) is nn.Linear:
        new = VariationalLinear(layer.in_features, layer.out_features, layer.bias is not None, alpha=alpha)
    else:
        assert isinstance(layer, nn.modules.conv._ConvNd)  # one of CONV_MODULES
        if layer.padding_mode != "zeros":
            raise ValueError(f"to_variational supports padding_mode='zeros' only. Got {layer.padding_mode!r}.")
        new = VariationalConv(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
            dims=_CONV_DIMS[type(layer)],
            alpha=alpha,
        )
    new.to(layer.weight.device, layer.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(layer.weight)
        if layer.bias is not None and new.bias is not None:
            new.bias.copy_(layer.bias)
    # Gaussian dropout with alpha = p / (1 - p) matches Bernoulli dropout's
    # first two moments (Srivastava et al. 2014, sec. 10).
    new.reset_log_alpha(float(max(min(math.log(p / (1 - p)), LOG_ALPHA_RANGE[1]), LOG_ALPHA_RANGE[0])))
    new.train(layer.training)
    return new


def to_variational(model: nn.Module, *, alpha: AlphaMode = "weight") -> nn.Module:
    """Turn dropout-before-affine pairs of a trained network into variational layers.

    Every element-wise ``Dropout(p)`` (torch's ``nn.Dropout`` or bayesdrop's
    ``Dropout``/``GaussianDropout`` without ``shared_dims``) directly followed by an
    ``nn.Linear`` or ``nn.Conv1d/2d/3d`` inside an ``nn.Sequential`` (at any
    depth) is replaced by ``nn.Identity`` and a variational layer with the
    same weights and log alpha = log(p / (1 - p)) (clipped to [-8, 8]); the
    moments of the pre-activations then match the dropout model's. The input
    is not modified: a converted deep copy is returned.

    Parameters
    ----------
    model : nn.Module
        A network using dropout.
    alpha : {"weight", "input", "layer"}
        Noise granularity of the new layers.

    Returns
    -------
    nn.Module
        The converted copy.

    Raises
    ------
    ValueError
        If no dropout-affine pair with p > 0 is found, or a pair's dropout
        drops whole channels (``nn.Dropout1d/2d/3d``, ``shared_dims``): its
        correlated mask has no per-element variational equivalent.

    Examples
    --------
    >>> net = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 2))
    >>> vnet = to_variational(net)
    >>> type(vnet[1]).__name__, round(float(vnet[1].log_alpha.detach().mean()), 4)
    ('VariationalLinear', 0.0)
    """
    check_option(alpha, "alpha", "to_variational", ALPHA_MODES)
    model = copy.deepcopy(model)
    converted = 0
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in itertools.pairwise(names):
            drop, layer = container._modules[first], container._modules[second]
            if isinstance(drop, _DROPOUTS) and type(layer) in (nn.Linear, *_CONV_DIMS) and float(drop.p) > 0:
                if isinstance(drop, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)) or bool(
                    getattr(drop, "shared_dims", None)
                ):
                    raise ValueError(
                        f"to_variational cannot convert {first!r} ({drop!r}): it drops whole channels (one mask "
                        "shared over positions), while a variational layer's noise is independent per element, so "
                        "the moments would not match. Replace it with element-wise dropout first, or keep it."
                    )
                container._modules[second] = _convert_layer(layer, float(drop.p), alpha)
                container._modules[first] = nn.Identity()
                converted += 1
    if converted == 0:
        raise ValueError(
            "to_variational found no dropout layer (p > 0) directly followed by nn.Linear or nn.Conv1d/2d/3d "
            "inside an nn.Sequential; nothing to convert."
        )
    return model
