"""The model file of ``bayesdrop fit``: a fitted estimator as tensors and plain data.

The file is a dict saved with ``torch.save`` and read with
``torch.load(..., weights_only=True)`` (data, never code): ``format``
(``"bayesdrop-model"``), ``version``, ``estimator`` (the class name),
``params`` (``get_params()``), ``n_features_in``, ``state`` (the network's
state dict, standardisation included), ``y_mean``, ``y_std`` and ``classes``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._checkpoint import save_atomic
from .likelihoods import Categorical, Gaussian
from .mlp import Standardized, build_mlp

if TYPE_CHECKING:
    from .sklearn import DropoutClassifier, DropoutRegressor

__all__ = ["FORMAT", "estimator_from_state", "estimator_state", "load_model", "save_model"]

FORMAT, VERSION = "bayesdrop-model", 1


def estimator_state(est: DropoutRegressor | DropoutClassifier) -> dict[str, Any]:
    """Everything needed to rebuild the fitted estimator ``est``, as tensors and plain data.

    Parameters
    ----------
    est : DropoutRegressor or DropoutClassifier
        A fitted estimator.

    Returns
    -------
    dict
        The model file's contents (see the module docstring).
    """
    check_is_fitted(est, "model_")
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in est.get_params().items()}
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    if params.get("device") is not None:
        params["device"] = str(params["device"])  # a torch.device is saved by name
    return {
        "format": FORMAT,
        "version": VERSION,
        "estimator": type(est).__name__,
        "params": params,
        "n_features_in": int(est.n_features_in_),
        "state": est.model_.state_dict(),
        "y_mean": float(est.y_mean_),
        "y_std": float(est.y_std_),
        "classes": [c.item() if hasattr(c, "item") else c for c in getattr(est, "classes_", [])],
    }


def estimator_from_state(state: dict[str, Any]) -> DropoutRegressor | DropoutClassifier:
    """Rebuild a fitted estimator from :func:`estimator_state`'s dictionary.

    Parameters
    ----------
    state : dict
        A model file's contents.

    Returns
    -------
    DropoutRegressor or DropoutClassifier

    Raises
    ------
    ValueError
        If ``state`` is not a complete bayesdrop model.
    """
    from .sklearn import DropoutClassifier, DropoutRegressor

    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError("not a bayesdrop model file (no 'format': 'bayesdrop-model' entry)")
    required = ("estimator", "params", "n_features_in", "y_mean", "y_std", "state", "classes")
    missing = [k for k in required if k not in state]
    if missing:
        raise ValueError(
            f"The 'state' parameter of estimator_from_state is an incomplete bayesdrop model: missing {', '.join(missing)} "
            f"(it needs {', '.join(required)})."
        )
    estimators = {"DropoutRegressor": DropoutRegressor, "DropoutClassifier": DropoutClassifier}
    if state["estimator"] not in estimators:
        raise ValueError(
            "The 'state' parameter of estimator_from_state must name one of 'DropoutRegressor', 'DropoutClassifier'. "
            f"Got {state['estimator']!r} instead."
        )
    cls = estimators[state["estimator"]]
    params = dict(state["params"])
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = cls(**params)
    est.n_features_in_ = state["n_features_in"]
    est.y_mean_, est.y_std_ = state["y_mean"], state["y_std"]
    hidden = est._check_params()  # every saved parameter validated, as fit does
    if cls is DropoutClassifier:
        est.classes_ = np.array(state["classes"])
        lik: Gaussian | Categorical = Categorical()
        n_out = max(len(est.classes_), 2)
    else:
        gaussian = est._likelihood()
        lik, n_out = gaussian, gaussian.num_outputs
    net = build_mlp(est.n_features_in_, hidden, n_out, est.method, est._rate())
    sd = dict(state["state"])
    sd.setdefault("temperature", torch.ones(()))  # files written before temperature scaling
    est.model_ = Standardized(net, lik, sd["x_mean"], sd["x_std"], est.y_mean_, est.y_std_)
    est.model_.load_state_dict(sd)
    est.model_.eval()
    return est


def save_model(est: DropoutRegressor | DropoutClassifier, path: str | os.PathLike[str]) -> None:
    """Write ``est``'s model file atomically (a temporary file renamed over ``path``).

    Parameters
    ----------
    est : DropoutRegressor or DropoutClassifier
        A fitted estimator.
    path : path
        Destination.
    """
    save_atomic(estimator_state(est), path)


def load_model(path: str | os.PathLike[str]) -> tuple[DropoutRegressor | DropoutClassifier, dict[str, Any]]:
    """Load a model file written by ``bayesdrop fit`` or :func:`save_model` (``weights_only=True``).

    Parameters
    ----------
    path : path
        The model file.

    Returns
    -------
    estimator, dict
        The fitted estimator and the file's contents.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a bayesdrop model file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        state = torch.load(p, weights_only=True)
    except Exception as exc:  # unpickling errors of every kind
        raise ValueError(f"{p} is not a bayesdrop model file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{p} is not a bayesdrop model file (no 'format': '{FORMAT}' entry)")
    return estimator_from_state(state), state
