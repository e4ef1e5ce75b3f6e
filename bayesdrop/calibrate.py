"""Post-hoc calibration: temperature scaling of a classifier's logits (Guo et al. 2017).

One scalar T > 0 divides the logits; it is fitted on held-out data by
minimising the NLL, so it changes confidence, never the predicted class of the
deterministic pass. :func:`temperature_scale` fits it for the deterministic
pass (``mc=False``: the NLL of softmax(z / T)) or for the MC predictive
(``mc=True``: one T divides each sample's logits before the per-sample
softmaxes are averaged, the NLL of mean_t softmax(z_t / T)). The result is a
:class:`TemperatureScaled` module that wraps the model, so
:func:`bayesdrop.sample`, :func:`bayesdrop.evaluate` and the report work on
the calibrated model unchanged.

A small torch implementation (L-BFGS on log T over cached logits): the
libraries that ship temperature scaling (torch-uncertainty, netcal) would
add a heavy dependency for about thirty lines of arithmetic.

References
----------
Guo, Pleiss, Sun & Weinberger 2017, "On calibration of modern neural
networks", arXiv:1706.04599, sec. 4.2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from . import _batches, _calls
from ._checks import check_int
from ._distributed import seed_or_draw
from .montecarlo import deterministic, sample_batches

__all__ = ["TemperatureScaled", "fit_noise_scale", "fit_temperature", "temperature_scale"]

#: Where the fitted temperature is kept: wider than any useful value, narrow enough that exp stays finite.
LOG_T_RANGE = (-5.0, 5.0)


class TemperatureScaled(nn.Module):
    r"""``model``'s logits divided by a temperature: :math:`z / T`.

    Every stochastic layer of ``model`` stays a submodule, so
    :func:`bayesdrop.sampling` switches it on and each MC sample's logits are
    divided by the same ``T`` before any softmax.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    temperature : float
        T > 0 (1 leaves the logits as they are).
    output : int, str or callable, optional
        Picks the logits from a model that returns a tuple, dict or
        ``ModelOutput`` (as in :func:`bayesdrop.sample`); the wrapper returns
        the scaled logits as a tensor.

    Notes
    -----
    Shape: the model's logits, ``(N, K)`` or ``(N,)`` / ``(N, 1)`` for one logit.

    Examples
    --------
    >>> net = nn.Linear(2, 3)
    >>> x = torch.randn(4, 2)
    >>> bool(torch.allclose(TemperatureScaled(net, 2.0)(x), net(x) / 2))
    True
    """

    def __init__(self, model: nn.Module, temperature: float, *, output: _calls.Output = None) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ValueError(
                f"The 'temperature' parameter of TemperatureScaled must be a float > 0. Got {temperature!r} instead."
            )
        self.model = model
        self.output = output
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    temperature: Tensor

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        logits = _calls.select_output(self.model(*args, **kwargs), self.output, "TemperatureScaled")
        return logits / self.temperature.to(logits.dtype)

    def extra_repr(self) -> str:
        return f"temperature={float(self.temperature):.4g}"


def _nll(logits: Tensor, labels: Tensor, log_t: Tensor) -> Tensor:
    """Mean NLL of the (MC) predictive at temperature exp(log_t); logits (S, N, K), S = 1 for one pass."""
    z = logits / log_t.exp()
    if z.shape[-1] == 1:  # one logit: P(y = 1) = sigmoid(z)
        z = torch.cat([torch.zeros_like(z), z], -1)
    log_p = torch.log_softmax(z, -1)
    log_mean = torch.logsumexp(log_p, 0) - math.log(z.shape[0])  # log of the mean over samples
    return -log_mean.gather(-1, labels[:, None]).mean()


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The temperature that minimises the NLL of ``labels`` under softmax(logits / T), averaged over samples.

    Parameters
    ----------
    logits : Tensor (N, K) or (S, N, K)
        One pass of logits, or S MC samples of them (the MC predictive: the
        mean of the S per-sample softmaxes). ``K = 1`` is one logit of a
        binary problem.
    labels : Tensor (N,)
        Integer labels.

    Returns
    -------
    float
        T > 0.

    Raises
    ------
    ValueError
        If the labels hold one class only (any T > 0 then fits, none is
        learned), are out of range, or the logits are not finite.

    Examples
    --------
    >>> z = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> round(fit_temperature(z, torch.tensor([0, 1, 1, 0])), 1) > 10  # half wrong: flatten
    True
    """
    z = logits.detach().double().cpu()
    z = z[None] if z.ndim == 2 else z
    y = labels.detach().cpu().long().reshape(-1)
    if z.ndim != 3 or z.shape[1] != len(y) or len(y) == 0:
        raise ValueError(
            "The 'logits' parameter of fit_temperature must be (N, K) or (S, N, K) with N = len(labels) > 0. "
            f"Got shapes {tuple(logits.shape)} and {tuple(labels.shape)} instead."
        )
    if not torch.isfinite(z).all():
        raise ValueError("The 'logits' parameter of fit_temperature contains NaN or infinite values.")
    k = max(z.shape[-1], 2)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"The 'labels' parameter of fit_temperature must be in [0, {k}). Got {int(y.max())}.")
    if len(torch.unique(y)) < 2:
        raise ValueError(
            "The 'labels' parameter of fit_temperature holds one class only: a temperature cannot be learned "
            "from it. Use held-out data with at least two classes."
        )
    return _minimise_log_scale(lambda log_t: _nll(z, y, log_t))


