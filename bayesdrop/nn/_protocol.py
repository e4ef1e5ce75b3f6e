"""The mode protocol shared by every bayesdrop stochastic layer (private)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


class StochasticModule(nn.Module):
    """A module whose noise is on in train mode and under ``bayesdrop.sampling``.

    ``sampling`` is switched by :func:`bayesdrop.sampling` only; eval mode
    with ``sampling = False`` replaces every noise by its expectation.
    """

    sampling: bool

    #: Names of this module's own parameters that parameterise its noise (a
    #: learned variance or rate); :func:`bayesdrop.fit` never applies weight
    #: decay to them.
    noise_parameters: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.sampling = False

    @property
    def stochastic(self) -> bool:
        """Whether ``forward`` draws noise now."""
        return self.training or self.sampling


@contextmanager
def deterministic(model: nn.Module) -> Iterator[nn.Module]:
    """Put every module of ``model`` in eval mode; restore each module's own flag on exit.

    Unlike ``model.eval()`` followed by ``model.train(flag)``, a model whose
    submodules were in mixed modes gets them back as they were.
    """
    saved = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in saved:
            m.training = False
        yield model
    finally:
        for m, training in saved:
            m.training = training
