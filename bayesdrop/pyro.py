"""The Pyro bridge: a NUTS reference posterior to judge dropout posteriors against.

Dropout methods claim to approximate the Bayesian posterior of a network
(Gal & Ghahramani 2016; Kingma et al. 2015). For a small network the
posterior itself can be sampled with the No-U-Turn sampler, and every
approximation compared with it in function space:

- :func:`reference_posterior` puts independent Normal priors on the weights
  of an ordinary deterministic network (the architecture of the dropout
  model, its noise layers ignored), adds the likelihood's observation model
  and runs Pyro's NUTS; the result predicts ``(S, N, ...)`` like
  :func:`bayesdrop.sample`.
- :func:`bayesdrop.metrics.compare` (Pyro-free, re-exported here) measures
  the distance between two sets of predictive samples on the same inputs.

This is the only module of bayesdrop that imports ``pyro``.

References
----------
- Hoffman & Gelman 2014, "The No-U-Turn sampler", arXiv:1111.4246 (NUTS).
- Bingham et al. 2019, "Pyro: deep universal probabilistic programming", arXiv:1810.09538.
- Izmailov et al. 2021, "What are Bayesian neural network posteriors really like?",
  arXiv:2104.14421, sec. 4 and 7 (HMC reference; agreement and total variation).
- Foong et al. 2019, "'In-between' uncertainty in Bayesian neural networks",
  arXiv:1906.11537 (where mean-field and MC-dropout predictives miss).
- Vehtari et al. 2021, "Rank-normalization, folding, and localization: an improved
  R-hat", arXiv:1903.08008 (split R-hat and effective sample size).
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

try:
    from pyro.infer import MCMC, NUTS
    from pyro.ops.stats import effective_sample_size, split_gelman_rubin
except ImportError as exc:  # pragma: no cover - exercised by a test that hides pyro
    raise ImportError(
        "bayesdrop.pyro needs pyro-ppl, which was not found. Install it with `pip install pyro-ppl` "
        "(or reinstall bayesdrop, which lists it as a dependency)."
    ) from exc

from ._checks import check_float, check_int, check_tensor, invalid
from ._distributed import derive_seed, seed_or_draw, seeded
from ._progress import progress_bar
from .likelihoods import Categorical, Gaussian
from .metrics.posterior import compare, wasserstein2
from .montecarlo import is_stochastic
from .nn import ConcreteDropout, DropConnectLinear, FastDropoutLinear, VariationalLinear

__all__ = ["ReferencePosterior", "compare", "reference_posterior", "wasserstein2"]

Task = Literal["classification", "regression"]

_OWNER = "reference_posterior"

#: Stochastic layers with parameters of their own that have a deterministic
#: torch equivalent: the reference replaces them by it.
_LINEAR_LIKE = (VariationalLinear, FastDropoutLinear, DropConnectLinear)
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


# --------------------------------------------------------------------------- the network


def _deterministic_twin(layer: nn.Module) -> nn.Module:
    """``nn.Linear`` (then the layer's activation) for a linear layer with its own noise parameters."""
    bias = getattr(layer, "bias", None) is not None
    linear = nn.Linear(layer.in_features, layer.out_features, bias=bias)  # type: ignore[arg-type]
    linear = linear.to(dtype=layer.weight.dtype, device=layer.weight.device)  # type: ignore[arg-type]
    if isinstance(layer, DropConnectLinear) and layer.activation != "identity":
        return nn.Sequential(linear, _ACTIVATIONS[layer.activation]())
    return linear


def _strip(model: nn.Module) -> nn.Module:
    """A deterministic copy of ``model`` in eval mode.

    Noise layers without parameters (bayesdrop's and torch's dropout, Gaussian
    dropout, DropPath, ...) stay and are deterministic in eval mode (their
    expectation); ``VariationalLinear``, ``FastDropoutLinear`` and
    ``DropConnectLinear`` become ``nn.Linear`` (DropConnect's activation
    kept), ``ConcreteDropout`` its wrapped layer; any other stochastic layer
    with parameters is refused.
    """
    if not isinstance(model, nn.Module):
        raise invalid("model", _OWNER, "a torch.nn.Module", type(model).__name__, TypeError)
    net = copy.deepcopy(model).cpu()  # NUTS on a small network is CPU work; the user's model stays where it is
    for name, module in list(net.named_modules()):
        if not name or not is_stochastic(module):
            continue
        if isinstance(module, (*_LINEAR_LIKE, ConcreteDropout)):
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            twin = module.layer if isinstance(module, ConcreteDropout) else _deterministic_twin(module)
            setattr(parent, child, twin)
        elif any(True for _ in module.parameters(recurse=False)):
            own = ", ".join(n for n, _ in module.named_parameters(recurse=False))
            raise ValueError(
                f"The 'model' parameter of {_OWNER} must be a deterministic network or one whose stochastic layers "
                f"can be stripped (parameter-free dropout layers, VariationalLinear, FastDropoutLinear, "
                f"DropConnectLinear, ConcreteDropout). Got {type(module).__name__} at '{name}' with noise parameters ({own}) instead: "
                "pass the same architecture built from torch layers."
            )
    if isinstance(net, ConcreteDropout):
        net = net.layer
    elif isinstance(model, _LINEAR_LIKE):
        net = _deterministic_twin(model)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@dataclass(frozen=True)
class _Layout:
    """How one flat parameter vector maps onto the network (and the noise)."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    prior_std: Tensor  # (P,) for the network's parameters
    num_noise: int  # learned log-noise-std entries at the end of the vector (0 or D)

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Parameter dict of the network from ``theta`` (..., P [+ D])."""
        lead = theta.shape[:-1]
        parts = torch.split(theta[..., : sum(self.sizes)], self.sizes, dim=-1)
        return {n: t.reshape(*lead, *s) for n, t, s in zip(self.names, parts, self.shapes, strict=True)}


def _layout(net: nn.Module, prior_scale: float, scale_by_fan_in: bool, num_noise: int) -> _Layout:
    names, shapes, stds = [], [], []
    for name, p in net.named_parameters():
        names.append(name)
        shapes.append(tuple(p.shape))
        fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 1
        std = prior_scale / math.sqrt(fan_in) if scale_by_fan_in else prior_scale
        stds.append(torch.full((p.numel(),), std, dtype=p.dtype))
    if not names:
        raise invalid("model", _OWNER, "a network with parameters", type(net).__name__)
    return _Layout(tuple(names), tuple(shapes), torch.cat(stds), num_noise)


# --------------------------------------------------------------------------- the log joint


class _LogJoint:
    """log p(theta) + log p(y | x, theta) up to a constant; picklable for worker processes.

    theta = (network parameters, log noise std per target when the noise is learned).
    """

    def __init__(
        self,
        net: nn.Module,
        layout: _Layout,
        x: Tensor,
        y: Tensor,
        likelihood: Gaussian | Categorical,
        noise_prior_scale: float,
    ) -> None:
        self.net, self.layout, self.x, self.y = net, layout, x, y
        self.categorical = isinstance(likelihood, Categorical)
        self.heteroscedastic = isinstance(likelihood, Gaussian) and likelihood.heteroscedastic
        self.num_targets = 0
        self.fixed_log_var: Tensor | None = None
        if isinstance(likelihood, Gaussian):
            self.num_targets = likelihood.num_targets
            if not layout.num_noise and likelihood.log_var is not None:
                self.fixed_log_var = likelihood.log_var.detach().clone()
        self.noise_prior_scale = noise_prior_scale

    def output(self, theta: Tensor, x: Tensor) -> Tensor:
        out: Tensor = torch.func.functional_call(self.net, self.layout.unflatten(theta), (x,))
        return out

    def log_var(self, theta: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        """Means ``(N, D)`` and log-variances of the Gaussian observation model."""
        if out.ndim == 1:
            out = out[:, None]
        d = self.num_targets
        if self.heteroscedastic:
            return out[:, :d], out[:, d:]
        if self.fixed_log_var is not None:
            return out, self.fixed_log_var.to(out).expand_as(out)
        return out, (2 * theta[-self.layout.num_noise :]).expand_as(out)

    def __call__(self, theta: Tensor) -> Tensor:
        n = self.layout.prior_std.numel()
        log_prior = -0.5 * ((theta[:n] / self.layout.prior_std) ** 2).sum()
        out = self.output(theta, self.x)
        if self.categorical:
            log_lik = torch.log_softmax(out, -1).gather(-1, self.y[:, None]).sum()
            return log_prior + log_lik
        if self.layout.num_noise:
            # sigma ~ HalfNormal(s) on the log scale: log p(sigma) + log |d sigma / d log sigma|
            log_sigma = theta[n:]
            log_prior = log_prior + (-0.5 * (log_sigma.exp() / self.noise_prior_scale) ** 2 + log_sigma).sum()
        mean, log_var = self.log_var(theta, out)
        log_lik = -0.5 * (log_var + (self.y.reshape(mean.shape) - mean) ** 2 * torch.exp(-log_var)).sum()
        return log_prior + log_lik


class _Potential(torch.autograd.Function):
    """-log joint whose gradient was computed together with its value (eagerly or by a compiled function)."""

    @staticmethod
    def forward(ctx: Any, theta: Tensor, value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Tensor:
        grad, value = value_and_grad(theta.detach())
        ctx.save_for_backward(grad)
        return -value

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        (grad,) = ctx.saved_tensors
        return -g * grad, None


def _value_and_grad(log_joint: _LogJoint, use_compile: bool) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    eager: Callable[[Tensor], tuple[Tensor, Tensor]] = torch.func.grad_and_value(log_joint)
    if not use_compile:
        return eager
    compiled = torch.compile(eager, dynamic=False)
    state: dict[str, Callable[[Tensor], tuple[Tensor, Tensor]]] = {"fn": compiled}

    def call(theta: Tensor) -> tuple[Tensor, Tensor]:
        try:
            return state["fn"](theta)
        except Exception as exc:  # a missing C++ compiler and the like: fall back, say so
            if state["fn"] is eager:
                raise
            warnings.warn(f"torch.compile failed ({exc!r:.200}); NUTS runs eagerly.", RuntimeWarning, stacklevel=2)
            state["fn"] = eager
            return eager(theta)

    return call


# --------------------------------------------------------------------------- one chain


@dataclass(frozen=True)
class _ChainSpec:
    log_joint: _LogJoint
    num_samples: int
    warmup_steps: int
    max_tree_depth: int
    target_accept_prob: float
    init_steps: int
    compile: bool
    seed: int


def _initial_point(spec: _ChainSpec) -> Tensor:
    """A draw from the prior (noise std 1), moved by ``init_steps`` of Adam towards the posterior's mode."""
    layout = spec.log_joint.layout
    theta = torch.cat([torch.randn_like(layout.prior_std) * layout.prior_std, torch.zeros(layout.num_noise)])
    theta = theta.to(layout.prior_std.dtype).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=1e-2)
    for _ in range(spec.init_steps):
        opt.zero_grad()
        (-spec.log_joint(theta)).backward()
        opt.step()
    return theta.detach()


def _run_chain(spec: _ChainSpec, tick: Callable[[], None]) -> dict[str, Any]:
    start = time.perf_counter()
    with seeded(spec.seed):
        init = _initial_point(spec)
        value_and_grad = _value_and_grad(spec.log_joint, spec.compile)

        def potential(params: dict[str, Tensor]) -> Tensor:
            out: Tensor = _Potential.apply(params["theta"], value_and_grad)
            return out

        kernel = NUTS(
            potential_fn=potential,
            max_tree_depth=spec.max_tree_depth,
            target_accept_prob=spec.target_accept_prob,
            adapt_mass_matrix=True,
        )
        mcmc = MCMC(
            kernel,
            num_samples=spec.num_samples,
            warmup_steps=spec.warmup_steps,
            initial_params={"theta": init},
            disable_progbar=True,
            hook_fn=lambda *_: tick(),
        )
        mcmc.run()
    divergences = mcmc.diagnostics()["divergences"]["chain 0"]
    return {
        "theta": mcmc.get_samples()["theta"].detach(),
        "divergences": len(divergences),
        "step_size": float(kernel.step_size),
        "seconds": time.perf_counter() - start,
    }


_COUNTER: Any = None


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter
    torch.set_num_threads(1)  # one chain per core


def _tick_shared() -> None:
    with _COUNTER.get_lock():
        _COUNTER.value += 1


def _worker(spec: _ChainSpec) -> dict[str, Any]:
    return _run_chain(spec, _tick_shared)


def _run_chains(specs: list[_ChainSpec], parallel: bool, progress: bool) -> list[dict[str, Any]]:

    total = sum(s.num_samples + s.warmup_steps for s in specs)
    bar = progress_bar(total=total, desc=f"NUTS, {len(specs)} chain(s)", unit="it", progress=progress)
    try:
        if not parallel:
            return [_run_chain(s, lambda: bar.update()) for s in specs]
        # fork, as torch's DataLoader workers do (one thread each, set in the initializer): spawn would need the
        # caller's script to be importable under `if __name__ == "__main__":`, which notebooks and quick scripts lack
        ctx = multiprocessing.get_context("fork")
        counter = ctx.Value("l", 0)
        workers = min(len(specs), max(1, multiprocessing.cpu_count()))
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(counter,)) as pool:
            futures: list[Future[dict[str, Any]]] = [pool.submit(_worker, s) for s in specs]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                bar.update(counter.value - bar.n)
            return [f.result() for f in futures]
    finally:
        bar.close()


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class ReferencePosterior:
    """NUTS samples of a network's posterior, with predictions and diagnostics.

    Attributes
    ----------
    model : nn.Module
        The deterministic network the samples belong to (eval mode).
    likelihood : Gaussian or Categorical
        The observation model.
    samples : dict of str to Tensor
        Raw samples: each parameter of ``model`` as ``(S, *shape)`` and, when
        the Gaussian noise was learned, ``"noise_std"`` as ``(S, D)``. The
        ``S = num_chains * num_samples`` draws are in chain order.
    num_chains : int
    r_hat : float
        Largest split R-hat over the predictions at (up to 500 of) the
        training inputs (the mean of a regressor, the class probabilities of a
        classifier). Weights are not identifiable, functions are: judge
        convergence here. Below 1.1 is the classic bar (Gelman & Rubin 1992); Vehtari et al. 2021 ask for 1.01.
    ess : float
        Smallest effective sample size over the same predictions.
    divergences : int
        Divergent transitions after warm-up, over all chains.
    seconds : float
        Wall time of the sampling (all chains, initialisation included).
    step_sizes : tuple of float
        Each chain's adapted NUTS step size.
    """

    model: nn.Module
    likelihood: Gaussian | Categorical
    samples: dict[str, Tensor]
    num_chains: int
    r_hat: float
    ess: float
    divergences: int
    seconds: float
    step_sizes: tuple[float, ...]
    _theta: Tensor = field(repr=False)
    _log_joint: _LogJoint = field(repr=False)

    @property
    def num_samples(self) -> int:
        """S, the number of posterior draws (all chains)."""
        return int(self._theta.shape[0])

    def predict(self, x: Tensor) -> Tensor:
        """The network's output under every posterior draw.

        Parameters
        ----------
        x : Tensor
            Inputs ``(N, ...)``; moved to the model's device and dtype.

        Returns
        -------
        Tensor
            ``(S, N, K)`` logits for ``Categorical``; ``(S, N, 2 D)`` means
            then log-variances for ``Gaussian`` (the layout that
            :func:`bayesdrop.sample` gives for ``nn.Sequential(net,
            likelihood)``, which :func:`compare` reads).
        """
        x = check_tensor(x, "x", "ReferencePosterior.predict")
        ref = self._theta
        x = x.to(device=ref.device, dtype=ref.dtype) if x.is_floating_point() else x.to(ref.device)
        return _predictions(self._log_joint, ref, x)

    def diagnostics(self) -> dict[str, float]:
        """``r_hat``, ``ess``, ``divergences``, ``seconds`` and the number of samples as one dict.

        Returns
        -------
        dict of str to float
            The convergence diagnostics, for a table or a log.
        """
        return {
            "r_hat": self.r_hat,
            "ess": self.ess,
            "divergences": float(self.divergences),
            "seconds": self.seconds,
            "num_samples": float(self.num_samples),
            "num_chains": float(self.num_chains),
        }


def _predictions(log_joint: _LogJoint, theta: Tensor, x: Tensor) -> Tensor:
    """(S, N, K) logits or (S, N, 2 D) means and log-variances, one forward pass per draw."""
    with torch.no_grad():
        outs = [log_joint.output(t, x) for t in theta]
        if not log_joint.categorical:
            outs = [torch.cat(log_joint.log_var(t, out), -1) for t, out in zip(theta, outs, strict=True)]
    return torch.stack(outs)


def _function_space(log_joint: _LogJoint, theta: Tensor, x: Tensor) -> Tensor:
    """(S, N * K) predictions whose convergence is judged: class probabilities or means."""
    out = _predictions(log_joint, theta, x)
    out = torch.softmax(out, -1) if log_joint.categorical else out[..., : log_joint.num_targets]
    return out.reshape(len(theta), -1)


# size: NUTS's options stay flat keywords, as in Pyro's NUTS and MCMC; each has one meaning and a default.
def reference_posterior(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    likelihood: Gaussian | Categorical,
    prior_scale: float = 1.0,
    scale_by_fan_in: bool = True,
    noise_prior_scale: float = 1.0,
    num_samples: int = 500,
    warmup_steps: int = 500,
    num_chains: int = 2,
    max_tree_depth: int = 8,
    target_accept_prob: float = 0.8,
    init_steps: int = 500,
    parallel: bool | None = None,
    compile: bool = True,
    seed: int | None = None,
    progress: bool = True,
) -> ReferencePosterior:
    r"""Sample the posterior of a network's weights with NUTS (Pyro).

    The model is

    .. math:: \theta_i \sim N(0, s_i^2), \qquad y_n \sim p(y \mid f_\theta(x_n)),

    with :math:`s_i` = ``prior_scale / sqrt(fan_in)`` for a weight of a layer
    with ``fan_in`` inputs (the product of its shape after the first axis) and
    ``prior_scale`` for biases and other 1-D parameters when
    ``scale_by_fan_in`` (the default, the scale at which a wide network's
    outputs stay O(1)); ``prior_scale`` for every parameter otherwise. The
    observation model is the likelihood's: ``Categorical`` on logits;
    ``Gaussian`` with the network's log-variances (heteroscedastic), its fixed
    ``noise_std``, or, when the noise is learned, a noise std per target with
    the prior :math:`\sigma \sim \text{HalfNormal}(\text{noise\_prior\_scale})`
    (standardise ``y`` or set ``noise_prior_scale`` to its scale).

    The network is used as a deterministic function: a copy on the CPU (NUTS
    on a network this small is CPU work) in eval mode,
    where dropout, Gaussian dropout, DropPath and the other parameter-free
    noise layers are their expectation (ignored); ``VariationalLinear``,
    ``FastDropoutLinear`` and ``DropConnectLinear`` are replaced by
    ``nn.Linear`` of the same shape (DropConnect's activation kept),
    ``ConcreteDropout`` by the layer it wraps. Other stochastic layers with
    parameters are refused.

    Each chain starts from a prior draw moved by ``init_steps`` steps of Adam
    towards a mode, then runs ``warmup_steps`` of step-size and diagonal
    mass-matrix adaptation and ``num_samples`` draws. Chains run in parallel
    processes (one thread each) when ``parallel`` (by default when there is
    more than one chain and more than one CPU). With ``compile`` the value and
    gradient of the log joint are one ``torch.compile``-d function (compiled
    once per process, then faster per leapfrog step; the posterior-quality
    benchmark gives the timings); it falls back to eager with a warning where
    compiling fails.

    Parameters
    ----------
    model : nn.Module
        The network, called as ``model(x)``.
    x, y : Tensor
        Training inputs ``(N, ...)`` and targets (``(N,)`` or ``(N, D)``
        floats for Gaussian, ``(N,)`` class indices for Categorical).
    likelihood : Gaussian or Categorical
    prior_scale : float
        Scale of the Normal prior (see above).
    scale_by_fan_in : bool
        Divide the weights' prior scale by ``sqrt(fan_in)``.
    noise_prior_scale : float
        Scale of the HalfNormal prior of a learned Gaussian noise std.
    num_samples, warmup_steps : int
        Draws kept and warm-up iterations, per chain.
    num_chains : int
        Independent chains (at least 1; 2 or more give a between-chain R-hat).
    max_tree_depth : int
        NUTS's cap on the doubling of a trajectory (at most
        ``2**max_tree_depth - 1`` leapfrog steps per draw).
    target_accept_prob : float
        Target of the step-size adaptation, in (0, 1).
    init_steps : int
        Adam steps from the prior draw before warm-up (0: start at the draw).
    parallel : bool, optional
        Chains in parallel (forked) processes.
    compile : bool
        ``torch.compile`` the log joint's value and gradient.
    seed : int, optional
        Makes the run reproducible; the caller's RNG state is left untouched.
        Chain ``c`` uses a seed derived from ``(seed, c)``.
    progress : bool
        A progress bar over all chains' iterations.

    Returns
    -------
    ReferencePosterior

    Raises
    ------
    ValueError
        A model with stochastic layers that cannot be stripped, ``num_chains <
        1``, mismatched ``x`` and ``y``, a prior scale that is not positive.
    TypeError
        A likelihood other than ``Gaussian`` or ``Categorical``.

    Examples
    --------
    >>> import torch, bayesdrop
    >>> from bayesdrop.pyro import reference_posterior
    >>> x = torch.linspace(-1, 1, 20)[:, None]
    >>> y = 2 * x[:, 0]
    >>> ref = reference_posterior(torch.nn.Linear(1, 1), x, y, likelihood=bayesdrop.Gaussian(noise_std=0.1),
    ...                           num_samples=100, warmup_steps=100, num_chains=1, compile=False, seed=0,
    ...                           progress=False)
    >>> ref.predict(x).shape, abs(float(ref.samples["weight"].mean()) - 2) < 0.2
    (torch.Size([100, 20, 2]), True)
    """
    _check_options(likelihood, prior_scale, noise_prior_scale, num_samples, warmup_steps, num_chains, max_tree_depth,
                   init_steps, target_accept_prob)  # fmt: skip
    net, x, y, num_noise = _check_data(model, x, y, likelihood)
    layout = _layout(net, prior_scale, scale_by_fan_in, num_noise)
    log_joint = _LogJoint(net, layout, x, y, likelihood, noise_prior_scale)
    base = seed_or_draw(seed)
    specs = [
        _ChainSpec(log_joint, num_samples, warmup_steps, max_tree_depth, target_accept_prob, init_steps, compile,
                   derive_seed(base, c))
        for c in range(num_chains)
    ]  # fmt: skip
    if parallel is None:
        parallel = num_chains > 1 and multiprocessing.cpu_count() > 1
    start = time.perf_counter()
    runs = _run_chains(specs, parallel, progress)
    return _result(log_joint, likelihood, runs, x, time.perf_counter() - start)


def _check_options(
    likelihood: Any,
    prior_scale: float,
    noise_prior_scale: float,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    max_tree_depth: int,
    init_steps: int,
    target_accept_prob: float,
) -> None:
    """The errors of :func:`reference_posterior`'s options, each naming the parameter."""
    if not isinstance(likelihood, (Gaussian, Categorical)):
        raise invalid(
            "likelihood", _OWNER, "a bayesdrop.Gaussian or bayesdrop.Categorical", type(likelihood).__name__, TypeError
        )
    check_float(prior_scale, "prior_scale", _OWNER, low=0.0, low_open=True)
    check_float(noise_prior_scale, "noise_prior_scale", _OWNER, low=0.0, low_open=True)
    check_int(num_samples, "num_samples", _OWNER, minimum=4)
    check_int(warmup_steps, "warmup_steps", _OWNER, minimum=0)
    check_int(num_chains, "num_chains", _OWNER)
    check_int(max_tree_depth, "max_tree_depth", _OWNER)
    check_int(init_steps, "init_steps", _OWNER, minimum=0)
    check_float(target_accept_prob, "target_accept_prob", _OWNER, low=0.0, high=1.0, low_open=True, high_open=True)


def _check_data(
    model: nn.Module, x: Any, y: Any, likelihood: Gaussian | Categorical
) -> tuple[nn.Module, Tensor, Tensor, int]:
    """The deterministic network, ``x`` and ``y`` on the CPU in its dtype, and the number of learned noise stds.

    The network runs on one example, so that one that cannot take ``x``, or
    an output the likelihood cannot read, fails here, before any chain.
    """
    x = check_tensor(x, "x", _OWNER)
    y = check_tensor(y, "y", _OWNER)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"The 'x' and 'y' parameters of {_OWNER} must hold the same number (> 0) of examples. "
            f"Got x {tuple(x.shape)} and y {tuple(y.shape)} instead."
        )
    net = _strip(model)
    ref = next(net.parameters(), None)
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    x, y = x.cpu(), y.cpu()
    x = x.to(dtype) if x.is_floating_point() else x
    if isinstance(likelihood, Categorical):
        if y.is_floating_point() or y.ndim != 1:
            raise ValueError(
                f"The 'y' parameter of {_OWNER} must be (N,) integer class indices for a Categorical likelihood. "
                f"Got {y.dtype} of shape {tuple(y.shape)} instead."
            )
        y = y.long()
        num_noise = 0
    else:
        y = y.to(dtype)
        d = likelihood.num_targets
        if y.numel() != y.shape[0] * d:
            raise ValueError(
                f"The 'y' parameter of {_OWNER} must have shape (N,) or (N, {d}) for Gaussian(num_targets={d}). "
                f"Got {tuple(y.shape)} instead."
            )
        learned = not likelihood.heteroscedastic and isinstance(likelihood.log_var, nn.Parameter)
        num_noise = d if learned else 0
    probe_layout = _layout(net, 1.0, True, num_noise)
    probe_joint = _LogJoint(net, probe_layout, x, y, likelihood, 1.0)
    with torch.no_grad():
        probe = probe_joint.output(torch.zeros(probe_layout.prior_std.numel() + num_noise, dtype=dtype), x[:1])
    if isinstance(likelihood, Gaussian):
        likelihood.split(probe.reshape(1, -1))
    return net, x, y, num_noise


