"""Pure tensor math of bayesdrop's layers.

Every random function takes an explicit ``generator`` (``None`` draws from
torch's global RNG, so ``torch.manual_seed`` makes a script reproducible) and
is always stochastic: the modules decide when noise is applied.

Bernoulli masks use a counter-based generator (SplitMix64, Steele et al.
2014) written in tensor operations: one 63-bit key is drawn from ``generator``
per call and the mask bits are a hash of (key, element index). Each 64-bit
hash gives four mask elements, one per 16-bit field, so a drop probability is
resolved to 2**-16 (it is rounded to the nearest multiple of 1/65536, an
error of at most 7.7e-6; a ``p`` below 2**-17 rounds to 0). On a CPU it avoids
torch's single-threaded Mersenne twister (timings: the README's sampling
benchmark), and it gives the same masks on every device for the same key.

Sections, in this order: masks; the dropout family (unit noise,
DropConnect, max-pooling dropout); variational dropout; concrete dropout;
depth (DropPath); moments (fast dropout, moment matching).

References
----------
- Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks
  from overfitting", JMLR 15 (Bernoulli and Gaussian dropout, sec. 10).
- Kingma, Salimans & Welling 2015, "Variational dropout and the local
  reparameterization trick", arXiv:1506.02557 (sec. 2.3, eq. 8; appendix C).
- Molchanov, Ashukha & Vetrov 2017, "Variational dropout sparsifies deep
  neural networks", arXiv:1701.05369 (sec. 4.2 additive reparameterization,
  eq. 14 KL approximation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "bernoulli_mask",
    "drop_connect_conv",
    "drop_connect_linear",
    "drop_connect_moment_matching",
    "drop_path",
    "drop_path_join_mask",
    "dropout",
    "expected_gaussian_nll",
    "gaussian_dropout",
    "gaussian_noise",
    "kl_log_uniform",
    "kl_log_uniform_additive",
    "local_reparam_conv",
    "local_reparam_linear",
    "max_pool_dropout_expectation",
    "random_bits",
    "relaxed_keep_mask",
    "relu_moments",
    "salt_and_pepper",
    "sigmoid_moments",
    "unit_gaussian_dropout",
]


KLApproximation = Literal["molchanov", "kingma"]


# --- masks: counter-based Bernoulli bits -------------------------------------


def _s64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


_GOLDEN = _s64(0x9E3779B97F4A7C15)

_MIX1 = _s64(0xBF58476D1CE4E5B9)

_MIX2 = _s64(0x94D049BB133111EB)


def _draw_key(generator: torch.Generator | None) -> int:
    """One 64-bit key from ``generator`` (or torch's global CPU RNG)."""
    return int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64, generator=generator))


