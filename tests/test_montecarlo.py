from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import Dropout, VariationalLinear
from tests.conftest import z_value


def _net(dropout: type[nn.Module] = Dropout) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), dropout(0.5), nn.Linear(16, 2))


def test_sampling_switches_and_restores_state_even_on_error():
    net = _net(nn.Dropout).train()
    with pytest.raises(RuntimeError, match="boom"), bayesdrop.sampling(net):
        assert net[3].training and not net[1].training and not net.training
        raise RuntimeError("boom")
    assert all(m.training for m in net.modules())
    vnet = nn.Sequential(Dropout(0.5), VariationalLinear(2, 2)).eval()
    with bayesdrop.sampling(vnet):
        assert vnet[0].sampling and vnet[1].sampling and not vnet[0].training
    assert not vnet[0].sampling and not any(m.training for m in vnet.modules())


@pytest.mark.parametrize("dropout", [Dropout, nn.Dropout])
def test_sample_shape_no_graph_and_batchnorm_untouched(dropout):
    net = _net(dropout)
    net.train()
    net(torch.randn(64, 6))  # give BatchNorm non-trivial running statistics
    before = {k: v.clone() for k, v in net[1].state_dict().items()}
    x = torch.randn(5, 6)
    s = bayesdrop.sample(net, x, 30, seed=0)
    assert s.shape == (30, 5, 2) and not s.requires_grad
    for k, v in net[1].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training  # restored
    # eval-mode BatchNorm is used: with p -> 0 every sample equals the eval pass
    net.eval()
    net[3].p = 0.0
    torch.testing.assert_close(bayesdrop.sample(net, x, 3)[0], net(x))


def test_seed_reproducible_and_global_rng_untouched():
    net = _net()
    x = torch.randn(4, 6)
    state = torch.get_rng_state()
    a = bayesdrop.sample(net, x, 10, seed=123)
    assert torch.equal(torch.get_rng_state(), state)
    b = bayesdrop.sample(net, x, 10, seed=123)
    c = bayesdrop.sample(net, x, 10, seed=124)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # without a seed: the global RNG decides, so manual_seed reproduces
    torch.manual_seed(7)
    d = bayesdrop.sample(net, x, 10)
    torch.manual_seed(7)
    e = bayesdrop.sample(net, x, 10)
    assert torch.equal(d, e) and not torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 40, 10_000])
def test_every_sample_and_example_has_its_own_noise(chunk_size):
    # Identity network with dropout on 64 features: two rows with independent
    # masks coincide with probability 2**-64, so any repeated row means shared
    # noise across copies of the tiled batch (chunk boundaries included).
    net = nn.Sequential(Dropout(0.5))
    x = torch.ones(8, 64)
    s = bayesdrop.sample(net, x, 50, seed=0, chunk_size=chunk_size)
    rows = s.reshape(-1, 64)
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]
    # The MC mean of each feature is 1 with variance p/(1-p)/T = 1/50.
    mean = s.mean(0)
    assert torch.all((mean - 1).abs() <= z_value(8 * 64) * math.sqrt(1.0 / 50))


def test_sample_mean_converges_to_eval_for_linear_model():
    # For a linear model E over masks of W (x*m/(1-p)) equals W x exactly.
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(0.2), nn.Linear(10, 1, bias=False)).double()
    x = torch.randn(3, 10, dtype=torch.float64)
    T = 20_000
    s = bayesdrop.sample(net, x, T, seed=1)[..., 0]
    w = net[1].weight[0].detach()
    var = (x * x * w * w).sum(1) * 0.2 / 0.8  # Var of sum_i w_i x_i m_i/(1-p)
    with torch.no_grad():
        det = net.eval()(x)[:, 0]
    assert torch.all((s.mean(0) - det).abs() <= z_value(3) * (var / T).sqrt())


