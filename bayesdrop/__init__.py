"""bayesdrop: Bayesian uncertainty in neural networks built on dropout."""

from . import metrics, nn, plots, report
from .evaluation import Evaluation, evaluate
from .nn import kl_divergence, sparsity, to_variational
from .report import write_report
from .sampling import sample, sampling

__version__ = "0.1.0"

__all__ = [
    "Evaluation",
    "evaluate",
    "kl_divergence",
    "metrics",
    "nn",
    "plots",
    "report",
    "sample",
    "sampling",
    "sparsity",
    "to_variational",
    "write_report",
]