def random_bits(
    shape: Sequence[int], *, device: torch.device | str | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Uniform random int32 values (all 32 bits random) of the given shape.

    SplitMix64 (Steele, Lea & Flood 2014) applied to ``key + i * golden``,
    where the key is drawn from ``generator``; each 64-bit output gives two
    int32 values. Logical shifts are written as arithmetic shifts masked to
    the kept bits; multiplications wrap modulo 2**64.

    Parameters
    ----------
    shape : sequence of int
        Shape of the result.
    device : torch.device or str, optional
        Device of the result (CPU by default).
    generator : torch.Generator, optional
        Source of the key; ``None`` uses torch's global RNG.

    Returns
    -------
    Tensor
        int32 tensor of ``shape``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> random_bits((2, 3), generator=g).dtype
    torch.int32
    """
    numel = math.prod(shape)
    z = _hash_words((numel + 1) // 2, _draw_key(generator), device)
    return z.view(torch.int32)[:numel].view(tuple(shape))


def _mask_shape(x: Tensor, shared_dims: Sequence[int]) -> list[int]:
    shared = {d % x.ndim for d in shared_dims}
    if 0 in shared:
        raise ValueError(
            f"The 'shared_dims' parameter must not include the batch dimension 0. Got {tuple(shared_dims)} instead."
        )
    return [1 if d in shared else s for d, s in enumerate(x.shape)]


def _hash_words(num_words: int, key: int, device: torch.device | str | None) -> Tensor:
    """SplitMix64 of ``key + i * golden`` for i < num_words, as int64."""
    z = torch.arange(num_words, dtype=torch.int64, device=device).mul_(_GOLDEN).add_(key)
    for shift, factor in ((30, _MIX1), (27, _MIX2), (31, 1)):
        t = z >> shift
        t &= (1 << (64 - shift)) - 1  # logical shift
        z ^= t
        if factor != 1:
            z *= factor
    return z


def _fields(
    shape: Sequence[int], p: float, device: torch.device, generator: torch.Generator | None
) -> tuple[Tensor, int]:
    """Uniform int16 fields of ``shape``, four per hash, and the threshold below which an element is dropped.

    P(bits < t) = (t + 2**15) / 2**16 for t = round(p 2**16) - 2**15, so "bits >= t" keeps with probability
    1 - round(p 2**16) / 2**16.
    """
    numel = math.prod(shape)
    words = _hash_words((numel + 3) // 4, _draw_key(generator), device)
    return words.view(torch.int16)[:numel].view(tuple(shape)), min(round(p * 2**16) - 2**15, 2**15 - 1)


def _keep_mask(shape: Sequence[int], p: float, device: torch.device, generator: torch.Generator | None) -> Tensor:
    bits, threshold = _fields(shape, p, device, generator)
    return bits >= threshold


def _scaled_keep_mask(x: Tensor, p: float, shared_dims: Sequence[int], generator: torch.Generator | None) -> Tensor:
    """The keep mask times 1/(1 - p) in ``x``'s dtype, in the mask's (possibly broadcast) shape.

    Built with float arithmetic, sign(bits - t + 1/2) + 1 in {0, 2}, rather than a comparison followed by a
    bool-to-float conversion (fewer passes on a CPU); float32 (or float64) holds every int16 and
    t - 1/2 exactly, so the mask is the same as ``bits >= t``.
    """
    bits, threshold = _fields(_mask_shape(x, shared_dims), p, x.device, generator)
    exact = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    mask = bits.to(exact).sub_(threshold - 0.5).sign_().add_(1.0).mul_(0.5 / (1.0 - p))
    return mask.to(x.dtype)


def bernoulli_mask(
    shape: Sequence[int],
    p: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A boolean keep mask: each element True with probability ``1 - p`` (p to 2**-16, module docstring).

    Parameters
    ----------
    shape : sequence of int
        The mask's shape.
    p : float
        Drop probability (rounded to a multiple of 2**-16).
    device : torch.device or str, optional
        Where to build the mask.
    generator : torch.Generator, optional
        Source of the hash key (torch's global RNG when None).

    Returns
    -------
    Tensor
        ``bool`` tensor of ``shape``.

    Examples
    --------
    >>> bernoulli_mask((2, 3), 0.0).all().item()
    True
    """
    return _keep_mask(shape, p, torch.device(device or "cpu"), generator)


# --- the dropout family: unit noise, DropConnect, max-pooling dropout --------


def dropout(
    x: Tensor, p: float, *, shared_dims: Sequence[int] = (), generator: torch.Generator | None = None
) -> Tensor:
    r"""Inverted Bernoulli dropout (always stochastic).

    .. math:: y = x \odot m / (1 - p), \quad m_i \sim \mathrm{Bernoulli}(1 - p)

    so that :math:`E[y] = x`. The eval-mode rule (the expectation) is the
    identity.

    Parameters
    ----------
    x : Tensor
        Input of shape ``(N, ...)``.
    p : float
        Drop probability in [0, 1) (rounded to a multiple of 2**-16, see the module docstring).
    shared_dims : sequence of int
        Dimensions along which one mask value is shared: ``(2, 3)`` on
        ``(N, C, H, W)`` drops whole feature maps (spatial dropout, Tompson et
        al. 2015); ``(1,)`` on ``(N, T, F)`` keeps one mask across time steps
        (Gal & Ghahramani 2016b). The batch dimension 0 is never shared.
    generator : torch.Generator, optional
        Source of randomness; ``None`` uses torch's global RNG.

    Returns
    -------
    Tensor
        Same shape, dtype and device as ``x``.

    Examples
    --------
    >>> x = torch.ones(2, 4)
    >>> y = dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """
    if p == 0.0:
        return x
    return x * _scaled_keep_mask(x, p, shared_dims, generator)


def gaussian_dropout(
    x: Tensor, p: float, *, shared_dims: Sequence[int] = (), generator: torch.Generator | None = None
) -> Tensor:
    r"""Multiplicative Gaussian noise with the variance of dropout rate ``p``.

    .. math:: y = x \odot \xi, \quad \xi_i \sim N(1, \alpha), \; \alpha = p / (1 - p)

    (Srivastava et al. 2014, sec. 10; Kingma et al. 2015, sec. 3). The
    expectation (eval mode) is the identity. ``shared_dims`` as in
    :func:`dropout`.

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    p : float
        Dropout rate whose variance the noise has, alpha = p / (1 - p).
    shared_dims : sequence of int
        Dimensions that share one noise value (as in :func:`dropout`).
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        Shape of ``x``.

    Examples
    --------
    >>> x = torch.zeros(3, 2)
    >>> bool((gaussian_dropout(x, 0.5) == 0).all())
    True
    """
    if p == 0.0:
        return x
    std = math.sqrt(p / (1.0 - p))
    noise = torch.randn(_mask_shape(x, shared_dims), generator=generator, dtype=x.dtype, device=x.device)
    return x * noise.mul_(std).add_(1.0)


def unit_gaussian_dropout(
    x: Tensor, log_alpha: Tensor, *, dim: int = -1, generator: torch.Generator | None = None
) -> Tensor:
    r"""Multiplicative Gaussian noise with one learned variance per unit of dimension ``dim``.

    .. math:: y = x \odot \xi, \quad \xi_{\dots j \dots} \sim N(1, \alpha_j)

    independent for every element, with :math:`\alpha_j = \exp(\log\alpha_j)`
    shared along ``dim`` (the features of a linear layer's input ``(N, *, F)``:
    ``dim=-1``; the channels of a convolution's input ``(N, C, *)``: ``dim=1``).
    Kingma et al. 2015's variational dropout with one rate per input unit
    (arXiv:1506.02557, sec. 3.3, "Variational (A)").

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    log_alpha : Tensor
        ``(x.shape[dim],)`` log variances, or a scalar (one for all units).
    dim : int
        The dimension whose units own an alpha each.
    generator : torch.Generator, optional
        Source of the Gaussian noise (torch's global RNG when None).

    Returns
    -------
    Tensor
        Shape of ``x``.

    Examples
    --------
    >>> x = torch.ones(2, 5, 3)  # (N, T, F): one alpha per feature
    >>> unit_gaussian_dropout(x, torch.full((3,), -50.0)).allclose(x, atol=1e-6)
    True
    """
    dim = dim % x.ndim
    shape = [1] * x.ndim
    shape[dim] = -1
    std = log_alpha.mul(0.5).exp().reshape(shape if log_alpha.ndim else [])
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x * noise.mul_(std).add_(1.0)


def gaussian_noise(x: Tensor, std: float, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Additive Gaussian noise :math:`y = x + \epsilon`, :math:`\epsilon \sim N(0, std^2)` (Bishop 1995).

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    std : float
        Standard deviation of the additive noise.
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        Shape of ``x``.
    """
    if std == 0.0:
        return x
    return x + torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device).mul_(std)


def salt_and_pepper(
    x: Tensor, p: float, *, low: float = 0.0, high: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Salt-and-pepper corruption for denoising autoencoders (Vincent et al. 2010, sec. 4.2).

    Each element is replaced with probability ``p`` by ``low`` or ``high``
    (equally likely), otherwise kept. Masking noise (zeroing) is ``dropout``
    on the inputs.

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    p : float
        Fraction of elements corrupted.
    low, high : float
        The values a corrupted element takes (each with probability one half).
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        Shape of ``x``.
    """
    if p == 0.0:
        return x
    bits = random_bits(x.shape, device=x.device, generator=generator)
    threshold = min(round(p * 2**32) - 2**31, 2**31 - 1)
    hit = bits < threshold
    salt = (bits & 1).bool()  # the low bit is independent of the threshold test up to 2**-31
    return torch.where(hit, torch.where(salt, high, low).to(x.dtype), x)


#: The convolution of each number of spatial dimensions.
CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _chunks(n: int, per_item: int, budget: int = 2**24) -> list[slice]:
    step = max(1, budget // max(1, per_item))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def drop_connect_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None, p: float, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""DropConnect (Wan et al. 2013): a fresh Bernoulli mask on every weight for every example.

    .. math:: y_n = (W \odot M_n) x_n + b, \quad M_{n,ji} \sim \mathrm{Bernoulli}(1 - p)

    Not rescaled (the paper's convention): :math:`E[y_n] = (1-p) W x_n + b`.
    Costs O(N in out) memory and time, processed in chunks of examples.

    Parameters
    ----------
    x : Tensor
        ``(N, in_features)``.
    weight : Tensor
        ``(out_features, in_features)``.
    bias : Tensor, optional
    p : float
        Drop probability of each weight.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor
        ``(N, out_features)``.
    """
    if p == 0.0:
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])
    outs = []
    for sl in _chunks(flat.shape[0], weight.numel()):
        mask = _keep_mask((sl.stop - sl.start, *weight.shape), p, x.device, generator)
        outs.append(torch.einsum("ni,nji->nj", flat[sl], weight * mask))
    out = torch.cat(outs).reshape(*x.shape[:-1], weight.shape[0])
    return out if bias is None else out + bias


def drop_connect_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    p: float,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DropConnect for a convolution (1-, 2- or 3-D by ``weight.ndim``): one weight mask per example.

    The per-example masked kernels are applied as one grouped convolution.

    Parameters
    ----------
    x : Tensor
        ``(N, C_in, *)``.
    weight : Tensor
        ``(C_out, C_in, *kernel)``; its number of dimensions picks conv1d/2d/3d.
    bias : Tensor, optional
        ``(C_out,)``.
    p : float
        Drop probability of each weight.
    stride, padding, dilation
        As in ``torch.nn.functional.conv2d``.
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        ``(N, C_out, *)``, each example convolved with its own masked weights (not rescaled: the train rule).
    """
    conv = CONV_FUNCTIONS[weight.ndim - 2]
    if p == 0.0:
        return conv(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    outs = []
    for sl in _chunks(x.shape[0], weight.numel()):
        n = sl.stop - sl.start
        mask = _keep_mask((n, *weight.shape), p, x.device, generator)
        w = (weight * mask).reshape(n * weight.shape[0], *weight.shape[1:])
        xs = x[sl].reshape(1, n * x.shape[1], *x.shape[2:])
        y = conv(xs, w, None, stride=stride, padding=padding, dilation=dilation, groups=n)
        outs.append(y.reshape(n, weight.shape[0], *y.shape[2:]))
    out = torch.cat(outs)
    return out if bias is None else out + bias.view(1, -1, *([1] * (out.ndim - 2)))


def max_pool_dropout_expectation(x: Tensor, kernel_size: tuple[int, int], stride: tuple[int, int], p: float) -> Tensor:
    r"""Exact expectation of ``max_pool2d(x * m)`` over Bernoulli(1 - p) masks m.

    For a region with values sorted ascending :math:`a_{(1)} \le \dots \le a_{(n)}`
    and keep probability q, the largest kept unit is :math:`a_{(i)}` with
    probability :math:`q p^{n-i}`, and a dropped unit contributes 0. Hence

    .. math:: E = \sum_{i: a_{(i)} \ge 0} q p^{n-i} a_{(i)} + [a_{(n)} < 0]\, q^n a_{(n)}

    which for non-negative activations is Wu & Gu 2015's probabilistic
    weighted pooling :math:`\sum_i P_i a_{(i)}`, :math:`P_i = q p^{n-i}` (the
    all-dropped case giving 0). A kernel larger than the input raises torch's
    own error.

    Parameters
    ----------
    x : Tensor
        ``(N, C, H, W)``.
    kernel_size, stride : tuple of int
        Pooling window and stride.
    p : float
        Drop probability of each unit before the max.

    Returns
    -------
    Tensor
        The pooled expectation, ``(N, C, H_out, W_out)``.
    """
    kh, kw = kernel_size
    sh, sw = stride
    regions = x.unfold(2, kh, sh).unfold(3, kw, sw).flatten(-2)  # (N, C, OH, OW, n)
    a, _ = regions.sort(dim=-1)
    n = a.shape[-1]
    q = 1.0 - p
    weights = q * p ** torch.arange(n - 1, -1, -1, dtype=x.dtype, device=x.device)  # i = 1..n -> q p^(n-i)
    return (a.clamp_min(0) * weights).sum(-1) + q**n * a[..., -1].clamp_max(0)


# --- variational dropout: local reparameterization and the KL ----------------


def _gaussian_sample(mean: Tensor, var: Tensor, generator: torch.Generator | None) -> Tensor:
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    # 1e-8 keeps the square root differentiable where the variance is zero.
    return mean + var.add(1e-8).sqrt() * eps


def local_reparam_linear(
    x: Tensor,
    weight: Tensor,
    weight_var: Tensor,
    bias: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Linear layer with independent Gaussian weights, sampled per example.

    For weights :math:`w_{ji} \sim N(\theta_{ji}, \sigma^2_{ji})` the
    pre-activation of every example is Gaussian, so it is sampled directly
    (Kingma et al. 2015, eq. 8):

    .. math:: b_j \sim N\Big(\sum_i x_i \theta_{ji} + \beta_j,\;
              \sum_i x_i^2 \sigma^2_{ji}\Big)

    Parameters
    ----------
    x : Tensor
        ``(N, in_features)`` (any leading dimensions).
    weight, weight_var : Tensor
        Mean and variance of the weights, ``(out_features, in_features)``
        (``weight_var`` may broadcast, e.g. ``alpha * weight**2``).
    bias : Tensor, optional
        Deterministic bias ``(out_features,)``.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    Tensor
        ``(N, out_features)``.
    """
    mean = F.linear(x, weight, bias)
    var = F.linear(x * x, weight_var.expand_as(weight))
    return _gaussian_sample(mean, var, generator)


def local_reparam_conv(
    x: Tensor,
    weight: Tensor,
    weight_var: Tensor,
    bias: Tensor | None = None,
    *,
    stride: int | tuple[int, ...] = 1,
    padding: int | tuple[int, ...] | str = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Convolution with independent Gaussian weights, sampled per output.

    The conv1d/2d/3d variant follows from ``weight.ndim - 2``. Every output
    unit is Gaussian with mean ``conv(x, theta) + bias`` and variance
    ``conv(x**2, sigma**2)`` (Kingma et al. 2015, sec. 2.3; Molchanov et al.
    2017, sec. 4.3), and is sampled independently.

    Parameters
    ----------
    x : Tensor
        ``(N, C_in, *)``.
    weight : Tensor
        Mean weights ``(C_out, C_in / groups, *kernel)``.
    weight_var : Tensor
        Variance of each weight, shape of ``weight``.
    bias : Tensor, optional
        ``(C_out,)``.
    stride, padding, dilation, groups
        As in ``torch.nn.functional.conv2d``.
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        ``(N, C_out, *)``: one Gaussian draw of every output.
    """
    conv = CONV_FUNCTIONS[weight.ndim - 2]
    kw: dict[str, Any] = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    mean = conv(x, weight, bias, **kw)
    var = conv(x * x, weight_var.expand_as(weight), None, **kw)
    return _gaussian_sample(mean, var, generator)


# Molchanov et al. 2017, eq. 14.
_K1, _K2, _K3 = 0.63576, 1.87320, 1.48695
# Kingma et al. 2015, sec. 3.3 (fit for alpha <= 1).
_C1, _C2, _C3 = 1.16145124, -1.50204118, 0.58629921
# Constant of the true KL: KL(alpha) = -0.5 log alpha + E log|1 + sqrt(alpha) z|
# + (euler_gamma + log 2) / 2, chosen so that KL -> 0 as alpha -> infinity
# (E log|z| = -(euler_gamma + log 2) / 2 for z ~ N(0, 1)).
KL_CONSTANT = (0.5772156649015329 + math.log(2.0)) / 2.0


def kl_log_uniform(log_alpha: Tensor, approximation: KLApproximation = "molchanov") -> Tensor:
    r"""KL(q || p) of a weight ``N(theta, alpha theta^2)`` and the log-uniform prior.

    Elementwise, in nats, normalised so that the KL tends to 0 as alpha grows.

    ``"molchanov"`` (Molchanov et al. 2017, eq. 14; valid for every alpha):

    .. math:: \mathrm{KL} \approx k_1 - k_1 \sigma(k_2 + k_3 \log\alpha)
              + \tfrac12 \log(1 + 1/\alpha)

    ``"kingma"`` (Kingma et al. 2015, sec. 3.3; valid for alpha <= 1):

    .. math:: \mathrm{KL} \approx C - \tfrac12 \log\alpha - c_1\alpha
              - c_2\alpha^2 - c_3\alpha^3

    with :math:`C = (\gamma + \log 2)/2`, the constant for which the
    polynomial matches the exact KL as alpha -> 0.

    Parameters
    ----------
    log_alpha : Tensor
        Natural log of the noise variance alpha.
    approximation : {"molchanov", "kingma"}
        Which approximation to use.

    Returns
    -------
    Tensor
        KL per element, same shape as ``log_alpha``.

    Examples
    --------
    >>> round(float(kl_log_uniform(torch.tensor(0.0))), 3)
    0.431
    """
    if approximation == "molchanov":
        return _K1 - _K1 * torch.sigmoid(_K2 + _K3 * log_alpha) + 0.5 * F.softplus(-log_alpha)
    if approximation == "kingma":
        a = log_alpha.exp()
        return KL_CONSTANT - 0.5 * log_alpha - a * (_C1 + a * (_C2 + a * _C3))
    raise ValueError(
        f"The 'approximation' parameter of kl_log_uniform must be one of 'molchanov', 'kingma'. "
        f"Got {approximation!r} instead."
    )


class _AdditiveKL(torch.autograd.Function):
    """Summed Molchanov KL of (theta, log sigma^2), its gradient computed with the value.

    The forward pass computes the KL and both gradients in about twenty
    weight-sized passes over five buffers with four transcendental functions
    (exp(-log alpha) serves the softplus and the second sigmoid); the
    backward pass only scales them. Autograd of the composed formula takes
    about twice the passes and allocates about twenty weight-sized
    temporaries.
    """

    @staticmethod
    def forward(ctx: Any, weight: Tensor, log_sigma2: Tensor) -> Tensor:
        # Five weight-sized buffers, reused in place (each fresh buffer of a few MB costs page faults).
        w2 = weight.square().add_(1e-16)
        la = torch.log(w2)
        torch.sub(log_sigma2, la, out=la)  # unclipped log alpha
        e = la.clamp(-8.0, 8.0)  # clamp keeps NaN
        inside = torch.abs(la, out=la).lt_(8.0)  # the clip's gradient mask as 0/1 (NaN: 0)
        s = e.mul(_K3).add_(_K2).sigmoid_()
        e.neg_().exp_()  # exp(-log alpha)
        onep = e.add(1.0)
        torch.div(e, onep, out=e)  # sigmoid(-log alpha)
        kl = (_K1 * s.numel() - _K1 * s.sum()) + 0.5 * onep.log_().sum()  # softplus(-la) = log(1 + exp(-la))
        # d KL / d log alpha = -k1 k3 s (1 - s) - 0.5 sigmoid(-log alpha)
        grad_ls2 = s.addcmul_(s, s, value=-1.0).mul_(-_K1 * _K3).sub_(e, alpha=0.5).mul_(inside)
        # d log alpha / d theta = -2 theta / (theta^2 + 1e-16)
        grad_w = torch.div(weight, w2, out=w2).mul_(grad_ls2).mul_(-2.0)
        ctx.save_for_backward(grad_w, grad_ls2)
        return kl

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        grad_w, grad_ls2 = ctx.saved_tensors
        return grad_w * grad_out, grad_ls2 * grad_out


def kl_log_uniform_additive(weight: Tensor, log_sigma2: Tensor) -> Tensor:
    r"""Summed KL of the additive parameterisation (Molchanov et al. 2017).

    Equal to ``kl_log_uniform(clip(log_sigma2 - log(weight**2), -8, 8)).sum()``
    (the ``"molchanov"`` approximation), with a fused backward pass. NaN in
    either parameter gives NaN.

    Parameters
    ----------
    weight : Tensor
        theta, the mean weights.
    log_sigma2 : Tensor
        log sigma^2 of each weight, shape of ``weight``.

    Returns
    -------
    Tensor
        Scalar: the KL summed over weights (nats).

    Examples
    --------
    >>> w, ls2 = torch.ones(3), torch.zeros(3)
    >>> bool(torch.isclose(kl_log_uniform_additive(w, ls2), 3 * kl_log_uniform(torch.tensor(0.0))))
    True
    """
    out: Tensor = _AdditiveKL.apply(weight, log_sigma2)  # type: ignore[no-untyped-call]
    return out


# --- concrete dropout --------------------------------------------------------


def relaxed_keep_mask(
    x: Tensor,
    p: Tensor,
    temperature: float,
    *,
    shared_dims: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The concrete (relaxed Bernoulli) keep mask of dropout, scaled by 1/(1 - p) (Gal, Hron & Kendall 2017, eq. 5).

    .. math:: m = \big(1 - \sigma\big(\tfrac1t(\log p - \log(1-p) + \log u - \log(1-u))\big)\big) / (1 - p),
        \quad u \sim U(0, 1)

    Differentiable in ``p`` (the reparameterisation through u); as t -> 0 it
    becomes the Bernoulli(1 - p) keep mask of :func:`dropout`.

    Parameters
    ----------
    x : Tensor
        The input the mask multiplies (its shape, dtype and device).
    p : Tensor
        Scalar drop probability in (0, 1), with a graph when it is learned.
    temperature : float
        t > 0.
    shared_dims : sequence of int
        Dimensions sharing one mask value, as in :func:`dropout`.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor
        Broadcastable to ``x``.
    """
    eps = 1e-7
    u = torch.rand(_mask_shape(x, shared_dims), dtype=x.dtype, device=x.device, generator=generator)
    p = p.to(x.dtype)
    logits = (torch.log(p + eps) - torch.log1p(eps - p) + torch.log(u + eps) - torch.log1p(eps - u)) / temperature
    return (1.0 - torch.sigmoid(logits)) / (1.0 - p)


# --- depth: DropPath and stochastic depth ------------------------------------


def drop_path(x: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Drop whole examples of a residual branch (DropPath / stochastic depth).

    .. math:: y_n = x_n\, b_n / (1 - p), \quad b_n \sim \mathrm{Bernoulli}(1 - p)

    One mask value per example, shape ``(N,) + (1,) * (x.ndim - 1)``, scaled
    as timm's ``drop_path`` so that the eval rule is the identity.

    Parameters
    ----------
    x : Tensor
        ``(N, ...)``: the branch's output.
    p : float
        Drop probability of each example.
    generator : torch.Generator, optional
        Source of the randomness (torch's global RNG when None).

    Returns
    -------
    Tensor
        Shape of ``x``.
    """
    if p == 0.0:
        return x
    return x * _scaled_keep_mask(x, p, tuple(range(1, x.ndim)), generator)


def drop_path_join_mask(
    n: int,
    num_paths: int,
    p_local: float,
    p_global: float,
    *,
    per_example: bool,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """FractalNet's keep mask of a join (Larsson et al. 2017, sec. 3.1): ``(n, num_paths)``, never an empty row.

    With probability ``p_global`` a row (the whole batch unless
    ``per_example``) keeps one path chosen uniformly; otherwise every path is
    dropped with probability ``p_local`` independently per example, and a row
    with every path dropped keeps one chosen uniformly.

    Parameters
    ----------
    n : int
        Examples.
    num_paths : int
        Paths into the join.
    p_local, p_global : float
        Local drop probability per path; probability of global drop-path.
    per_example : bool
        Draw the global/local choice per example (sampling) instead of once
        per batch (training).
    device : torch.device or str, optional
        Where to build the mask.
    generator : torch.Generator, optional
        Source of the draws (torch's global RNG when None).

    Returns
    -------
    Tensor
        ``bool`` mask ``(n, num_paths)``.

    Examples
    --------
    >>> drop_path_join_mask(4, 3, 1.0, 0.0, per_example=True).sum(1).tolist()  # everything dropped: one kept
    [1, 1, 1, 1]
    """
    k, rows = num_paths, n if per_example else 1
    is_global = torch.rand(rows, 1, device=device, generator=generator) < p_global
    chosen = torch.randint(0, k, (rows, 1), device=device, generator=generator)
    global_mask = torch.zeros(rows, k, device=device, dtype=torch.bool).scatter_(1, chosen, True)
    local = torch.rand(n, k, device=device, generator=generator) >= p_local
    fallback = torch.zeros(n, k, device=device, dtype=torch.bool).scatter_(
        1, torch.randint(0, k, (n, 1), device=device, generator=generator), True
    )
    local = torch.where(local.any(1, keepdim=True), local, fallback)
    return torch.where(is_global.expand(n, 1), global_mask.expand(n, k), local)


# --- moments: fast dropout and moment matching -------------------------------


def relu_moments(mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
    r"""Exact mean and variance of :math:`\max(0, z)` for :math:`z \sim N(\mu, s^2)`.

    .. math:: E = \mu\Phi(\mu/s) + s\varphi(\mu/s), \quad
              E[\max(0,z)^2] = (\mu^2 + s^2)\Phi(\mu/s) + \mu s \varphi(\mu/s)

    (Wang & Manning 2013, sec. 3; Frey & Hinton 1999). ``var = 0`` gives
    ``max(0, mean)`` and zero variance.

    Parameters
    ----------
    mean, var : Tensor
        Mean and variance of the Gaussian input z.

    Returns
    -------
    mean, var : Tensor
        Mean and variance of max(0, z), shape of ``mean``.
    """
    s = var.clamp_min(1e-20).sqrt()
    r = mean / s
    cdf = torch.special.ndtr(r)
    pdf = torch.exp(-0.5 * r * r) / math.sqrt(2 * math.pi)
    m1 = mean * cdf + s * pdf
    m2 = (mean * mean + var) * cdf + mean * s * pdf
    return m1, (m2 - m1 * m1).clamp_min(0.0)


# Wang & Manning 2013, eq. 6-7: probit approximations of the sigmoid.
_SIG_A = 4 - 2 * math.sqrt(2)

_SIG_B = -math.log(math.sqrt(2) + 1)


def sigmoid_moments(mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
    r"""Approximate mean and variance of :math:`\sigma(z)` for :math:`z \sim N(\mu, s^2)`.

    Probit approximation (Wang & Manning 2013, eq. 6-7):
    :math:`E\sigma(z) \approx \sigma(\mu / \sqrt{1 + \pi s^2/8})` and
    :math:`E\sigma(z)^2 \approx \sigma(a(\mu + b)/\sqrt{1 + \pi a^2 s^2 / 8})`
    with :math:`a = 4 - 2\sqrt2`, :math:`b = -\log(\sqrt2 + 1)`. Accuracy
    (measured against Monte Carlo): about 0.005 for the mean and 0.015 for
    the second moment, so the variance has an absolute error of about 0.015.

    Parameters
    ----------
    mean, var : Tensor
        Mean and variance of the Gaussian input z.

    Returns
    -------
    mean, var : Tensor
        Approximate mean and variance of sigmoid(z), shape of ``mean``.
    """
    m1 = torch.sigmoid(mean / torch.sqrt(1 + math.pi * var / 8))
    m2 = torch.sigmoid(_SIG_A * (mean + _SIG_B) / torch.sqrt(1 + math.pi * _SIG_A**2 * var / 8))
    return m1, (m2 - m1 * m1).clamp_min(0.0)


def expected_gaussian_nll(mean: Tensor, var: Tensor, target: Tensor, noise_var: Tensor | float) -> Tensor:
    r"""Expected Gaussian NLL over a Gaussian prediction: fast dropout's training objective.

    .. math:: E_f[-\log N(y; f, \sigma^2)] = \tfrac12\log(2\pi\sigma^2) + \frac{(y - m)^2 + v}{2\sigma^2}

    averaged over examples (Wang & Manning 2013, sec. 4).

    Parameters
    ----------
    mean, var : Tensor
        Mean and variance of the Gaussian prediction f (from :func:`bayesdrop.moment_propagation`).
    target : Tensor
        y, shape of ``mean``.
    noise_var : Tensor or float
        Observation noise variance sigma^2.

    Returns
    -------
    Tensor
        Scalar: the mean over examples (nats).
    """
    nv = torch.as_tensor(noise_var, dtype=mean.dtype, device=mean.device)
    return (0.5 * torch.log(2 * math.pi * nv) + ((target - mean) ** 2 + var) / (2 * nv)).mean()


def drop_connect_moment_matching(
    x: Tensor,
    mean_affine: Tensor,
    var_affine: Tensor,
    bias: Tensor | None,
    activation: Callable[[Tensor], Tensor],
    *,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""DropConnect's moment-matching inference rule (Wan et al. 2013, sec. 4).

    The pre-activation :math:`u = (W \odot M) x` with :math:`M_{ij} \sim
    \mathrm{Bernoulli}(q)` is approximated by a Gaussian with its first two
    moments, :math:`N(q W x, q (1 - q) W^2 x^2)`; the output is the activation
    averaged over ``num_samples`` draws of it (bias added to every draw).

    Parameters
    ----------
    x : Tensor
        The layer's input (for its dtype and device).
    mean_affine, var_affine : Tensor
        :math:`q W x` and :math:`q (1 - q) W^2 x^2` computed by the layer
        (linear or convolution), shape ``(N, C, *)`` or ``(N, C)``.
    bias : Tensor, optional
        Added to every draw along dim 1.
    activation : callable
        Applied to each draw before averaging.
    num_samples : int
        Draws of the Gaussian pre-activation.
    generator : torch.Generator, optional
        Source of the draws (torch's global RNG when None).

    Returns
    -------
    Tensor
        The averaged activation, shape of ``mean_affine``.

    Examples
    --------
    >>> m, v = torch.full((1, 2), 3.0), torch.zeros(1, 2)  # no variance: relu(3) on every draw
    >>> drop_connect_moment_matching(m, m, v, None, torch.relu, num_samples=4).round(decimals=4).tolist()
    [[3.0, 3.0]]
    """
    eps = torch.randn((num_samples, *mean_affine.shape), generator=generator, dtype=x.dtype, device=x.device)
    u = mean_affine + var_affine.add(1e-12).sqrt() * eps
    if bias is not None:
        u = u + bias.view(-1, *([1] * (mean_affine.ndim - 2)))
    return activation(u).mean(0)
