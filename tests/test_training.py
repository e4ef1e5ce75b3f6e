from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.likelihoods import Categorical, Gaussian
from bayesdrop.nn import VariationalLinear
from bayesdrop.training import fit, load_checkpoint


def _net(out: int = 1) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        VariationalLinear(1, 64), nn.ReLU(), VariationalLinear(64, 64), nn.ReLU(), VariationalLinear(64, out)
    )


def _data(n: int, seed: int, hetero: bool):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 4 - 2
    std = 0.15 + 0.1 * x[:, 0] ** 2 if hetero else torch.full((n,), 0.3)
    y = torch.sin(2 * x[:, 0]) + std * torch.randn(n, generator=g)
    return x, y, std


def _coverage(model: nn.Module, x: torch.Tensor, y: torch.Tensor, level: float = 0.9) -> float:
    out = bayesdrop.sample(model, x, 200, seed=1)  # (T, N, 2): mean, log-variance
    mean = out[..., 0].mean(0)
    var = out[..., 0].var(0, unbiased=False) + out[..., 1].exp().mean(0)
    return bayesdrop.metrics.interval_coverage(mean, var.sqrt(), y, level)


def test_fit_recovers_a_homoscedastic_noise():
    x, y, _ = _data(2000, 0, hetero=False)
    net, lik = _net(), Gaussian()
    fit(net, (x, y), likelihood=lik, epochs=100, lr=1e-2, seed=0, progress=False)
    assert abs(float(lik.noise_std[0]) - 0.3) <= 0.15 * 0.3
    xt, yt, _ = _data(2000, 1, hetero=False)
    cov = _coverage(nn.Sequential(net, lik), xt, yt)
    assert 0.85 <= cov <= 0.95


def test_fit_recovers_a_heteroscedastic_noise():
    x, y, _ = _data(3000, 2, hetero=True)
    net, lik = _net(2), Gaussian(heteroscedastic=True)
    fit(net, (x, y), likelihood=lik, epochs=100, lr=1e-2, seed=0, progress=False)
    grid = torch.tensor([[-1.5], [-0.75], [0.0], [0.75], [1.5]])
    with torch.no_grad():
        learned = net.eval()(grid)[:, 1].mul(0.5).exp()
    truth = 0.15 + 0.1 * grid[:, 0] ** 2
    assert torch.all((learned - truth).abs() <= 0.15 * truth), (learned, truth)
    xt, yt, _ = _data(2000, 3, hetero=True)
    assert 0.85 <= _coverage(nn.Sequential(net, lik), xt, yt) <= 0.95


def test_kl_scaling_and_warmup():
    # One batch per epoch: the recorded loss is exactly NLL + scale * KL, with
    # scale = 1/N by default and a linear warm-up (t / warm-up epochs).
    x, y, _ = _data(100, 4, hetero=False)
    h = fit(_net(), (x, y), likelihood=Gaussian(), epochs=4, batch_size=100, seed=0, progress=False, kl_warmup_epochs=2)
    assert h.kl_weight == 1 / 100
    assert h.kl_scale == pytest.approx([0.5 / 100, 1 / 100, 1 / 100, 1 / 100])
    for loss, nll, kl, s in zip(h.loss, h.nll, h.kl, h.kl_scale):
        assert loss == pytest.approx(nll + s * kl, rel=1e-5)
    h0 = fit(_net(), (x, y), likelihood=Gaussian(), epochs=2, batch_size=100, kl_scale=0.0, seed=0, progress=False)
    assert h0.loss == pytest.approx(h0.nll)


