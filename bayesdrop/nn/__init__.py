"""Stochastic layers of bayesdrop (the math lives in :mod:`bayesdrop.nn.functional`)."""

from . import functional
from ._protocol import StochasticModule
from .concrete import ConcreteDropout
from .depth import DropPath, DropPathJoin, StochasticDepth, linear_decay
from .dropout import Dropout, GaussianDropout, GaussianNoise, SpatialDropout
from .moments import FastDropoutLinear, moment_propagation
from .placement import conv_block, variance_shift
from .pooling import MaxPoolDropout2d
from .variational import (
    VariationalConv,
    VariationalConv2d,
    VariationalLinear,
    kl_divergence,
    sparsity,
    to_variational,
)
from .weight import DropConnectConv, DropConnectLinear

__all__ = [
    "ConcreteDropout",
    "DropConnectConv",
    "DropConnectLinear",
    "DropPath",
    "DropPathJoin",
    "Dropout",
    "FastDropoutLinear",
    "GaussianDropout",
    "GaussianNoise",
    "MaxPoolDropout2d",
    "SpatialDropout",
    "StochasticDepth",
    "StochasticModule",
    "VariationalConv",
    "VariationalConv2d",
    "VariationalLinear",
    "conv_block",
    "functional",
    "kl_divergence",
    "linear_decay",
    "moment_propagation",
    "sparsity",
    "to_variational",
    "variance_shift",
]
