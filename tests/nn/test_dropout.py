from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bayesdrop
import bayesdrop.nn.functional as BF
from bayesdrop.nn import Dropout, GaussianDropout, GaussianNoise, SpatialDropout
from tests.conftest import t_value, z_value


@pytest.mark.parametrize("cls", [Dropout, GaussianDropout])
def test_eval_is_identity(cls):
    x = torch.randn(8, 5)
    assert torch.equal(cls(0.7).eval()(x), x)


@pytest.mark.parametrize(("cls", "fn"), [(Dropout, BF.dropout), (GaussianDropout, BF.gaussian_dropout)])
def test_module_equals_functional(cls, fn):
    x = torch.randn(8, 5)
    torch.manual_seed(11)
    a = cls(0.3, shared_dims=(1,))(x.unsqueeze(1).expand(8, 4, 5))
    torch.manual_seed(11)
    b = fn(x.unsqueeze(1).expand(8, 4, 5), 0.3, shared_dims=(1,))
    assert torch.equal(a, b)


def test_time_consistent_mask_on_sequences():
    # shared_dims=(1,) on (N, T, F): one mask per (example, feature) for all steps.
    x = torch.ones(32, 10, 6)
    y = Dropout(0.5, shared_dims=(1,)).train()(x)
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert 0 < float((y == 0).double().mean()) < 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"p": 1.0}, ValueError, r"The 'p' parameter of Dropout must be a float in \[0, 1\). Got 1.0 instead."),
        ({"p": -0.1}, ValueError, r"Got -0.1 instead"),
        ({"p": float("nan")}, ValueError, r"Got nan instead"),
        ({"p": "0.5"}, TypeError, r"'p' parameter of Dropout must be a float in \[0, 1\). Got '0.5'"),
        ({"p": 0.5, "shared_dims": (0, 1)}, ValueError, r"'shared_dims' parameter of Dropout"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Dropout(**kwargs)


def test_gaussian_dropout_rejects_p_one_and_reports_alpha():
    with pytest.raises(ValueError, match=r"The 'p' parameter of GaussianDropout must be a float in \[0, 1\). Got 1.5"):
        GaussianDropout(1.5)
    assert GaussianDropout(0.5).alpha == 1.0
    assert "p=0.2, shared_dims=(2, 3)" in repr(GaussianDropout(0.2, shared_dims=(2, 3)))


def test_sampling_moments_under_mode_protocol():
    # Under sampling (eval mode) the layer is stochastic with the training
    # moments: E = x, Var = x^2 p/(1-p).
    torch.manual_seed(0)
    layer = Dropout(0.25).eval()
    x = torch.full((200_000,), 2.0, dtype=torch.float64)
    with bayesdrop.sampling(layer):
        y = layer(x)
    var = 4.0 * 0.25 / 0.75
    assert abs(float(y.mean()) - 2.0) <= z_value() * math.sqrt(var / x.numel())


# --- spatial dropout, input noise, salt-and-pepper ---
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_spatial_dropout_drops_whole_maps_with_scaling(dims):
    layer = SpatialDropout(0.5, dims=dims).train()
    x = torch.ones(16, 8, *([4] * dims))
    y = layer(x).flatten(2)
    assert torch.equal(y.amin(-1), y.amax(-1))  # constant per feature map
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    with pytest.raises(ValueError, match="'dims' parameter of SpatialDropout"):
        SpatialDropout(0.5, dims=4)


def test_bishop_additive_noise_matches_ridge():
    # Least squares on K noisy copies of X (GaussianNoise, variance s^2) converges
    # to ridge with penalty N s^2 (Bishop 1995). SE from 10 disjoint groups of copies.
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    n, s = 40, 0.5
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=n)
    ridge = Ridge(alpha=n * s**2, fit_intercept=False).fit(X, y).coef_
    noisy = bayesdrop.sample(GaussianNoise(s), torch.tensor(X), 20_000, seed=0).numpy()  # (K, N, 3)
    ys = np.broadcast_to(y, noisy.shape[:2])

    def lstsq(xs, yy):
        a = np.einsum("kni,knj->ij", xs, xs)
        return np.linalg.solve(a, np.einsum("kni,kn->i", xs, yy))

    w = lstsq(noisy, ys)
    groups = np.array([lstsq(noisy[i::10], ys[i::10]) for i in range(10)])
    se = groups.std(0, ddof=1) / math.sqrt(10)  # estimated from 10 groups: Student's t with 9 df
    assert np.all(np.abs(w - ridge) <= t_value(9, 3) * se + 1e-3 * np.abs(ridge))
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.all(np.abs(ridge - ols) > 10 * se)  # the penalty is visible at this precision


def test_salt_and_pepper_statistics():
    n = 200_000
    x = torch.full((n,), 0.5)
    y = BF.salt_and_pepper(x, 0.2, generator=torch.Generator().manual_seed(0))
    z = z_value(2)
    for value, prob in ((0.0, 0.1), (1.0, 0.1)):
        frac = float((y == value).double().mean())
        assert abs(frac - prob) <= z * math.sqrt(prob * (1 - prob) / n)
    assert set(torch.unique(y).tolist()) == {0.0, 0.5, 1.0}