def test_seed_makes_fit_deterministic_and_keeps_global_rng():
    x, y, _ = _data(200, 5, hetero=False)
    a, b = _net(), _net()  # each seeds and draws from the global generator: read its state after them
    state = torch.get_rng_state()
    fit(a, (x, y), likelihood=Gaussian(), epochs=3, seed=7, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    fit(b, (x, y), likelihood=Gaussian(), epochs=3, seed=7, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


class _Interrupt:
    """Raise KeyboardInterrupt at the n-th NLL evaluation."""

    def __init__(self, lik: Gaussian, n: int) -> None:
        self.calls, self.n, self.nll = 0, n, lik.nll

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.nll(*args)


@pytest.mark.parametrize("stop_at", [7, 16, 17])  # mid-epoch, last batch of an epoch, first of the next
def test_interrupt_and_resume_equal_an_uninterrupted_run(tmp_path, stop_at):
    x, y, _ = _data(256, 6, hetero=False)  # 4 batches of 64 per epoch
    kw = dict(epochs=6, batch_size=64, lr=1e-2, seed=3, progress=False, val_data=(x[:50], y[:50]))
    ref, ref_lik = _net(), Gaussian()
    h_ref = fit(ref, (x, y), likelihood=ref_lik, **kw)

    ckpt = tmp_path / "run.pt"
    net, lik = _net(), Gaussian()
    lik.nll = _Interrupt(lik, stop_at)
    with pytest.raises(KeyboardInterrupt):
        fit(net, (x, y), likelihood=lik, checkpoint=ckpt, **kw)
    state = load_checkpoint(ckpt)
    assert state["format"] == "bayesdrop-checkpoint"
    net2, lik2 = _net(), Gaussian()  # a fresh process would start from scratch objects
    h = fit(net2, (x, y), likelihood=lik2, checkpoint=ckpt, resume=True, **kw)
    for pa, pb in zip(ref.parameters(), net2.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(ref_lik.log_var, lik2.log_var)
    assert h.loss == pytest.approx(h_ref.loss, rel=1e-6) and h.val_nll == h_ref.val_nll


def test_early_stopping_restores_the_best_weights():
    x, y, _ = _data(300, 7, hetero=False)
    xv, yv, _ = _data(100, 8, hetero=False)
    net, lik = _net(), Gaussian()
    h = fit(
        net, (x, y), likelihood=lik, epochs=200, lr=3e-2, val_data=(xv, yv), early_stopping=3, seed=0, progress=False
    )
    assert h.stopped_early and len(h.val_nll) < 200
    with torch.no_grad():
        best = float(lik.nll(net.eval()(xv), yv))
    assert best == pytest.approx(min(h.val_nll), rel=1e-5)
    assert h.best_epoch == int(np.argmin(h.val_nll)) + 1


def test_categorical_fit_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), bayesdrop.nn.Dropout(0.1), nn.Linear(16, 2))
    h = fit(net, (x, y), likelihood=Categorical(), epochs=30, lr=1e-2, seed=0, progress=False)
    assert h.nll[-1] < 0.3 < math.log(2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"epochs": 0}, ValueError, r"'epochs' parameter of fit must be an int >= 1. Got 0"),
        ({"lr": -1.0}, ValueError, r"'lr' parameter of fit must be a float in \(0, inf\]. Got -1.0"),
        ({"early_stopping": 2}, ValueError, "needs val_data"),
        ({"resume": True}, ValueError, "needs a checkpoint path"),
        ({"likelihood": nn.MSELoss()}, TypeError, "must be a Gaussian or Categorical. Got MSELoss"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    x, y, _ = _data(10, 0, hetero=False)
    args = {"likelihood": Gaussian(), "epochs": 1, "progress": False, **kwargs}
    with pytest.raises(exc, match=match):
        fit(_net(), (x, y), **args)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit(_net(), (x, y * float("nan")), likelihood=Gaussian(), epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"'data' parameter of fit must be a pair \(X, y\).*Got Tensor"):
        fit(_net(), x, likelihood=Gaussian(), epochs=1, progress=False)


# ------------------------------------------------------------ real workloads

from torch.utils.data import DataLoader, IterableDataset, TensorDataset  # noqa: E402

from bayesdrop.training import elbo_loss, noise_parameters  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def test_fit_from_a_dataloader_equals_fit_from_tensors_with_the_same_batches():
    x, y, _ = _data(200, 9, hetero=False)
    kw = dict(likelihood=None, epochs=3, lr=1e-2, seed=4, progress=False)
    runs = {}
    for name, data in {
        "tensors": (x, y),
        "dataset": TensorDataset(x, y),
        "loader": DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True),
    }.items():
        net, lik = _net(), Gaussian()
        runs[name] = (fit(net, data, **{**kw, "likelihood": lik}, batch_size=32), net)
    (h0, n0) = runs["tensors"]
    for h, net in (runs["dataset"], runs["loader"]):
        assert h.loss == h0.loss and h.nll == h0.nll  # the same batches in the same order, the same noise
        assert all(torch.equal(p, q) for p, q in zip(net.parameters(), n0.parameters()))


@pytest.mark.parametrize("device", DEVICES)
def test_float64_model_takes_float32_data_on_its_device(device):
    x, y, _ = _data(128, 10, hetero=False)
    net, lik = _net().double().to(device), Gaussian()
    h = fit(net, DataLoader(TensorDataset(x, y), batch_size=32), likelihood=lik, epochs=2, seed=0, progress=False)
    assert all(p.dtype == torch.float64 and p.device.type == device for p in net.parameters())
    assert lik.log_var.dtype == torch.float64 and lik.log_var.device.type == device
    assert math.isfinite(h.loss[-1])
    s = bayesdrop.sample(net, x[:4], 3, seed=0)  # float32 input into a float64 model
    assert s.dtype == torch.float64 and s.shape == (3, 4, 1) and s.device.type == device
    ev = bayesdrop.evaluate(net, x, y, likelihood=lik, num_samples=4, seed=0)
    assert math.isfinite(ev.mc["nll"])