def test_bad_input():
    net = _net()
    with pytest.raises(TypeError, match=r"'x' parameter of sample must contain at least one tensor"):
        bayesdrop.sample(net, [[0.0] * 6], 3)
    with pytest.raises(TypeError, match=r"'x' parameter of sample must be a tensor, a tuple/list of tensors or a dict"):
        bayesdrop.sample(net, "abc", 3)
    with pytest.raises(ValueError, match=r"same batch size \(dim 0\). Got sizes \[2, 3\]"):
        bayesdrop.sample(net, {"a": torch.randn(2, 6), "b": torch.randn(3, 6)}, 3)
    with pytest.raises(ValueError, match=r"'num_samples' parameter of sample must be an int >= 1. Got 0"):
        bayesdrop.sample(net, torch.randn(2, 6), 0)
    with pytest.raises(ValueError, match=r"'chunk_size' parameter of sample must be an int >= 1. Got 0"):
        bayesdrop.sample(net, torch.randn(2, 6), 2, chunk_size=0)
    with pytest.raises(ValueError, match="has none, so every sample would be the same"):
        bayesdrop.sample(nn.Linear(2, 2), torch.randn(2, 2), 2)

    class TupleOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = Dropout(0.5)

        def forward(self, x):
            return self.drop(x), x

    with pytest.raises(
        TypeError, match=r"The model returned a tuple, not a tensor: pass sample\(\.\.\., output=\.\.\.\)"
    ):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2)
    with pytest.raises(
        ValueError, match=r"'output' parameter of sample selects nothing: 2 is not in .*tuple of length 2"
    ):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=2)
    with pytest.raises(ValueError, match=r"'output' parameter of sample must select a tensor. Got .* selected a int"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=lambda o: 3)
    with pytest.raises(TypeError, match=r"'output' parameter of sample must be None, an int, a str or a callable"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=1.5)


def test_deterministic_restores_mixed_modes():
    net = _net().train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    from bayesdrop.montecarlo import deterministic

    with deterministic(net):
        assert not any(m.training for m in net.modules())
    assert net.training and not net[1].training and net[3].training


# ------------------------------------------------------------ real models

import torch.nn.functional as F  # noqa: E402

from bayesdrop.montecarlo import DEFAULT_CHUNK_BYTES  # noqa: E402


class _Functional(nn.Module):
    """Dropout applied functionally, gated on self.training (as in most transformer code), after a BatchNorm."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return F.dropout(self.bn(x), self.p, training=self.training)


def test_train_mode_samples_functional_dropout_and_keeps_batchnorm_statistics():
    # The BatchNorm's eval pass on these stats is the identity, so each output is 1 or 0 times 1/(1-p):
    # mean 1, variance p/(1-p); T = 4000 samples of 4 units, mean within z SE.
    torch.manual_seed(0)
    p, T = 0.25, 4000
    net = _Functional(p).train()
    before = {k: v.clone() for k, v in net.bn.state_dict().items()}
    x = torch.ones(3, 4)
    with pytest.raises(ValueError, match="has none, so every sample would be the same.*train_mode=True"):
        bayesdrop.sample(net, x, 2)
    s = bayesdrop.sample(net, x, T, train_mode=True, seed=0)
    kept = s > 0  # BatchNorm's eval pass is the identity up to its eps: 1 / sqrt(1 + 1e-5)
    torch.testing.assert_close(s[kept], torch.full_like(s[kept], 1 / (1 - p)), rtol=1e-5, atol=0)
    assert 0 < kept.float().mean() < 1
    se = math.sqrt(p / (1 - p) / T)
    assert torch.all((s.mean(0) - 1).abs() <= z_value(12) * se)
    assert all(torch.equal(v, net.bn.state_dict()[k]) for k, v in before.items())  # running stats untouched
    assert net.training and net.bn.training  # modes restored
    with bayesdrop.sampling(net, train_mode=True):
        assert net.training and not net.bn.training


def test_train_mode_samples_the_attention_dropout_of_a_transformer_layer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.1, batch_first=True)
    x = torch.randn(3, 5, 8)
    # nn.Dropout modules sample without train_mode too (also where eval mode would take the fused fast path).
    s = bayesdrop.sample(layer.eval(), x, 4, seed=0)
    assert s.shape == (4, 3, 5, 8) and not torch.equal(s[0], s[1])
    # Only the attention dropout left (functional, inside nn.MultiheadAttention): it needs train_mode=True.
    for name in ("dropout", "dropout1", "dropout2"):
        setattr(layer, name, nn.Identity())
    with pytest.raises(ValueError, match="has none"):
        bayesdrop.sample(layer, x, 2)
    s = bayesdrop.sample(layer, x, 4, train_mode=True, seed=0)
    assert not torch.equal(s[0], s[1])
    with torch.no_grad():
        det = layer(x)  # eval mode: no noise
    assert not torch.allclose(s[0], det)


class _RunningMean(nn.Module):
    """A layer that updates its own running statistic in train mode (not a torch norm layer)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(2))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        if self.training:
            self.running_mean.mul_(0.9).add_(0.1 * x.mean(0))
        return self.drop(x - self.running_mean)


