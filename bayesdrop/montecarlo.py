"""Monte Carlo predictive sampling from any model with stochastic layers.

References
----------
Gal & Ghahramani 2016, "Dropout as a Bayesian approximation", arXiv:1506.02142
(MC dropout: average T stochastic forward passes at test time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from . import _calls
from ._checks import check_int
from ._distributed import broadcast_object, derive_seed, rank_seed, seed_or_draw, seeded
from .nn import functional as BF
from .nn._protocol import StochasticModule, deterministic

__all__ = ["DEFAULT_CHUNK_BYTES", "deterministic", "even_chunks", "is_stochastic", "sample", "sampling"]

#: Torch's own dropout modules, switched to sampling by :func:`sampling`.
TORCH_DROPOUTS: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

#: Torch's Bernoulli dropout modules whose forward :func:`sampling` swaps for
#: bayesdrop's counter-based mask (same semantics, no Mersenne twister), with
#: the number of spatial dimensions that share one mask value (whole channels).
FAST_DROPOUTS: dict[type[nn.Module], int] = {nn.Dropout: 0, nn.Dropout1d: 1, nn.Dropout2d: 2, nn.Dropout3d: 3}

#: Torch modules with a fused eval-mode "fast path" that skips their dropout
#: submodules; :func:`sampling` keeps them in train mode so that the path
#: through their dropout modules runs (their other children stay in eval).
FAST_PATH_MODULES: tuple[type[nn.Module], ...] = (nn.TransformerEncoderLayer, nn.TransformerEncoder)

#: Normalisation layers kept in eval mode by ``sampling(train_mode=True)``.
NORMS_WITH_STATS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase,)

#: Default memory budget of one forward pass of :func:`sample`: one chunk of
#: the tiled batch takes at most this many bytes in the model's widest
#: activation (the input included), 8 MiB, which keeps the activations of
#: typical MLPs inside the CPU's last-level cache.
DEFAULT_CHUNK_BYTES = 8 * 2**20

#: :func:`sample` runs the noise-free head of a ``nn.Sequential`` once per
#: example and keeps its output for the T passes of the rest when that output
#: takes at most this many bytes (256 MiB); beyond, the whole model is tiled.
HEAD_OUTPUT_BYTES = 256 * 2**20


def is_stochastic(module: nn.Module) -> bool:
    """Whether ``module`` is a layer that :func:`sampling` switches on.

    Parameters
    ----------
    module : nn.Module
        One module (not its children).

    Returns
    -------
    bool
    """
    return isinstance(module, (StochasticModule, *TORCH_DROPOUTS))


def _fast_dropout(module: nn.Module, spatial: int) -> Any:
    """A forward for torch's ``module`` that masks with :func:`bayesdrop.nn.functional.dropout`.

    Torch's semantics: inverted Bernoulli dropout; ``Dropout1d/2d/3d`` zero
    whole channels of ``(N, C, *spatial)`` inputs, or of ``(C, *spatial)``
    unbatched ones (one mask value per channel), except that ``Dropout2d``
    reads a 3-D input as ``(N, C, L)``, as torch does. Only while
    ``module.training`` (as torch's forward), so a module switched back to
    eval inside the block is the identity.
    """
    p = float(module.p)  # type: ignore[arg-type]
    torch_forward = type(module).forward

    def forward(x: Tensor) -> Tensor:
        if x.device.type != "cpu":  # accelerators: torch's fused kernel (one pass; the hash takes about a dozen)
            return torch_forward(module, x)  # type: ignore[no-any-return]
        if not module.training or p == 0.0:
            return x
        if p == 1.0:
            return x * 0.0
        if spatial == 0:
            return BF.dropout(x, p)
        unbatched = x.ndim == spatial + 1 and not (spatial == 2 and x.ndim == 3)
        if unbatched:
            return BF.dropout(x[None], p, shared_dims=tuple(range(2, x.ndim + 1)))[0]
        return BF.dropout(x, p, shared_dims=tuple(range(2, x.ndim)))

    return forward


def _stateful_non_norms(model: nn.Module) -> list[str]:
    """Modules other than torch's norm layers that own running statistics."""
    found = []
    for name, m in model.named_modules():
        if isinstance(m, NORMS_WITH_STATS):
            continue
        own = [b for b, _ in m.named_buffers(recurse=False) if b.startswith("running") or b == "num_batches_tracked"]
        if own:
            found.append(f"{name or type(m).__name__}.{own[0]}")
    return found


@contextmanager
def sampling(model: nn.Module, *, train_mode: bool = False) -> Iterator[nn.Module]:
    """Make ``model``'s stochastic layers sample while everything else stays in eval.

    Inside the block every module is in eval mode (BatchNorm uses and keeps
    its running statistics), bayesdrop's stochastic layers and torch's dropout
    modules (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
    ``FeatureAlphaDropout``) draw noise. ``nn.Dropout`` and
    ``Dropout1d/2d/3d`` (not subclasses that override ``forward``) draw their
    masks on a CPU with bayesdrop's counter-based generator
    (:func:`bayesdrop.nn.functional.dropout`, same semantics: inverted
    Bernoulli, whole channels for the 1d/2d/3d variants), which avoids
    torch's single-threaded CPU generator; on other devices they keep
    torch's fused kernel. The modules are unchanged after the block. ``AlphaDropout`` and
    ``FeatureAlphaDropout`` keep torch's kernel. ``nn.TransformerEncoderLayer``
    and ``nn.TransformerEncoder`` stay in train mode, since in eval their
    fused fast path would skip their dropout modules.

    With ``train_mode=True`` the whole model is in train mode except the
    normalisation layers with running statistics (BatchNorm, InstanceNorm
    with ``track_running_stats``), so dropout that a forward applies
    functionally, gated on ``self.training`` (``F.dropout(x, p,
    training=self.training)``, the attention dropout of
    ``nn.MultiheadAttention`` and most transformer code), samples too.

    Every module's previous ``training`` flag and sampling state are restored
    on exit, also when an exception is raised.

    Parameters
    ----------
    model : nn.Module
    train_mode : bool
        Train mode for everything but normalisation layers (see above).

    Returns
    -------
    nn.Module
        ``model``, for ``with sampling(net) as m:``.

    Raises
    ------
    ValueError
        With ``train_mode=True``, if a module other than torch's normalisation
        layers owns running statistics (buffers named ``running_*``) that
        train mode would update, or if a buffer changed inside the block (the
        buffers are then restored).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).train()
    >>> with sampling(net):
    ...     net.training, net[1].training
    (False, True)
    >>> net.training
    True
    """
    if not isinstance(train_mode, bool):
        raise TypeError(f"The 'train_mode' parameter of sampling must be a bool. Got {train_mode!r} instead.")
    modules = list(model.modules())
    saved = [(m, m.training, getattr(m, "sampling", None)) for m in modules]
    patched: list[nn.Module] = []
    buffers: list[tuple[Tensor, Tensor]] = []
    if train_mode:
        stateful = _stateful_non_norms(model)
        if stateful:
            raise ValueError(
                "The 'train_mode' parameter of sampling cannot be True for this model: train mode would update the "
                f"running statistics of {', '.join(stateful[:3])}, which is not a torch normalisation layer. "
                "Use train_mode=False, or make the layer's statistics follow its own eval mode."
            )
        buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        for m in modules:
            if train_mode:
                m.training = not isinstance(m, NORMS_WITH_STATS)
            else:
                m.training = isinstance(m, (*TORCH_DROPOUTS, *FAST_PATH_MODULES))
            if isinstance(m, StochasticModule):
                m.sampling = True
            spatial = FAST_DROPOUTS.get(type(m))
            if spatial is not None and "forward" not in m.__dict__:
                m.forward = _fast_dropout(m, spatial)
                patched.append(m)
        yield model
    finally:
        for m in patched:
            del m.forward
        for m, training, samp in saved:
            m.training = training
            if isinstance(m, StochasticModule):
                m.sampling = bool(samp)
        changed = [b for b, old in buffers if not torch.equal(b, old)]
        for b, old in buffers:
            b.data.copy_(old)
    if changed:
        raise ValueError(
            "The 'train_mode' parameter of sampling was True and a buffer of the model changed inside the block "
            f"(shape {tuple(changed[0].shape)}): some layer updates running statistics in train mode. The buffers "
            "were restored; use train_mode=False for this model."
        )


def _widest_row_bytes(model: nn.Module, x: Any) -> int:
    """Bytes per example of the model's widest activation, input included (one eval-mode row).

    One row is probed. A model that cannot take one row is run on the whole
    batch instead: if that fails too, the error shows the user's batch (say
    "100x5 and 4x16"), not the probe's one row.
    """
    try:
        return _activation_bytes(model, _calls.take_rows(x, slice(0, 1)), 1)
    except Exception:
        n = _calls.check_input(x, "x", "sample")
        return max(1, _activation_bytes(model, x, n) // n)


def _activation_bytes(model: nn.Module, x: Any, n: int) -> int:
    """Bytes of the widest of ``x`` and the model's activations with ``n`` rows, in one eval-mode pass."""
    widest = _calls.row_bytes(x) * n

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        nonlocal widest
        for t in _calls.tensors_in(out if isinstance(out, (tuple, list, dict)) else [out]):
            if t.ndim and t.shape[0] == n:
                widest = max(widest, t.numel() * t.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad(), deterministic(model):
            _calls.call_model(model, x)
    finally:
        for h in handles:
            h.remove()
    return max(1, widest)


def even_chunks(total: int, n: int, budget: int) -> int:
    """Rows per chunk of a tiled batch of ``total`` rows made of copies of ``n`` examples.

    At most ``budget`` rows, as even as the chunks can be (no small last
    chunk), and a multiple of ``n`` (whole copies of the input tile by
    ``repeat``, without a gather) when that takes no more chunks.

    Parameters
    ----------
    total : int
        Rows of the tiled batch (T x N).
    n : int
        Examples in one copy of the input (N).
    budget : int
        The most rows one chunk may take.

    Returns
    -------
    int

    Examples
    --------
    >>> even_chunks(1000, 100, 500)  # two chunks of five whole copies
    500
    >>> even_chunks(1000, 100, 300)  # four even chunks (whole copies, 200 rows, would take five)
    250
    """
    count = math.ceil(total / budget)
    per = math.ceil(total / count)
    whole = per // n * n
    return whole if whole and math.ceil(total / whole) == count else per


def _tile_rows(x: Any, n: int, start: int, stop: int) -> Any:
    # Row r of the virtual (T * N) tiled batch is example r % N of sample r // N.
    if stop - start == n and start % n == 0:
        return x
    if start % n == 0 and (stop - start) % n == 0:
        k = (stop - start) // n
        return (
            _calls.take_rows(x, torch.arange(n).repeat(k))
            if not isinstance(x, Tensor)
            else x.repeat(k, *[1] * (x.ndim - 1))
        )
    return _calls.take_rows(x, torch.arange(start, stop) % n)


def _run_head(head: nn.Module, x: Any, n: int, rows: int) -> Tensor:
    """``head`` on ``x`` in chunks of ``rows`` examples (one pass per example, not per sample)."""
    parts = [_calls.call_model(head, _calls.take_rows(x, slice(i, i + rows))) for i in range(0, n, rows)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _draw(
    model: nn.Module,
    x: Any,
    n: int,
    num_samples: int,
    chunk_rows: int,
    output: _calls.Output,
    owner: str,
    train_mode: bool,
) -> Tensor:
    # The tiled rows and hence the noise are those of the whole model: a
    # deterministic head only moves the noise-free layers out of the tiling.
    head, tail = deterministic_head(model, train_mode)
    if head is not None:
        with torch.no_grad():
            head_row = _calls.row_bytes(_calls.call_model(head, _calls.take_rows(x, slice(0, 1))))
        if head_row * n <= HEAD_OUTPUT_BYTES:  # else the whole model is tiled, as without a head
            x, model = _run_head(head, x, n, chunk_rows), tail
    total = num_samples * n
    out: Tensor | None = None
    for start in range(0, total, chunk_rows):
        stop = min(start + chunk_rows, total)
        y = _calls.select_output(_calls.call_model(model, _tile_rows(x, n, start, stop)), output, owner)
        if y.ndim == 0 or y.shape[0] != stop - start:
            raise ValueError(
                f"{owner}() needs a model output with one row per input row: {stop - start} rows went in, "
                f"output shape {tuple(y.shape)} came out. Pick a batched output with output=..."
            )
        if out is None:
            out = y.new_empty((total, *y.shape[1:]))
        out[start:stop] = y
    assert out is not None
    return out.view(num_samples, n, *out.shape[1:])


def sample(
    model: nn.Module,
    x: Any,
    num_samples: int,
    *,
    output: _calls.Output = None,
    train_mode: bool = False,
    seed: int | None = None,
    chunk_size: int | None = None,
    consistent: bool = False,
) -> Tensor:
    """Draw ``num_samples`` stochastic forward passes of ``model`` on ``x``.

    The batch is tiled ``num_samples`` times and pushed through in as few
    forward passes as the memory budget allows (``chunk_size`` tiled rows at a
    time), under :func:`sampling`, without an autograd graph. Every row of the
    tiled batch draws its own noise, so samples are independent across
    samples and examples.

    Parameters
    ----------
    model : nn.Module
        Any module with stochastic layers (bayesdrop's layers or torch's
        dropout modules; with ``train_mode=True`` also functional dropout);
        BatchNorm and other layers stay in eval. A
        ``DistributedDataParallel`` wrapper is looked through.
    x : Tensor, array, tuple/list or dict of tensors or arrays
        The input batch, every tensor batched on dim 0 with the same N
        (numpy arrays become tensors). A
        tensor is passed as ``model(x)``, a tuple/list as ``model(*x)``, a
        dict as ``model(**x)`` (HuggingFace style). Tensors move to the
        model's device; floating ones take the model's dtype, integer ones
        (token ids) stay integers.
    num_samples : int
        Number of samples T >= 1.
    output : int, str or callable, optional
        Picks the tensor to stack when the model returns a tuple (an index),
        a dict or a dataclass-like output such as HuggingFace's
        ``ModelOutput`` (a key, e.g. ``"logits"``), or anything else (a
        callable, e.g. ``lambda o: o.logits``).
    train_mode : bool
        Sample under ``sampling(model, train_mode=True)``: functional dropout
        gated on ``self.training`` samples too.
    seed : int, optional
        With a seed the draws are reproducible and torch's global RNG state is
        left as it was; without one they come from the global RNG. Under
        torch.distributed the seed (or, unseeded, a draw from the global RNG)
        is combined with the rank, so two processes never draw the same noise.
        The same seed gives the same draws for the same ``x`` and
        ``chunk_size``; the noise is drawn chunk by chunk, so another chunk
        size (or, in :func:`bayesdrop.evaluate`, another batch size) gives
        other draws from the same distribution.
    chunk_size : int, optional
        Rows of the tiled batch per forward pass. By default at most as many
        as fit :data:`DEFAULT_CHUNK_BYTES` (8 MiB) in the model's widest
        activation, measured by one eval-mode forward pass of one row, in
        chunks of even size (whole copies of ``x`` where that takes no more
        chunks); at least one. With ``consistent=True``: examples of ``x``
        per forward pass (by default as many as fit the budget).
    consistent : bool
        The same T masks for every example ("consistent MC dropout", Kirsch
        et al. 2019, arXiv:1906.08158, sec. 4): sample t is one fixed
        stochastic network applied to all of ``x``, so the samples of a pool
        scored in chunks of any size, or on several ranks, are the same (the
        seed is not combined with the rank; unseeded, rank 0's draw is
        broadcast). Each example's samples have the same distribution as
        with independent masks; what changes is that examples share them,
        which joint scores such as BatchBALD need. Every example is run
        through ``torch.func.vmap(..., randomness="same")`` (the model must
        be one that vmap can run: no ``.item()``, no data-dependent control
        flow on tensor values). Layers with the local reparameterization
        trick share their pre-activation noise across examples (each of the
        T networks is fixed, but it is not an explicit weight sample). For a
        ``nn.Sequential`` the children before the first stochastic one run
        once per example, not T times.

    Returns
    -------
    Tensor
        ``(num_samples, N, ...)``: the output shape with a new leading sample
        dimension, on the model's device.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor, a tuple/list or a dict of tensors, or the
        model returns something other than a tensor and ``output`` is None.
    ValueError
        If ``num_samples`` or ``chunk_size`` is below 1, ``output`` selects
        nothing, the model has no stochastic layer (``train_mode=False``), or
        ``consistent=True`` and vmap cannot run the model.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    >>> sample(net, torch.randn(5, 4), 10, seed=0).shape
    torch.Size([10, 5, 2])
    """
    x = _calls.from_numpy(x)
    _calls.check_input(x, "x", "sample")
    num_samples = check_int(num_samples, "num_samples", "sample")
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", "sample")
    if not isinstance(consistent, bool):
        raise TypeError(f"The 'consistent' parameter of sample must be a bool. Got {consistent!r} instead.")
    net, x = _calls.prepare(model, x)
    return sample_prepared(net, x, num_samples, output, train_mode, seed, chunk_size, "sample", consistent)


def _check_stochastic(net: nn.Module, train_mode: bool, owner: str) -> None:
    if not train_mode and not any(is_stochastic(m) for m in net.modules()):
        raise ValueError(
            f"{owner}() needs a model with a stochastic layer (bayesdrop.nn layers or torch's dropout modules); "
            f"{type(net).__name__} has none, so every sample would be the same. For dropout applied functionally "
            "(F.dropout(training=self.training), attention dropout) pass train_mode=True."
        )


def deterministic_head(net: nn.Module, train_mode: bool) -> tuple[nn.Module | None, nn.Module]:
    """``(head, tail)`` of a ``nn.Sequential`` split before its first child that holds a stochastic layer.

    The head draws no noise, so it can run once per example instead of once
    per sample; ``(None, net)`` for other models, for a Sequential that
    starts with a stochastic child, and with ``train_mode`` (functional
    dropout could be anywhere). Only torch's own layers go in the head (a
    custom module may draw noise in eval mode), and a Sequential with its
    own forward hooks is not split.

    Parameters
    ----------
    net : nn.Module
        The model (unwrapped).
    train_mode : bool
        Whether it will be sampled with ``sampling(net, train_mode=True)``.

    Returns
    -------
    tuple of (nn.Module or None, nn.Module)
        The noise-free head (None when there is none) and the rest.

    Examples
    --------
    >>> head, tail = deterministic_head(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5)), False)
    >>> len(head), len(tail)
    (2, 1)
    """
    if train_mode or type(net) is not nn.Sequential or net._forward_hooks or net._forward_pre_hooks:
        return None, net
    children = list(net)
    first = next((i for i, c in enumerate(children) if any(is_stochastic(m) for m in c.modules())), 0)
    # Only torch's own layers are known to draw no noise in eval mode: a custom module may call
    # F.dropout(training=True) itself, and must then run once per sample.
    known = [all(type(m).__module__.startswith("torch.nn.") for m in c.modules()) for c in children[:first]]
    first = known.index(False) if False in known else first
    if first == 0:
        return None, net
    return nn.Sequential(*children[:first]), nn.Sequential(*children[first:])


def _add_row_dim(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x[None]
    if isinstance(x, dict):
        return {k: _add_row_dim(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_add_row_dim(v) for v in x)
    return x


def _vmapped(net: nn.Module, output: _calls.Output, owner: str) -> Callable[[Any], Tensor]:
    """``net`` mapped over examples with one noise draw shared by all of them."""

    def one(xi: Any) -> Tensor:
        return _calls.select_output(_calls.call_model(net, _add_row_dim(xi)), output, owner)[0]

    return torch.func.vmap(one, randomness="same")


def _draw_consistent(
    net: nn.Module, x: Any, n: int, num_samples: int, output: _calls.Output, train_mode: bool, seed: int | None,
    chunk_size: int | None, owner: str
) -> Tensor:  # fmt: skip
    """``sample(..., consistent=True)`` on a checked input on the model's device (see :func:`sample`).

    Sample t of every chunk of examples draws from ``derive_seed(base, t)``
    under ``vmap(randomness="same")``, so the noise depends on neither the
    chunk nor the example.
    """
    base = seed_or_draw(seed)
    if seed is None:
        base = broadcast_object(base)
    head, tail = deterministic_head(net, train_mode)
    head_rows = max(1, DEFAULT_CHUNK_BYTES // _widest_row_bytes(net, x))
    rows = chunk_size or head_rows
    if head is not None and chunk_size is None:  # the T passes run the tail only: its widest activation sets the chunk
        with torch.no_grad():
            probe = _calls.call_model(head, _calls.take_rows(x, slice(0, 1)))
        rows = max(1, DEFAULT_CHUNK_BYTES // _widest_row_bytes(tail, probe))
    device = _calls.device_dtype(net)[0]
    fn = _vmapped(tail, output, owner)
    out: Tensor | None = None
    with torch.no_grad(), sampling(net, train_mode=train_mode):
        for start in range(0, n, rows):
            part = _calls.take_rows(x, slice(start, min(start + rows, n)))
            h = part if head is None else _run_head(head, part, min(rows, n - start), head_rows)
            for t in range(num_samples):
                with seeded(derive_seed(base, t), device):
                    y = _run_vmapped(fn, h, owner)
                if out is None:
                    out = y.new_empty((num_samples, n, *y.shape[1:]))
                out[t, start : start + y.shape[0]] = y
    assert out is not None
    return out


def _run_vmapped(fn: Callable[[Any], Tensor], x: Any, owner: str) -> Tensor:
    try:
        return fn(x)
    except (RuntimeError, ValueError, TypeError) as e:
        if "vmap" not in str(e) and "Batched" not in str(e):
            raise
        raise ValueError(
            f"{owner}() with consistent masks runs the model under torch.func.vmap(randomness='same'), which "
            f"failed on this model: {e}. Models that call .item() or branch on tensor values cannot be vmapped; "
            "use consistent=False (independent masks)."
        ) from e


def sample_prepared(
    net: nn.Module,
    x: Any,
    num_samples: int,
    output: _calls.Output,
    train_mode: bool,
    seed: int | None,
    chunk_size: int | None,
    owner: str,
    consistent: bool = False,
) -> Tensor:
    """:func:`sample` on a checked input already on the model's device, ``net`` unwrapped (errors name ``owner``)."""
    _check_stochastic(net, train_mode, owner)
    n = _calls.check_input(x, "x", owner)
    if consistent:
        return _draw_consistent(net, x, n, num_samples, output, train_mode, seed, chunk_size, owner)
    if chunk_size is None:
        chunk_size = even_chunks(num_samples * n, n, max(1, DEFAULT_CHUNK_BYTES // _widest_row_bytes(net, x)))
    device = _calls.device_dtype(net)[0]
    with torch.no_grad(), sampling(net, train_mode=train_mode), seeded(rank_seed(seed), device):
        return _draw(net, x, n, num_samples, chunk_size, output, owner, train_mode)


def sample_batches(
    net: nn.Module,
    batches: Iterable[Any],
    split: Callable[[Any], tuple[Any, Tensor]],
    num_samples: int,
    output: _calls.Output,
    train_mode: bool,
    base_seed: int,
    owner: str,
) -> Iterator[tuple[Any, Tensor | None, Tensor]]:
    """For each batch: its inputs on the model's device, their ``(T, B, ...)`` samples and the labels.

    The loop of ``evaluate``, ``temperature_scale`` and the conformal
    calibrations: ``split`` reads a batch as ``(x, labels)``; batch ``i``
    draws its noise from ``derive_seed(base_seed, i)``; ``num_samples=0``
    yields None for the samples (the caller runs its own pass). ``net`` is
    unwrapped; the samples carry no autograd graph.
    """
    device, dtype = _calls.device_dtype(net)
    for i, batch in enumerate(batches):  # no grad-mode context here: it would leak to the caller across yields
        x, labels = split(batch)
        x = _calls.to_model(x, device, dtype)
        seed = derive_seed(base_seed, i)
        s = sample_prepared(net, x, num_samples, output, train_mode, seed, None, owner) if num_samples else None
        yield x, s, labels