def _result(
    log_joint: _LogJoint, likelihood: Gaussian | Categorical, runs: list[dict[str, Any]], x: Tensor, seconds: float
) -> ReferencePosterior:
    """The chains' draws with their convergence diagnostics in function space."""
    num_chains, layout = len(runs), log_joint.layout
    num_noise = layout.num_noise
    chains = torch.stack([r["theta"] for r in runs])  # (C, S, P)
    theta = chains.reshape(-1, chains.shape[-1])
    preds = _function_space(log_joint, theta, x[:500]).reshape(num_chains, chains.shape[1], -1)
    r_hat = split_gelman_rubin(preds, chain_dim=0, sample_dim=1)
    ess = effective_sample_size(preds, chain_dim=0, sample_dim=1)
    samples = {n: t.clone() for n, t in layout.unflatten(theta).items()}
    if num_noise:
        samples["noise_std"] = theta[:, -num_noise:].exp()
    return ReferencePosterior(
        model=log_joint.net,
        likelihood=likelihood,
        samples=samples,
        num_chains=num_chains,
        r_hat=float(torch.nan_to_num(r_hat, nan=1.0).max()),
        ess=float(torch.nan_to_num(ess, nan=float(theta.shape[0])).min()),
        divergences=sum(int(r["divergences"]) for r in runs),
        seconds=seconds,
        step_sizes=tuple(float(r["step_size"]) for r in runs),
        _theta=theta,
        _log_joint=log_joint,
    )
