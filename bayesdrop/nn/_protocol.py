"""The mode protocol shared by every bayesdrop stochastic layer (private)."""

from __future__ import annotations

from torch import nn


class StochasticModule(nn.Module):
    """A module whose noise is on in train mode and under ``bayesdrop.sampling``.

    ``sampling`` is switched by :func:`bayesdrop.sampling` only; eval mode
    with ``sampling = False`` replaces every noise by its expectation.
    """

    sampling: bool

    def __init__(self) -> None:
        super().__init__()
        self.sampling = False

    @property
    def stochastic(self) -> bool:
        """Whether ``forward`` draws noise now."""
        return self.training or self.sampling