class _Bag(nn.Module):
    """Token ids -> embedding -> mean over the sequence -> variational classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.head = nn.Sequential(VariationalLinear(8, 16), nn.ReLU(), VariationalLinear(16, 2))

    def forward(self, ids):
        assert ids.dtype == torch.long  # integer inputs stay integers
        return self.head(self.emb(ids).mean(1))


def test_embedding_model_trains_on_integer_token_ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 20, (300, 6), generator=g)
    y = (ids < 10).sum(1).gt(3).long()  # mostly low tokens -> class 1
    torch.manual_seed(0)
    net = _Bag()
    h = fit(net, (ids, y), likelihood=Categorical(), epochs=40, lr=2e-2, batch_size=50, seed=0, progress=False)
    assert h.nll[-1] < 0.5 * h.nll[0]
    ev = bayesdrop.evaluate(net, ids, y, num_samples=10, seed=0)
    assert ev.mc["accuracy"] > 0.85


class _KeywordModel(nn.Module):
    """A HuggingFace-style model: keyword tensors in, a dict with 'logits' out."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        h = self.emb(input_ids) * attention_mask[..., None]
        pooled = h.sum(1) / attention_mask.sum(1, keepdim=True)
        return {"logits": self.out(self.drop(pooled)), "pooled": pooled}


def _token_batches(n: int = 120):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 20, (n, 5), generator=g)
    mask = torch.ones(n, 5, dtype=torch.long)
    mask[: n // 2, 3:] = 0
    y = (ids[:, 0] < 10).long()
    batches = [
        ({"input_ids": ids[i : i + 40], "attention_mask": mask[i : i + 40]}, y[i : i + 40]) for i in range(0, n, 40)
    ]
    return batches, {"input_ids": ids, "attention_mask": mask}, y


def test_dict_input_model_is_called_with_keyword_arguments():
    batches, inputs, y = _token_batches()
    torch.manual_seed(0)
    net = _KeywordModel()
    h = fit(
        net,
        batches,
        likelihood=Categorical(),
        epochs=30,
        lr=3e-2,
        dataset_size=120,
        output="logits",
        seed=0,
        progress=False,
    )
    assert h.nll[-1] < h.nll[0]
    s = bayesdrop.sample(net, inputs, 7, output="logits", seed=0)
    assert s.shape == (7, 120, 2)
    ev = bayesdrop.evaluate(net, batches, num_samples=5, output=lambda o: o["logits"], seed=0)
    assert len(ev.targets) == 120 and ev.mc["accuracy"] > 0.6


def test_huggingface_bert_built_from_a_config():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)  # random weights, no download
    batches, inputs, y = _token_batches(80)
    h = fit(
        model,
        batches,
        likelihood=Categorical(),
        epochs=2,
        lr=1e-3,
        dataset_size=80,
        output="logits",
        seed=0,
        progress=False,
    )
    assert math.isfinite(h.loss[-1])
    s = bayesdrop.sample(model, inputs, 4, output="logits", seed=0)  # a ModelOutput: picked by key
    assert s.shape == (4, 80, 2) and not torch.equal(s[0], s[1])
    ev = bayesdrop.evaluate(model, batches, num_samples=4, output=lambda o: o.logits, train_mode=True, seed=0)
    assert len(ev.targets) == 80 and ev.per_example["mutual_information"].max() > 0


class _TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(VariationalLinear(1, 16), nn.ReLU(), VariationalLinear(16, 1))

    def forward(self, x):
        out = self.net(x)
        return out.detach() * 0, out  # the second element is the prediction


def test_tuple_output_model_with_output_index():
    x, y, _ = _data(100, 11, hetero=False)
    torch.manual_seed(0)
    net, lik = _TupleOut(), Gaussian()
    h = fit(net, (x, y), likelihood=lik, epochs=20, lr=1e-2, output=1, seed=0, progress=False)
    assert h.nll[-1] < h.nll[0]
    assert bayesdrop.sample(net, x, 3, output=1).shape == (3, 100, 1)
    ev = bayesdrop.evaluate(net, x, y, likelihood=lik, output=1, num_samples=5)
    assert ev.mc["rmse"] < 1.0


