"""Stochastic layers of bayesdrop (the math lives in :mod:`bayesdrop.nn.functional`)."""

from . import functional
from .dropout import Dropout, GaussianDropout
from .variational import (
    VariationalConv,
    VariationalConv2d,
    VariationalLinear,
    kl_divergence,
    sparsity,
    to_variational,
)

__all__ = [
    "Dropout",
    "GaussianDropout",
    "VariationalConv",
    "VariationalConv2d",
    "VariationalLinear",
    "functional",
    "kl_divergence",
    "sparsity",
    "to_variational",
]
