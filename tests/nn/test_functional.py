from __future__ import annotations

import math

import pytest
import torch

import bayesdrop.nn.functional as BF
from tests.conftest import z_value

M64 = (1 << 64) - 1


def _splitmix_reference(key: int, i: int) -> int:
    z = (key + i * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def test_random_bits_match_reference_splitmix64():
    g = torch.Generator().manual_seed(3)
    key = int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64, generator=g.clone_state()))
    bits = BF.random_bits((10,), generator=g).view(torch.int64)  # 5 64-bit words
    for i, word in enumerate(bits.tolist()):
        assert word & M64 == _splitmix_reference(key & M64, i)


def test_random_bits_each_bit_is_fair():
    # Each of the 32 bits is Bernoulli(1/2): mean within z * 0.5 / sqrt(n).
    n = 200_000
    bits = BF.random_bits((n,), generator=torch.Generator().manual_seed(0)).to(torch.int64)
    z = z_value(32)
    for b in range(32):
        mean = float(((bits >> b) & 1).double().mean())
        assert abs(mean - 0.5) <= z * 0.5 / math.sqrt(n), b


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_moments(p):
    # y = c m / (1 - p): E y = c, Var y = c^2 p / (1 - p); the fraction of zeros
    # is p with variance p (1 - p) / n. A missing 1/(1-p) shifts the mean by
    # c p, more than 100 standard errors at n = 400k.
    n, c = 400_000, 3.0
    y = BF.dropout(torch.full((n,), c, dtype=torch.float64), p, generator=torch.Generator().manual_seed(1))
    z = z_value(2)
    var = c * c * p / (1 - p)
    assert abs(float(y.mean()) - c) <= z * math.sqrt(var / n)
    frac = float((y == 0).double().mean())
    assert abs(frac - p) <= z * math.sqrt(p * (1 - p) / n)
    assert set(torch.unique(y).tolist()) == {0.0, c * (1.0 / (1 - p))}


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_gaussian_dropout_moments_match_bernoulli(p):
    # xi ~ N(1, alpha): mean c, variance c^2 alpha, the same two moments as
    # Bernoulli dropout. Sample variance of Gaussians has SE var sqrt(2/(n-1)).
    n, c = 400_000, 2.0
    alpha = p / (1 - p)
    y = BF.gaussian_dropout(torch.full((n,), c, dtype=torch.float64), p, generator=torch.Generator().manual_seed(2))
    z = z_value(2)
    var = c * c * alpha
    assert abs(float(y.mean()) - c) <= z * math.sqrt(var / n)
    assert abs(float(y.var()) - var) <= z * var * math.sqrt(2 / (n - 1))


def test_p_zero_is_identity_and_dtype_device_kept():
    x = torch.randn(4, 5, dtype=torch.float64)
    assert BF.dropout(x, 0.0) is x
    assert BF.gaussian_dropout(x, 0.0) is x
    for fn in (BF.dropout, BF.gaussian_dropout):
        y = fn(x.half().float().to(torch.float16), 0.3)
        assert y.dtype == torch.float16 and y.shape == x.shape and y.device == x.device


def test_same_generator_same_output():
    x = torch.randn(16, 8)
    for fn in (BF.dropout, BF.gaussian_dropout):
        a = fn(x, 0.4, generator=torch.Generator().manual_seed(5))
        b = fn(x, 0.4, generator=torch.Generator().manual_seed(5))
        c = fn(x, 0.4, generator=torch.Generator().manual_seed(6))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_shared_dims_drop_whole_channels():
    x = torch.ones(64, 16, 5, 7)
    y = BF.dropout(x, 0.5, shared_dims=(2, 3), generator=torch.Generator().manual_seed(0))
    per_channel = y.flatten(2)
    assert torch.equal(per_channel.amin(-1), per_channel.amax(-1))  # constant per feature map
    assert 0 < float((per_channel[..., 0] == 0).double().mean()) < 1
    with pytest.raises(ValueError, match="batch dimension 0"):
        BF.dropout(x, 0.5, shared_dims=(0,))


def _moment_check(samples: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, num_checks: int) -> None:
    n = samples.shape[0]
    z = z_value(num_checks)
    assert torch.all((samples.mean(0) - mean).abs() <= z * (var / n).sqrt())
    assert torch.all((samples.var(0) - var).abs() <= z * var * math.sqrt(2 / (n - 1)))


