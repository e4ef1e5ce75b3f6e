"""Observation models: the NLL for training and the aleatoric part for prediction.

A likelihood is an ``nn.Module`` whose parameters (a learned noise) are
trained with the network by :func:`bayesdrop.fit`. Calling it on a network's
output gives the predictive parameters: ``Gaussian`` returns means and
log-variances side by side, so ``nn.Sequential(net, likelihood)`` is a model
that :func:`bayesdrop.evaluate` reads as a mean/log-variance regressor;
``Categorical`` returns the logits unchanged.

References
----------
- Nix & Weigend 1994; Kendall & Gal 2017, arXiv:1703.04977, eq. 5
  (heteroscedastic Gaussian NLL with a log-variance output).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_float

__all__ = ["Categorical", "Gaussian"]

_LOG_2PI = math.log(2 * math.pi)


class Gaussian(nn.Module):
    r"""Gaussian observation noise, learned or fixed.

    .. math:: -\log p(y \mid \mu, \sigma^2) = \tfrac12 \log(2\pi\sigma^2) + \frac{(y - \mu)^2}{2\sigma^2}

    Parameters
    ----------
    heteroscedastic : bool
        False: one learned log-variance per target (the network outputs the
        means, ``(N, D)`` or ``(N,)``). True: the network outputs ``2 D``
        columns, means then log-variances (Kendall & Gal 2017).
    noise_std : float, optional
        Homoscedastic only: a fixed noise std instead of a learned one.
    init_noise_std : float
        Initial std of the learned homoscedastic noise (1.0).
    num_targets : int
        D, the number of targets (1).
    min_noise_std : float
        Heteroscedastic only: a smooth floor m >= 0 under the predicted noise
        std, :math:`\log\sigma^2 = \log m^2 + \mathrm{softplus}(o - \log m^2)`
        for a network output o (0, the default: no floor, the output is the
        log-variance). It keeps a per-input noise from collapsing onto
        training points (an integer-valued target, duplicated inputs).

    Notes
    -----
    Shape: ``forward(output)`` returns ``(N, 2 D)``: means, then log-variances.
    """

    def __init__(
        self,
        heteroscedastic: bool = False,
        *,
        noise_std: float | None = None,
        init_noise_std: float = 1.0,
        num_targets: int = 1,
        min_noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.heteroscedastic = bool(heteroscedastic)
        self.num_targets = num_targets
        if heteroscedastic and noise_std is not None:
            raise ValueError("The 'noise_std' parameter of Gaussian is for heteroscedastic=False only.")
        self.min_noise_std = check_float(min_noise_std, "min_noise_std", "Gaussian", low=0.0)
        if self.min_noise_std and not heteroscedastic:
            raise ValueError(
                "The 'min_noise_std' parameter of Gaussian is for heteroscedastic=True only (a learned "
                f"homoscedastic noise has no per-input collapse). Got min_noise_std={min_noise_std}."
            )
        init = check_float(init_noise_std, "init_noise_std", "Gaussian", low=0.0, low_open=True)
        self.log_var: Tensor | None
        if heteroscedastic:
            self.log_var = None
        elif noise_std is not None:
            std = check_float(noise_std, "noise_std", "Gaussian", low=0.0, low_open=True)
            self.register_buffer("log_var", torch.full((num_targets,), 2 * math.log(std)))
        else:
            self.log_var = nn.Parameter(torch.full((num_targets,), 2 * math.log(init)))

    @property
    def num_outputs(self) -> int:
        """Width of the network output this likelihood expects."""
        return 2 * self.num_targets if self.heteroscedastic else self.num_targets

    @property
    def noise_std(self) -> Tensor | None:
        """The homoscedastic noise std (None when heteroscedastic)."""
        return None if self.log_var is None else self.log_var.detach().mul(0.5).exp()

    def split(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """Means and log-variances of a network output, each ``(N, D)``.

        Parameters
        ----------
        output : Tensor
            The network's output ``(N, num_outputs)`` (or ``(N,)`` for one target):
            the means, then (heteroscedastic) the log-variances.

        Returns
        -------
        mean, log_var : Tensor
            ``(N, D)`` each; a homoscedastic likelihood's learned log-variance is
            broadcast to every example.
        """
        if output.ndim == 1:
            output = output[:, None]
        if output.shape[-1] != self.num_outputs:
            raise ValueError(
                f"Gaussian(heteroscedastic={self.heteroscedastic}) expects {self.num_outputs} output column(s). "
                f"Got {output.shape[-1]} instead."
            )
        if self.heteroscedastic:
            log_var = output[:, self.num_targets :]
            if self.min_noise_std:
                floor = 2 * math.log(self.min_noise_std)
                log_var = floor + F.softplus(log_var - floor)
            return output[:, : self.num_targets], log_var
        assert self.log_var is not None
        return output, self.log_var.expand_as(output)

    def forward(self, output: Tensor) -> Tensor:
        mean, log_var = self.split(output)
        return torch.cat([mean, log_var], dim=-1)

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean over examples of the NLL, summed over targets (nats).

        Parameters
        ----------
        output : Tensor
            The network's output, as :meth:`split` reads it.
        target : Tensor
            ``(N,)`` or ``(N, D)`` targets.

        Returns
        -------
        Tensor
            A scalar, differentiable in the output and the learned noise.
        """
        return -self.log_prob(output, target).mean()

    def log_prob(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-example log-density ``(N,)``, summed over targets (nats).

        Parameters
        ----------
        output : Tensor
            The network's output, as :meth:`split` reads it.
        target : Tensor
            ``(N,)`` or ``(N, D)`` targets.

        Returns
        -------
        Tensor
            ``(N,)`` log-densities.
        """
        mean, log_var = self.split(output)
        target = target.reshape(mean.shape).to(mean.dtype)
        per = 0.5 * (_LOG_2PI + log_var + (target - mean) ** 2 * torch.exp(-log_var))
        return -per.sum(-1)

    def extra_repr(self) -> str:
        floor = f", min_noise_std={self.min_noise_std}" if self.min_noise_std else ""
        return f"heteroscedastic={self.heteroscedastic}, num_targets={self.num_targets}{floor}"


class Categorical(nn.Module):
    """Categorical likelihood on logits ``(N, K)``: cross-entropy NLL.

    ``forward`` returns the logits unchanged; the aleatoric part of a
    prediction is the expected entropy of the per-sample probabilities
    (:func:`bayesdrop.metrics.expected_entropy`).
    """

    num_outputs: int | None = None

    def forward(self, output: Tensor) -> Tensor:
        return output

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy in nats.

        Parameters
        ----------
        output : Tensor
            Logits ``(N, K)``.
        target : Tensor
            Class indices ``(N,)``.

        Returns
        -------
        Tensor
            A scalar.
        """
        return F.cross_entropy(output, target.long())

    def log_prob(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-example log-probability ``(N,)`` of the labels (nats).

        Parameters
        ----------
        output : Tensor
            Logits ``(N, K)``.
        target : Tensor
            Class indices ``(N,)``.

        Returns
        -------
        Tensor
            ``(N,)`` log-probabilities.
        """
        return -F.cross_entropy(output, target.long(), reduction="none")