def test_elbo_loss_is_the_loss_fit_minimises():
    # A list of batches draws no shuffling randomness, so a hand loop seeded like fit draws the same noise.
    x, y, _ = _data(64, 12, hetero=False)
    net, lik = _net(), Gaussian()
    h = fit(net, [(x, y)], likelihood=lik, epochs=1, dataset_size=64, kl_scale=0.5, seed=3, progress=False)
    ref, ref_lik = _net(), Gaussian()
    opt = torch.optim.Adam([*ref.parameters(), *ref_lik.parameters()], lr=1e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        loss = elbo_loss(ref, ref_lik, ref(x), y, dataset_size=64, kl_scale=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert h.loss[0] == pytest.approx(float(loss.detach()), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(h.nll[0] + 0.5 * h.kl[0] / 64, rel=1e-6)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), ref.parameters()))
    with pytest.raises(ValueError, match="'dataset_size' parameter of elbo_loss must be an int >= 1. Got 0"):
        elbo_loss(ref, ref_lik, ref(x), y, dataset_size=0)


def test_weight_decay_never_touches_noise_parameters():
    # Zero inputs: the data gives log sigma^2 no gradient, and kl_scale=0 removes the KL's. Weight decay on the
    # weights moves them; log sigma^2 must stay exactly where it started.
    torch.manual_seed(0)
    net, lik = nn.Sequential(VariationalLinear(3, 1)), Gaussian()
    before = [p.detach().clone() for p in (net[0].weight, net[0].log_sigma2)]
    x, y = torch.zeros(32, 3), torch.randn(32)
    fit(net, (x, y), likelihood=lik, epochs=5, lr=1e-2, weight_decay=10.0, kl_scale=0.0, seed=0, progress=False)
    assert not torch.equal(net[0].weight, before[0])
    assert torch.equal(net[0].log_sigma2, before[1])
    groups = []

    def sgd(g):
        groups.extend(g)
        return torch.optim.SGD(g, lr=0.1, weight_decay=1.0)

    net2, lik2 = _net(), Gaussian()
    fit(net2, (x[:, :1], y), likelihood=lik2, epochs=1, optimizer=sgd, progress=False)
    noisy = {id(p) for p in groups[1]["params"]}
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 1.0  # the factory's default applies
    assert noisy == {id(p) for p in noise_parameters(net2)} | {id(lik2.log_var)}
    assert {id(m.log_sigma2) for m in net2 if isinstance(m, VariationalLinear)} <= noisy


def test_optimizer_and_scheduler_factories():
    x, y, _ = _data(64, 13, hetero=False)
    made = []

    def sgd(groups):
        made.append(torch.optim.SGD(groups, lr=0.1))
        return made[-1]

    fit(_net(), (x, y), likelihood=Gaussian(), epochs=3, optimizer=sgd, progress=False,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))  # fmt: skip
    assert [g["lr"] for g in made[0].param_groups] == [0.0125, 0.0125]  # stepped once per epoch


@pytest.mark.parametrize("own_generator", [False, True])
def test_resume_from_a_dataloader_checkpoint(tmp_path, own_generator):
    x, y, _ = _data(256, 14, hetero=False)

    def loader():
        gen = torch.Generator().manual_seed(5) if own_generator else None
        return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=gen)

    kw = dict(epochs=4, lr=1e-2, seed=3, progress=False)
    ref = _net()
    h_ref = fit(ref, loader(), likelihood=Gaussian(), **kw)
    ckpt = tmp_path / "run.pt"
    lik = Gaussian()
    lik.nll = _Interrupt(lik, 7)  # the third batch of the second epoch
    with pytest.raises(KeyboardInterrupt):
        fit(_net(), loader(), likelihood=lik, checkpoint=ckpt, **kw)
    net = _net()
    h = fit(net, loader(), likelihood=Gaussian(), checkpoint=ckpt, resume=True, **kw)
    assert all(torch.equal(p, q) for p, q in zip(ref.parameters(), net.parameters()))
    assert h.loss == pytest.approx(h_ref.loss, rel=1e-6)


class _Stream(IterableDataset):
    def __init__(self, x, y) -> None:
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


def test_resume_with_an_order_fit_cannot_replay_is_refused(tmp_path):
    x, y, _ = _data(64, 15, hetero=False)
    stream = DataLoader(_Stream(x, y), batch_size=16)
    ckpt = tmp_path / "run.pt"
    fit(_net(), stream, likelihood=Gaussian(), epochs=1, dataset_size=64, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="'resume' parameter of fit cannot continue exactly with this data"):
        fit(
            _net(),
            stream,
            likelihood=Gaussian(),
            epochs=2,
            dataset_size=64,
            checkpoint=ckpt,
            resume=True,
            progress=False,
        )