class _SneakyStats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        if self.training:
            self.count += 1
        return self.drop(x)


def test_train_mode_refuses_a_model_whose_statistics_would_update():
    net = _RunningMean()
    with pytest.raises(ValueError, match=r"'train_mode' parameter of sampling cannot be True.*running_mean"):
        bayesdrop.sample(net, torch.randn(4, 2), 3, train_mode=True)
    sneaky = _SneakyStats()
    with pytest.raises(ValueError, match=r"a buffer of the model changed inside the block.*restored"):
        bayesdrop.sample(sneaky, torch.randn(4, 2), 3, train_mode=True)
    assert sneaky.count == 0  # restored
    with pytest.raises(TypeError, match="'train_mode' parameter of sampling must be a bool"):
        with bayesdrop.sampling(sneaky, train_mode="yes"):
            pass


class _Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return x


def test_even_chunks():
    from bayesdrop.montecarlo import even_chunks as even

    assert even(3200, 32, 2621) == 1600  # two chunks of 1600 (50 copies of N = 32), not 2621 + 579
    assert even(100, 1, 2621) == 100
    assert even(1000, 300, 512) == 500  # one copy of 300 a chunk would take 4 chunks instead of 2
    assert even(1800, 300, 700) == 600  # 3 chunks either way: two whole copies each
    assert even(1000, 600, 512) == 500  # N wider than a chunk: even chunks of rows
    assert even(100_000, 1000, 2621) == 2565  # 39 chunks; 2000-row copies would take 50
    for total, n, budget in [(10, 3, 4), (7, 7, 1), (100_000, 1000, 2621)]:
        per = even(total, n, budget)
        assert 1 <= per <= budget


def test_default_chunk_counts_the_widest_activation():
    # 3 input features (12 bytes a row) into a 4096-wide layer (16 KiB a row): the budget is set by the layer.
    tail = _Recorder()
    net = nn.Sequential(nn.Linear(3, 4096), nn.Dropout(0.5), tail, nn.Linear(4096, 1))
    head_rows: list[int] = []
    net[0].register_forward_hook(lambda _m, _i, out: head_rows.append(out.shape[0]))
    s = bayesdrop.sample(net, torch.randn(50, 3), 100, seed=0)
    assert s.shape == (100, 50, 1)
    widest = DEFAULT_CHUNK_BYTES // (4096 * 4)
    assert tail.rows[0] == 1  # the one-row probe
    # 5000 rows in ceil(5000 / 512) = 10 even chunks of 500 (whole copies of the 50 inputs), none above the budget
    assert tail.rows[1:] == [500] * 10 and widest == 512
    # the layers before the first dropout draw no noise: they run once per example, not once per sample
    # (after the widest-activation probe and the head's one-row probe)
    assert head_rows == [1, 1, 50]


class _AlwaysNoisy(nn.Module):
    def forward(self, x):
        return nn.functional.dropout(x, 0.5, training=True)  # noise in eval mode too


