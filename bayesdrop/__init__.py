"""bayesdrop: Bayesian uncertainty in neural networks built on dropout."""

from . import nn
from .nn import kl_divergence, sparsity, to_variational
from .sampling import sample, sampling

__version__ = "0.1.0"

__all__ = [
    "kl_divergence",
    "nn",
    "sample",
    "sampling",
    "sparsity",
    "to_variational",
]