def test_bad_data():
    x, y, _ = _data(32, 16, hetero=False)
    kw = dict(likelihood=Gaussian(), epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"'data' parameter of fit must yield \(x, y\) batches.*Got a list of length 3"):
        fit(_net(), [[x, y, y]], dataset_size=32, **kw)
    with pytest.raises(TypeError, match=r"must yield \(x, y\) batches.*Got a Tensor"):
        fit(_net(), DataLoader(x, batch_size=8), dataset_size=32, **kw)
    with pytest.raises(ValueError, match=r"'dataset_size' parameter of fit is required.*Pass dataset_size=N"):
        fit(_net(), [(x, y)], **kw)
    with pytest.raises(ValueError, match=r"'dataset_size' parameter of fit is required"):
        fit(_net(), DataLoader(_Stream(x, y), batch_size=8), **kw)
    with pytest.raises(TypeError, match="must be re-iterable"):
        fit(_net(), ((x, y) for _ in range(2)), dataset_size=32, **kw)
    with pytest.raises(ValueError, match="'weight_decay' parameter of fit applies to the default optimiser only"):
        fit(_net(), (x, y), weight_decay=0.1, optimizer=lambda g: torch.optim.SGD(g, lr=0.1), **kw)


def test_the_progress_bar_names_concrete_dropouts_regulariser(monkeypatch):
    # Concrete dropout's regulariser adds the negative entropy of its masks to the KL, so the value on the bar
    # can be negative: the bar must say that it is not a plain KL.
    import bayesdrop.training as training_module
    from bayesdrop.nn import ConcreteDropout

    shown: list[dict] = []

    class Bar:
        def __init__(self, *args, **kwargs):
            pass

        def set_postfix(self, postfix, refresh=True):
            shown.append(dict(postfix))

        def update(self, *args):
            pass

        def close(self):
            pass

    monkeypatch.setattr(training_module, "progress_bar", Bar)
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    concrete = nn.Sequential(ConcreteDropout(nn.Linear(3, 2), init_p=0.1))
    fit(concrete, (x, y), likelihood=Categorical(), epochs=1, seed=0)
    plain = nn.Sequential(VariationalLinear(3, 2))
    fit(plain, (x, y), likelihood=Categorical(), epochs=1, seed=0)
    assert "kl+concrete reg" in shown[0] and "kl" not in shown[0]
    assert "kl" in shown[1] and "kl+concrete reg" not in shown[1]


def test_mc_validation_is_the_nll_of_the_mc_predictive_and_early_stopping_restores_it():
    from bayesdrop._distributed import seed_or_draw
    from bayesdrop.montecarlo import sample_batches

    x, y, _ = _data(300, 7, hetero=False)
    xv, yv, _ = _data(100, 8, hetero=False)
    net, lik = _net(), Gaussian()
    kw = {"likelihood": lik, "lr": 3e-2, "val_data": (xv, yv), "val_samples": 20, "seed": 0, "progress": False}
    h = fit(net, (x, y), epochs=200, early_stopping=3, **kw)
    assert h.stopped_early and h.best_epoch == int(np.argmin(h.val_nll)) + 1 and len(h.val_nll) == h.best_epoch + 3
    # the restored weights give the best epoch's MC NLL on the same draws (one validation batch: seed index 0)
    ((_, out, labels),) = list(sample_batches(net, [(xv, yv)], lambda b: b, 20, None, False, seed_or_draw(0), "test"))
    log_p = torch.stack([lik.log_prob(out[i], labels) for i in range(20)]).double()
    mc_nll = -float((torch.logsumexp(log_p, 0) - math.log(20)).mean())
    assert mc_nll == pytest.approx(min(h.val_nll), rel=1e-5)
    with torch.no_grad():
        eval_nll = float(lik.nll(net.eval()(xv), yv))
    assert eval_nll != pytest.approx(mc_nll, rel=1e-3)  # the criterion is the MC predictive, not the eval pass


def test_early_stopping_waits_for_the_end_of_the_kl_warm_up():
    x, y, _ = _data(200, 7, hetero=False)
    xv, yv, _ = _data(100, 8, hetero=False)
    net = _net()
    kw = {"likelihood": Gaussian(), "lr": 3e-2, "val_data": (xv, yv), "seed": 0, "progress": False}
    h = fit(net, (x, y), epochs=40, kl_warmup_epochs=8, early_stopping=1, **kw)
    assert h.best_epoch is not None and h.best_epoch >= 8  # no epoch of the warm-up is a candidate
    assert len(h.val_nll) >= 9 and h.best_epoch == 8 + int(np.argmin(h.val_nll[7:]))