def test_local_reparam_linear_matches_explicit_weight_sampling():
    # b = x W^T with W ~ N(theta, sigma^2) independent has mean x theta^T + beta
    # and variance x^2 (sigma^2)^T. Both samplers are checked against the
    # analytic moments (outputs are Gaussian, so the sample variance has SE
    # var sqrt(2/(n-1))).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, dtype=torch.float64, generator=g)
    theta = torch.randn(3, 6, dtype=torch.float64, generator=g)
    sigma2 = torch.rand(3, 6, dtype=torch.float64, generator=g) * 0.5
    bias = torch.randn(3, dtype=torch.float64, generator=g)
    mean = (x @ theta.T + bias)[0]
    var = ((x * x) @ sigma2.T)[0]
    n = 100_000
    local = BF.local_reparam_linear(x.expand(n, -1), theta, sigma2, bias, generator=g)
    w = theta + sigma2.sqrt() * torch.randn(n, 3, 6, dtype=torch.float64, generator=g)
    explicit = torch.einsum("i,nji->nj", x[0], w) + bias
    _moment_check(local, mean, var, 12)
    _moment_check(explicit, mean, var, 12)


def test_local_reparam_conv_matches_explicit_weight_sampling():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=g)
    theta = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=g)
    sigma2 = torch.rand(3, 2, 3, 3, dtype=torch.float64, generator=g) * 0.3
    mean = torch.nn.functional.conv2d(x, theta)[0]
    var = torch.nn.functional.conv2d(x * x, sigma2)[0]
    n = 20_000
    local = BF.local_reparam_conv(x.expand(n, -1, -1, -1), theta, sigma2, generator=g)
    explicit = torch.stack(
        [
            torch.nn.functional.conv2d(
                x, theta + sigma2.sqrt() * torch.randn(theta.shape, dtype=torch.float64, generator=g)
            )[0]
            for _ in range(n)
        ]
    )
    _moment_check(local, mean, var, 2 * 2 * 27)
    _moment_check(explicit, mean, var, 2 * 2 * 27)


@pytest.mark.parametrize("log_alpha", [-8.0, -6.0, -4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0, 6.0, 8.0])
def test_kl_approximations_against_monte_carlo(log_alpha):
    # True KL (normalised to 0 at alpha -> inf):
    #   KL = -0.5 log alpha + E log|1 + sqrt(alpha) z| + (gamma + log 2) / 2.
    # MC estimate of the expectation with its standard error; the remaining
    # allowance is the approximation's own error, measured on this grid:
    # Molchanov et al.'s fit is within 0.01 nats everywhere, Kingma et al.'s
    # polynomial within 0.045 nats for alpha <= 1 (it diverges above).
    n = 2_000_000
    zs = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logs = torch.log((1 + math.exp(log_alpha / 2) * zs).abs())
    truth = -0.5 * log_alpha + float(logs.mean()) + BF.KL_CONSTANT
    se = float(logs.std()) / math.sqrt(n)
    z = z_value(22)
    la = torch.tensor(log_alpha, dtype=torch.float64)
    assert abs(float(BF.kl_log_uniform(la)) - truth) <= 0.01 + z * se
    if log_alpha <= 0:
        assert abs(float(BF.kl_log_uniform(la, "kingma")) - truth) <= 0.045 + z * se


def test_kl_is_decreasing_and_unknown_approximation_rejected():
    la = torch.linspace(-8, 8, 101)
    kl = BF.kl_log_uniform(la)
    assert torch.all(kl[1:] < kl[:-1]) and torch.all(kl > 0)
    with pytest.raises(ValueError, match="'approximation' parameter of kl_log_uniform must be one of"):
        BF.kl_log_uniform(la, "exact")