def _minimise_log_scale(loss: Callable[[Tensor], Tensor]) -> float:
    """exp of the log-scale in ``LOG_T_RANGE`` that minimises ``loss`` (L-BFGS from 0, i.e. a scale of 1)."""
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        value = loss(log_t.clamp(*LOG_T_RANGE))
        value.backward()  # type: ignore[no-untyped-call]
        return value

    opt.step(closure)  # type: ignore[no-untyped-call]
    return float(log_t.detach().clamp(*LOG_T_RANGE).exp())


def fit_noise_scale(means: Tensor, log_vars: Tensor, y: Tensor) -> float:
    r"""The factor s of the noise std that maximises the MC predictive's log-likelihood of ``y``.

    The regression counterpart of a temperature (std scaling, Levi et al.
    2019, "Evaluating and calibrating uncertainty prediction in regression
    tasks", arXiv:1905.11659): every sample's noise variance is multiplied by
    :math:`s^2` and s maximises the mean log-likelihood of the mixture
    :math:`\frac1S\sum_t N(y; \mu_t, s^2\sigma_t^2)` on held-out data. The
    sampled means stay as they are, so s moves the aleatoric part only.

    Parameters
    ----------
    means, log_vars : Tensor (S, N) or (S, N, D)
        Per-sample means and noise log-variances (S MC samples).
    y : Tensor (N,) or (N, D)
        Held-out targets, in the same units.

    Returns
    -------
    float
        s > 0, within ``exp(LOG_T_RANGE)``.

    Raises
    ------
    ValueError
        If the shapes disagree, there is no row, or a value is not finite.

    Examples
    --------
    >>> mu = torch.zeros(1, 2000); y = 3 * torch.randn(2000, generator=torch.Generator().manual_seed(0))
    >>> s = fit_noise_scale(mu, torch.zeros(1, 2000), y)  # the noise std was 1, the data's is 3
    >>> abs(s - float(y.square().mean().sqrt())) < 1e-4  # with one sample: the root mean square
    True
    """
    mu, lv = means.detach().double().cpu(), log_vars.detach().double().cpu()
    target = y.detach().double().cpu().reshape(mu.shape[1:])
    if mu.shape != lv.shape or mu.ndim < 2 or mu.shape[1] == 0:
        raise ValueError(
            "The 'means' and 'log_vars' parameters of fit_noise_scale must both be (S, N[, D]) with N > 0. "
            f"Got shapes {tuple(means.shape)} and {tuple(log_vars.shape)} instead."
        )
    if not (torch.isfinite(mu).all() and torch.isfinite(lv).all() and torch.isfinite(target).all()):
        raise ValueError("The inputs of fit_noise_scale contain NaN or infinite values.")

    def mixture_nll(log_s: Tensor) -> Tensor:
        log_var = lv + 2 * log_s
        log_p = -0.5 * (math.log(2 * math.pi) + log_var + (target - mu).square() / log_var.exp())
        return -(torch.logsumexp(log_p, 0) - math.log(mu.shape[0])).mean()

    return _minimise_log_scale(mixture_nll)


