"""The mode protocol shared by every bayesdrop stochastic layer.

``StochasticModule`` is public (``bayesdrop.nn.StochasticModule``): a custom
layer that subclasses it and draws its noise when ``self.stochastic`` is True
joins the protocol, so ``sampling``, ``sample``, ``evaluate`` and ``fit`` treat
it like bayesdrop's own layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


class StochasticModule(nn.Module):
    r"""Base class of a layer whose noise is on in train mode and under ``bayesdrop.sampling``.

    Subclass it, call ``super().__init__()``, and in ``forward`` draw noise
    when ``self.stochastic`` is True; otherwise return the noise's
    expectation (the eval rule). ``sampling`` is switched by
    :func:`bayesdrop.sampling` only. Parameters that set the noise (a learned
    rate) go in ``noise_parameters``, which keeps weight decay off them in
    :func:`bayesdrop.fit`; a ``kl()`` method is not part of the protocol
    (:func:`bayesdrop.kl_divergence` reads variational and concrete-dropout layers only).

    Examples
    --------
    Multiplicative uniform noise on [1 - a, 1 + a] (mean 1, the identity in eval mode):

    >>> import torch, bayesdrop
    >>> class UniformNoise(bayesdrop.nn.StochasticModule):
    ...     def __init__(self, a: float) -> None:
    ...         super().__init__()
    ...         self.a = a
    ...     def forward(self, x: torch.Tensor) -> torch.Tensor:
    ...         if not self.stochastic:
    ...             return x
    ...         return x * (1 + self.a * (2 * torch.rand_like(x) - 1))
    >>> layer = UniformNoise(0.5).eval()
    >>> bool(torch.equal(layer(torch.ones(3)), torch.ones(3)))
    True
    >>> s = bayesdrop.sample(layer, torch.ones(2, 3), 1000, seed=0)
    >>> s.shape, bool(0.5 <= s.min() and s.max() <= 1.5 and abs(float(s.mean()) - 1) < 0.05)
    (torch.Size([1000, 2, 3]), True)
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

    Parameters
    ----------
    model : nn.Module
        The model whose modules go to eval mode.

    Returns
    -------
    nn.Module
        ``model``, for ``with deterministic(net) as m:``.
    """
    saved = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in saved:
            m.training = False
        yield model
    finally:
        for m, training in saved:
            m.training = training
