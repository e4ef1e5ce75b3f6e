"""bayesdrop: Bayesian uncertainty in neural networks built on dropout."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import diagnostics, likelihoods, metrics, nn, plots, report
from ._compat import install_moved_modules
from .evaluation import Evaluation, evaluate
from .likelihoods import Categorical, Gaussian
from .montecarlo import sample, sampling
from .nn import kl_divergence, moment_propagation, sparsity, to_variational, variance_shift
from .report import write_report
from .training import History, elbo_loss, fit, noise_parameters

try:  # the version lives in pyproject.toml only; the installed metadata carries it
    __version__ = _version("bayesdrop")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

install_moved_modules()

__all__ = [
    "Categorical",
    "Evaluation",
    "Gaussian",
    "History",
    "diagnostics",
    "elbo_loss",
    "evaluate",
    "fit",
    "kl_divergence",
    "likelihoods",
    "metrics",
    "moment_propagation",
    "nn",
    "noise_parameters",
    "plots",
    "report",
    "sample",
    "sampling",
    "sparsity",
    "to_variational",
    "variance_shift",
    "write_report",
]