def test_custom_modules_and_large_head_outputs_keep_the_whole_model_tiled(monkeypatch):
    torch.manual_seed(0)
    x = torch.ones(4, 3)
    noisy = nn.Sequential(_AlwaysNoisy(), nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    assert bayesdrop.montecarlo.deterministic_head(noisy, False)[0] is None  # a custom module may draw noise
    s = bayesdrop.sample(noisy, x, 50, seed=0)
    assert s[:, 0].unique().numel() > 1  # its noise differs between samples
    net = nn.Sequential(nn.Linear(3, 64), nn.Dropout(0.5), nn.Linear(64, 1))
    rows: list[int] = []
    net[0].register_forward_hook(lambda _m, _i, out: rows.append(out.shape[0]))
    monkeypatch.setattr(bayesdrop.montecarlo, "HEAD_OUTPUT_BYTES", 4 * 64 * 4 - 1)  # 4 rows of the head do not fit
    bayesdrop.sample(net, x, 10, seed=0)
    assert rows[2:] == [40]  # tiled: the head ran once per sample


def test_deterministic_head_gives_the_draws_of_the_whole_model():
    # The noise-free head moved out of the tiling leaves the tiled rows and hence every draw unchanged.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    x = torch.randn(20, 3)
    fast = bayesdrop.sample(net, x, 30, seed=4, chunk_size=70)
    whole = nn.Sequential(_Whole(net))  # a Sequential whose only child is stochastic: no head
    assert bayesdrop.montecarlo.deterministic_head(whole, False)[0] is None
    assert torch.allclose(bayesdrop.sample(whole, x, 30, seed=4, chunk_size=70), fast, atol=1e-6)


class _Whole(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = Dropout(0.5)

    def forward(self, a, b, scale=1.0):
        return self.drop(a) * scale + b


@pytest.mark.parametrize("chunk_size", [1, 7, 31])  # chunks that do not line up with N = 6
def test_tuple_and_dict_inputs_tile_together(chunk_size):
    net = _TwoInputs()
    a = torch.ones(6, 2)
    b = torch.arange(6.0)[:, None].expand(6, 2)  # distinct rows: a wrong tiling shows
    s = bayesdrop.sample(net, (a, b), 5, seed=0, chunk_size=chunk_size)
    assert s.shape == (5, 6, 2)
    assert torch.all(((s - b) == 0) | ((s - b) == 2))  # each row keeps its own b
    d = bayesdrop.sample(net, {"a": a, "b": b, "scale": 3.0}, 5, seed=0, chunk_size=chunk_size)
    assert torch.all(((d - b) == 0) | ((d - b) == 6))  # non-tensor keyword arguments pass unchanged
    assert torch.equal((s - b) * 3, d - b)  # the same noise for the same seed and chunking


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
)
def test_sample_runs_on_the_model_device_with_the_right_moments(device):
    # Dropout(p) on ones: each output is 0 or 1/(1-p), mean 1 and variance p/(1-p); T samples of 8 units.
    p, T = 0.3, 20_000
    eye = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        eye.weight.copy_(torch.eye(4))
    layer = nn.Sequential(Dropout(p), eye).to(device)  # the parameters say where the model lives
    s = bayesdrop.sample(layer, torch.ones(2, 4), T, seed=0)  # CPU input follows the model
    assert s.device.type == device and s.dtype == torch.float32
    se = math.sqrt(p / (1 - p) / T)
    assert torch.all((s.double().mean(0) - 1).abs() <= z_value(8) * se)
    assert torch.equal(s, bayesdrop.sample(layer, torch.ones(2, 4), T, seed=0))


@pytest.mark.parametrize("chunk_size", [1, 7, 11])  # N = 10: chunks of 1, one that never lines up, N + 1
def test_tiled_rows_map_to_their_own_examples(chunk_size):
    # Row i of x is i + 1 everywhere, so every output of example i is 0 or (i + 1) / (1 - p); a tiled row
    # mapped to the wrong example shows another value.
    p, n = 0.25, 10
    x = torch.arange(1.0, n + 1)[:, None].expand(n, 5).contiguous()
    s = bayesdrop.sample(nn.Sequential(Dropout(p)), x, 9, seed=0, chunk_size=chunk_size)
    expected = (x / (1 - p)).expand_as(s)
    assert torch.all((s == 0) | torch.isclose(s, expected))
    assert torch.all((s != 0).any(2).sum(0) > 0)  # every example kept something somewhere


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_torch_dropout_fast_path_keep_rate_scale_and_independent_rows(p):
    # Under sampling, nn.Dropout draws bayesdrop's masks: values are 0 or c / (1 - p); the zero fraction of
    # n = T * N * F elements is p (rounded to 2^-16) with SE sqrt(p (1 - p) / n); neighbouring rows and
    # consecutive samples are uncorrelated (sample correlation SE 1/sqrt(m)).
    c, t, n, f = 3.0, 50, 200, 40
    net = nn.Sequential(nn.Dropout(p))
    s = bayesdrop.sample(net, torch.full((n, f), c, dtype=torch.float64), t, seed=1)
    assert set(torch.unique(s).tolist()) == {0.0, c / (1 - p)}
    dropped = (s == 0).double()
    z = z_value(3)
    q = round(p * 2**16) / 2**16
    assert abs(float(dropped.mean()) - q) <= z * math.sqrt(q * (1 - q) / dropped.numel())

    def corr(u, v):
        u, v = u - u.mean(), v - v.mean()
        return float((u * v).mean() / (u.std() * v.std()))

    assert abs(corr(dropped[:, 1:], dropped[:, :-1])) <= z / math.sqrt(t * (n - 1) * f)
    assert abs(corr(dropped[1:], dropped[:-1])) <= z / math.sqrt((t - 1) * n * f)


def test_torch_channel_dropout_fast_path_drops_whole_channels():
    x = torch.ones(8, 16, 5, 5)
    for module, inp, channel_dims in [
        (nn.Dropout2d(0.5), x, (2, 3)),
        (nn.Dropout1d(0.5), x[..., 0], (2,)),
        (nn.Dropout3d(0.5), x[..., None], (2, 3, 4)),
        (nn.Dropout2d(0.5), x[:, :, :, 0], (2,)),  # torch reads a 3-D input of Dropout2d as (N, C, L)
        (nn.Dropout1d(0.5), x[0, :, :, 0], (1,)),  # unbatched (C, L)
        (nn.Dropout3d(0.5), x[0, ..., None], (1, 2, 3)),  # unbatched (C, D, H, W)
    ]:
        s = bayesdrop.sample(nn.Sequential(module), inp, 20, seed=0)
        assert s.shape == (20, *inp.shape)
        spread = s.amax(dim=tuple(d + 1 for d in channel_dims)) - s.amin(dim=tuple(d + 1 for d in channel_dims))
        assert torch.all(spread == 0), type(module).__name__  # one value per channel
        assert set(torch.unique(s).tolist()) == {0.0, 2.0}


def test_torch_dropout_modules_behave_as_torch_after_sampling():
    modules = [nn.Dropout(0.3), nn.Dropout2d(0.3)]
    x = torch.randn(4, 3, 2, 2)
    for m in modules:
        fresh = type(m)(0.3)
        bayesdrop.sample(nn.Sequential(m), x, 5, seed=0)
        assert "forward" not in m.__dict__
        for training in (True, False):
            m.train(training)
            fresh.train(training)
            torch.manual_seed(7)
            a = m(x)
            torch.manual_seed(7)
            b = fresh(x)
            assert torch.equal(a, b)  # torch's own kernel again, bit for bit


def test_a_dropout_subclass_with_its_own_forward_keeps_it():
    class Doubling(nn.Dropout):
        def forward(self, x):
            return 2 * x

    s = bayesdrop.sample(nn.Sequential(Doubling(0.5)), torch.ones(3, 4), 2, seed=0)
    assert torch.equal(s, torch.full((2, 3, 4), 2.0))


def test_torch_dropout_keeps_torch_kernel_off_the_cpu(monkeypatch):
    # On an accelerator the patched forward hands over to torch's own forward (its fused kernel); "meta"
    # stands in for a GPU here: the spy must see the call, and a CPU input must not reach it.
    calls = []
    original = nn.Dropout.forward

    def spy(self, x):
        calls.append(x.device.type)
        return original(self, x)

    monkeypatch.setattr(nn.Dropout, "forward", spy)
    m = nn.Dropout(0.5).eval()
    with bayesdrop.sampling(m):
        out = m(torch.empty(3, 4, device="meta"))
        m(torch.ones(3, 4))
    assert out.device.type == "meta" and calls == ["meta"]


def test_sample_takes_numpy_arrays_like_evaluate():
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        bayesdrop.sample(net, x, 5, seed=0).numpy(), bayesdrop.sample(net, torch.from_numpy(x), 5, seed=0).numpy()
    )
    from_dict = bayesdrop.sample(net, {"input": x.astype(np.float64)}, 2, seed=0)  # model(input=...), float64 in
    assert from_dict.shape == (2, 6, 2) and from_dict.dtype == torch.float32  # the model's dtype


def test_a_shape_mismatch_reports_the_users_batch_not_the_one_row_probe():
    net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1))
    with pytest.raises(RuntimeError, match=r"100x5 and 4x16"):
        bayesdrop.sample(net, torch.randn(100, 5), 10)


class _NeedsTwoRows(nn.Module):
    """A model that cannot take a batch of one row (like one that squeezes its batch axis)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))

    def forward(self, x):
        if x.shape[0] < 2:
            raise RuntimeError("one row")
        return self.net(x)


def test_a_model_that_cannot_take_one_row_is_measured_on_the_batch():
    out = bayesdrop.sample(_NeedsTwoRows(), torch.randn(5, 3), 4, seed=0)
    assert out.shape == (4, 5, 4)