def test_gradcheck_with_fixed_noise():
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    s2 = (torch.rand(2, 4, dtype=torch.float64) + 0.1).requires_grad_()
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def fixed(fn):  # a fresh generator with the same seed fixes the noise
        return lambda *a: fn(*a, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(fixed(BF.local_reparam_linear), (x, w, s2, b))
    xc = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    wc = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    sc = (torch.rand(3, 2, 2, 2, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(fixed(BF.local_reparam_conv), (xc, wc, sc))
    assert torch.autograd.gradcheck(fixed(lambda t, generator: BF.dropout(t, 0.3, generator=generator)), (x,))
    assert torch.autograd.gradcheck(fixed(lambda t, generator: BF.gaussian_dropout(t, 0.3, generator=generator)), (x,))
    la = torch.linspace(-7, 7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(BF.kl_log_uniform, (la,))


def test_hand_written_kl_backward_equals_autograd_of_the_plain_formula():
    # kl_log_uniform_additive has a hand-fused backward; flipping the sign of one of its terms passed the
    # training tests. Compare it with autograd of the formula it fuses and with finite differences
    # (gradcheck, float64), on points away from the clip at |log alpha| = 8 where the gradient jumps.
    kl_log_uniform_additive, kl_log_uniform = BF.kl_log_uniform_additive, BF.kl_log_uniform
    g = torch.Generator().manual_seed(0)
    w = (torch.rand(40, generator=g, dtype=torch.float64) + 0.1) * torch.where(torch.rand(40, generator=g) < 0.5, -1, 1)
    ls2 = torch.log(w**2) + torch.linspace(-6.0, 6.0, 40, dtype=torch.float64)
    w.requires_grad_(True)
    ls2.requires_grad_(True)
    gw, gs = torch.autograd.grad(kl_log_uniform_additive(w, ls2), (w, ls2))
    plain = kl_log_uniform((ls2 - torch.log(w**2 + 1e-16)).clamp(-8, 8)).sum()
    rw, rs = torch.autograd.grad(plain, (w, ls2))
    torch.testing.assert_close(gw, rw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gs, rs, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(kl_log_uniform_additive, (w, ls2))
    # Scaled upstream gradient (grad_out != 1) enters linearly.
    g3 = torch.autograd.grad(3.0 * kl_log_uniform_additive(w, ls2), w)[0]
    torch.testing.assert_close(g3, 3 * rw)


def test_expected_gaussian_nll_against_its_closed_form_and_monte_carlo():
    # Mutation testing found the formula unpinned. E_f[-log N(y; f, s2)] for f ~ N(m, v) is
    # 0.5 log(2 pi s2) + ((y - m)^2 + v) / (2 s2); by hand for y = 1, m = 0.5, v = 0.25, s2 = 0.5:
    # 0.5 log(pi) + (0.25 + 0.25) / 1 = 0.5 log(pi) + 0.5. Monte Carlo over 400k draws of f agrees within its SE.
    t = torch.tensor
    got = BF.expected_gaussian_nll(
        t([0.5], dtype=torch.float64), t([0.25], dtype=torch.float64), t([1.0], dtype=torch.float64), 0.5
    )
    assert float(got) == pytest.approx(0.5 * math.log(math.pi) + 0.5, rel=1e-12)
    g = torch.Generator().manual_seed(0)
    m, v, y, s2 = t([0.3, -1.0]), t([0.5, 2.0]), t([1.0, 0.0]), t([0.2, 1.5])
    f = m + v.sqrt() * torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    nll = 0.5 * torch.log(2 * math.pi * s2) + (y - f) ** 2 / (2 * s2)
    mc = nll.mean(0)
    exact = torch.stack([BF.expected_gaussian_nll(m[i : i + 1], v[i : i + 1], y[i : i + 1], s2[i]) for i in range(2)])
    assert torch.all((mc - exact).abs() <= z_value(2) * nll.std(0) / math.sqrt(400_000))


def test_drop_connect_conv_passes_stride_padding_dilation_and_bias():
    # Mutation testing: the convolution options were unpinned. With p = 0 (the early return) and with p so
    # small that every weight is kept (the masked path: p * 2**32 < 1), the output is the plain convolution.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 9, 9, generator=g, dtype=torch.float64)
    w = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    kw = {"stride": 2, "padding": 1, "dilation": 2}
    expected = torch.nn.functional.conv2d(x, w, b, **kw)
    for p in (0.0, 1e-12):
        torch.testing.assert_close(BF.drop_connect_conv(x, w, b, p, **kw), expected)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.001])
def test_mask_keep_rate_is_fair(p):
    # Each element is kept with probability q = 1 - round(p 2^16) / 2^16 (within 7.7e-6 of 1 - p): the kept
    # fraction of n elements has SE sqrt(q (1 - q) / n). n = 4M resolves p = 0.001 to 1.6e-5, so a mask that
    # ignored p below 2^-8 (an 8-bit field) or used the wrong tail (keeping p instead of 1 - p) fails.
    n = 4_000_000
    mask = BF.bernoulli_mask((n,), p, generator=torch.Generator().manual_seed(int(p * 1000)))
    q = 1 - round(p * 2**16) / 2**16
    assert abs(q - (1 - p)) <= 2**-17
    frac = float(mask.double().mean())
    assert abs(frac - q) <= z_value(4) * math.sqrt(q * (1 - q) / n), (frac, q)


def test_mask_fields_bits_fair_and_independent_across_rows_and_calls():
    # Every bit of the 16-bit fields is Bernoulli(1/2) (as test_random_bits_each_bit_is_fair for the int32 view),
    # and masks are uncorrelated between neighbouring rows, neighbouring columns and two calls: the sample
    # correlation of independent Bernoulli(1/2) pairs has SE 1/sqrt(n).
    g = torch.Generator().manual_seed(5)
    n = 400_000
    words = BF._hash_words(n // 4, BF._draw_key(g), "cpu").view(torch.int16).to(torch.int64)
    z = z_value(16 + 3)
    for b in range(16):
        mean = float(((words >> b) & 1).double().mean())
        assert abs(mean - 0.5) <= z * 0.5 / math.sqrt(n), b
    rows, cols = 1000, 400
    a = BF.bernoulli_mask((rows, cols), 0.5, generator=g).double()
    b = BF.bernoulli_mask((rows, cols), 0.5, generator=g).double()

    def corr(u, v):
        u, v = u - u.mean(), v - v.mean()
        return float((u * v).mean() / (u.std() * v.std()))

    m = (rows - 1) * cols
    assert abs(corr(a[1:], a[:-1])) <= z / math.sqrt(m)  # row i vs row i + 1 (4 fields of one hash span columns)
    assert abs(corr(a[:, 1:], a[:, :-1])) <= z / math.sqrt(rows * (cols - 1))  # neighbouring fields of one hash
    assert abs(corr(a, b)) <= z / math.sqrt(rows * cols)  # two samples


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_equals_the_boolean_mask_of_the_same_key(dtype, p):
    # dropout builds its float mask arithmetically (sign(bits - t + 1/2) + 1); it must be exactly the boolean
    # mask bits >= t of the same key, scaled, in every dtype (the arithmetic runs in float32 for half types).
    g = torch.Generator().manual_seed(11)
    x = torch.ones(300, 70, dtype=dtype)
    y = BF.dropout(x, p, generator=g.clone_state())
    mask = BF.bernoulli_mask(x.shape, p, generator=g.clone_state())
    assert y.dtype == dtype
    assert torch.equal(y != 0, mask)
    assert torch.equal(y[mask], torch.full_like(y[mask], 1.0 / (1.0 - p)))


def test_fused_kl_value_and_clip_equal_the_plain_formula():
    # The fused forward computes softplus(-log alpha) as log(1 + exp(-log alpha)) after the clip; compare it
    # with the composed formula over log alpha in [-12, 12] (beyond the clip both ways), and NaN propagates.
    w = torch.linspace(0.1, 2.0, 97, dtype=torch.float64)
    ls2 = torch.log(w**2) + torch.linspace(-12.0, 12.0, 97, dtype=torch.float64)
    plain = BF.kl_log_uniform((ls2 - torch.log(w**2 + 1e-16)).clamp(-8, 8)).sum()
    torch.testing.assert_close(BF.kl_log_uniform_additive(w, ls2), plain, rtol=1e-12, atol=1e-12)
    w32, ls32 = w.float(), ls2.float()
    plain32 = BF.kl_log_uniform((ls32 - torch.log(w32**2 + 1e-16)).clamp(-8, 8)).sum()
    torch.testing.assert_close(BF.kl_log_uniform_additive(w32, ls32), plain32, rtol=1e-5, atol=1e-5)
    bad = ls2.clone()
    bad[3] = float("nan")
    assert torch.isnan(BF.kl_log_uniform_additive(w, bad))