def _collect(
    net: nn.Module, loader: Any, mc: bool, num_samples: int, output: _calls.Output, target: str, seed: int | None
) -> tuple[Tensor, Tensor]:
    """Logits (S, N, K) and labels (N,) of the held-out data: S MC samples, or the eval-mode pass (S = 1)."""

    def split(batch: Any) -> tuple[Any, Tensor]:
        return _batches.split_batch(batch, "data", "temperature_scale", target)

    outs, labels = [], []
    run = sample_batches(net, loader, split, num_samples if mc else 0, output, False, seed_or_draw(seed),
                         "temperature_scale")  # fmt: skip
    for x, z, y in run:
        if z is None:  # the eval-mode pass, as one "sample"
            with torch.no_grad(), deterministic(net):
                z = _calls.select_output(_calls.call_model(net, x), output, "temperature_scale")[None]
        outs.append(z.reshape(z.shape[0], z.shape[1], -1).cpu())
        labels.append(y.reshape(-1).cpu())
    if not outs:
        raise ValueError("The 'data' parameter of temperature_scale yielded no batch.")
    return torch.cat(outs, 1), torch.cat(labels)


def temperature_scale(
    model: nn.Module,
    data: Any,
    y: Any = None,
    *,
    mc: bool = True,
    num_samples: int = 100,
    output: _calls.Output = None,
    target: str = "labels",
    batch_size: int = 256,
    seed: int | None = None,
) -> TemperatureScaled:
    """Fit a temperature on held-out data and wrap ``model`` with it.

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits (a DDP wrapper is looked through).
    data : Tensor, (X, y), Dataset or DataLoader
        Held-out (validation) data, as :func:`bayesdrop.evaluate` takes it;
        never the test set.
    y : array-like, optional
        Labels when ``data`` holds the inputs only.
    mc : bool
        Fit the temperature of the MC predictive (each sample's logits divided
        before the softmaxes are averaged; the default) or, with False, of the
        deterministic eval-mode pass.
    num_samples : int
        T, MC samples per example when ``mc``.
    output : int, str or callable, optional
        Picks the logits from a model that returns a tuple, dict or ``ModelOutput``.
    target : str
        The key of the labels in dict batches.
    batch_size : int
        Batch size for in-memory data.
    seed : int, optional
        Makes the MC draws reproducible.

    Returns
    -------
    TemperatureScaled
        The model and the fitted temperature (``.temperature``); use it
        wherever the model was used.

    Raises
    ------
    ValueError
        If the held-out labels hold one class only, or the logits are not finite.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    >>> x = torch.randn(200, 2); y = (x[:, 0] > 0).long()
    >>> scaled = temperature_scale(net, x, y, num_samples=20, seed=0)
    >>> float(scaled.temperature) > 0
    True
    """
    num_samples = check_int(num_samples, "num_samples", "temperature_scale")
    batch_size = check_int(batch_size, "batch_size", "temperature_scale")
    if y is None and isinstance(data, Tensor):
        raise TypeError("The 'y' parameter of temperature_scale is required when 'data' is a tensor of inputs.")
    loader = _batches.batches(data, y, batch_size=batch_size, shuffle=False, name="data", owner="temperature_scale",
                              categorical=True)  # fmt: skip
    net = _calls.unwrap(model)
    logits, labels = _collect(net, loader, mc, num_samples, output, target, seed)
    return TemperatureScaled(net, fit_temperature(logits, labels), output=output)
