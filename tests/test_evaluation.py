from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import Dropout
from tests.conftest import z_value


def _softmax_unit(p: float, k: int) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(p), nn.Linear(2, k)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.5, -2.0], [-0.5, 1.0], [2.0, 0.5]][:k], dtype=torch.float64))
        net[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3][:k], dtype=torch.float64))
    return net


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 3])
def test_exact_enumeration_of_the_gap(k, device):
    # Dropout on two inputs: four masks with probabilities q^|m| p^(2-|m|).
    # The exact ensemble average is sum_m P(m) softmax(W (x*m/q) + b); the
    # MC estimate from T samples has per-class SE sqrt(Var_m / T). The eval
    # pass equals the normalised weighted geometric mean over the masks
    # (Baldi & Sadowski 2013): softmax of the expected logits.
    p, q = 0.4, 0.6
    net = _softmax_unit(p, k)
    x = torch.tensor([[1.0, 2.0], [-1.5, 0.5], [0.25, -0.75]], dtype=torch.float64)
    probs, weights = [], []
    for m in itertools.product([0, 1], repeat=2):
        mask = torch.tensor(m, dtype=torch.float64)
        logits = net[1](x * mask / q)
        pr = torch.sigmoid(logits[:, 0]) if k == 1 else torch.softmax(logits, -1)
        probs.append(pr.detach().numpy())
        weights.append(q ** sum(m) * p ** (2 - sum(m)))
    probs_a, w = np.array(probs), np.array(weights)[:, None] if k == 1 else np.array(weights)[:, None, None]
    exact = (w * probs_a).sum(0)
    var = (w * (probs_a - exact) ** 2).sum(0)
    geo = np.exp((w * np.log(probs_a)).sum(0))
    if k == 1:
        nwgm = geo / (geo + np.exp((w * np.log(1 - probs_a)).sum(0)))
    else:
        nwgm = geo / geo.sum(-1, keepdims=True)
    T = 20_000
    ev = bayesdrop.evaluate(net.to(device), x, [0, 0, 0], num_samples=T, seed=3)  # CPU data, model on `device`
    z = z_value(exact.size)
    assert np.all(np.abs(ev.mc_predictive - exact) <= z * np.sqrt(var / T))
    np.testing.assert_allclose(ev.det_predictive, nwgm, rtol=1e-10)
    assert ev.gap["total_variation"] > 0


def _batched_samples(net, x, T, seed, batch_size):
    """What evaluate draws: batch i's noise comes from derive_seed(seed, i)."""
    from bayesdrop._distributed import derive_seed

    parts = [
        bayesdrop.sample(net, x[i : i + batch_size], T, seed=derive_seed(seed, j))
        for j, i in enumerate(range(0, len(x), batch_size))
    ]
    return torch.cat(parts, 1)


def _jackknife(stat, samples, max_groups=20):
    """The delete-a-group jackknife of a statistic of the sample mean, computed directly on (T, ...) samples."""
    t = samples.shape[0]
    full = samples.mean(0)
    if t < 2:
        return stat(full), float("nan")
    groups = np.array_split(np.arange(t), min(t, max_groups))
    loo = np.array([stat((t * full - samples[idx].sum(0)) / (t - len(idx))) for idx in groups])
    g = len(groups)
    return stat(full), math.sqrt((g - 1) / g * np.sum((loo - loo.mean()) ** 2))


@pytest.mark.parametrize("batch_size", [50, 16])  # one batch; four batches, the last one short
def test_classification_fields_and_streamed_convergence(batch_size):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), Dropout(0.5), nn.Linear(16, 4))
    x = torch.randn(50, 3)
    y = torch.randint(0, 4, (50,))
    ev = bayesdrop.evaluate(net, x, y, num_samples=30, seed=1, batch_size=batch_size)
    probs = torch.softmax(_batched_samples(net, x, 30, 1, batch_size).double(), -1).numpy()
    np.testing.assert_allclose(ev.mc_predictive, probs.mean(0), rtol=1e-12)  # mean of probabilities
    np.testing.assert_allclose(ev.per_example["mutual_information"], bayesdrop.metrics.mutual_information(probs))
    assert ev.mc["nll"] == pytest.approx(bayesdrop.metrics.nll(probs.mean(0), y))
    assert ev.convergence["T"] == [1, 2, 5, 10, 20, 30]
    # The streamed sums give what the jackknife on all (T, N, K) samples gives.
    metrics = {"accuracy": bayesdrop.metrics.accuracy, "nll": bayesdrop.metrics.nll, "ece": bayesdrop.metrics.ece}
    for name, fn in metrics.items():
        for i, t in enumerate(ev.convergence["T"]):
            value, se = _jackknife(lambda p, fn=fn: fn(p, y), probs[:t])
            assert ev.convergence[name]["value"][i] == pytest.approx(value, rel=1e-9, abs=1e-12)
            if t == 1:
                assert math.isnan(ev.convergence[name]["se"][i])
            else:
                assert ev.convergence[name]["se"][i] == pytest.approx(se, rel=1e-7, abs=1e-12)
    assert ev.convergence["nll"]["value"][-1] == pytest.approx(ev.mc["nll"])
    json.dumps(ev.to_dict(), allow_nan=False)
    assert net.training  # mode restored


def test_jackknife_se_of_a_mean_is_its_standard_error():
    # mean_noise_var is linear in the samples: its jackknife SE over T = 20
    # single samples is the usual SE of a mean, over T = 60 the SE of 20 group means.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), Dropout(0.3), nn.Linear(16, 2))
    x, y = torch.randn(30, 2), torch.randn(30)
    lik = bayesdrop.Gaussian(heteroscedastic=True)
    for T, groups in [(20, 20), (60, 20)]:
        ev = bayesdrop.evaluate(net, x, y, likelihood=lik, num_samples=T, seed=4)
        noise = _batched_samples(net, x, T, 4, 256)[..., 1].double().exp().mean(1).numpy()  # (T,) mean over N
        group_means = noise.reshape(groups, -1).mean(1)
        se = group_means.std(ddof=1) / math.sqrt(groups)
        assert ev.convergence["mean_noise_var"]["se"][-1] == pytest.approx(se, rel=1e-9)


class _Net(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), Dropout(0.3), nn.Linear(16, out))

    def forward(self, x):
        return self.body(x)


def test_regression_variance_decomposition_from_the_likelihood():
    torch.manual_seed(0)
    net = _Net(1)
    x = torch.randn(40, 2)
    y = torch.randn(40)
    ev = bayesdrop.evaluate(net, x, y, likelihood=bayesdrop.Gaussian(noise_std=0.5), num_samples=30, seed=2)
    mu = _batched_samples(net, x, 30, 2, 256)[..., 0].double().numpy()
    np.testing.assert_allclose(ev.per_example["epistemic_var"], mu.var(0), rtol=1e-10)  # ddof = 0
    np.testing.assert_allclose(ev.per_example["aleatoric_var"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(ev.mc_predictive[:, 1] ** 2, mu.var(0) + 0.25, rtol=1e-6)
    assert ev.mc["mixture_nll"] == pytest.approx(bayesdrop.metrics.mixture_nll(mu, y, 0.5), rel=1e-6)
    assert "Gaussian" in ev.meta["likelihood"]
    # a learned homoscedastic noise is read from the likelihood
    lik = bayesdrop.Gaussian(init_noise_std=2.0)
    assert bayesdrop.evaluate(net, x, y, likelihood=lik, num_samples=5).per_example["aleatoric_var"][
        0
    ] == pytest.approx(4.0)
    # heteroscedastic: means then log-variances
    hetero = _Net(2)
    ev2 = bayesdrop.evaluate(hetero, x, y, likelihood=bayesdrop.Gaussian(heteroscedastic=True), num_samples=10, seed=0)
    out = _batched_samples(hetero, x, 10, 0, 256).double().numpy()
    np.testing.assert_allclose(ev2.per_example["aleatoric_var"], np.exp(out[..., 1]).mean(0), rtol=1e-10)
    with pytest.raises(ValueError, match=r"expects 2 output column\(s\). Got 1 instead"):
        bayesdrop.evaluate(net, x, y, likelihood=bayesdrop.Gaussian(heteroscedastic=True))


def test_two_target_regression_gives_metrics_per_target_and_averaged():
    # The case: (N, 2) outputs of a two-target regressor are two means, not a mean and a log-variance.
    torch.manual_seed(0)
    net = _Net(2)
    x = torch.randn(50, 2)
    y = torch.randn(50, 2)
    lik = bayesdrop.Gaussian(noise_std=0.5, num_targets=2)
    ev = bayesdrop.evaluate(net, x, y, likelihood=lik, num_samples=20, seed=0)
    assert ev.mc_predictive.shape == (50, 2, 2) and ev.targets.shape == (50, 2)
    mu = _batched_samples(net, x, 20, 0, 256).double().numpy()  # (T, N, 2)
    for d in range(2):
        std = np.sqrt(mu[..., d].var(0) + 0.25)
        assert ev.mc[f"rmse[{d}]"] == pytest.approx(bayesdrop.metrics.rmse(mu[..., d].mean(0), y[:, d]))
        assert ev.mc[f"nll[{d}]"] == pytest.approx(bayesdrop.metrics.gaussian_nll(mu[..., d].mean(0), std, y[:, d]))
    assert ev.mc["rmse"] == pytest.approx((ev.mc["rmse[0]"] + ev.mc["rmse[1]"]) / 2)
    with pytest.raises(ValueError, match=r"'y' parameter of evaluate must have 2 target\(s\) per example"):
        bayesdrop.evaluate(net, x, y[:, 0], likelihood=lik, num_samples=2)


def test_evaluate_from_a_dataloader_equals_evaluate_from_tensors():
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), Dropout(0.5), nn.Linear(16, 3))
    x, y = torch.randn(70, 3), torch.randint(0, 3, (70,))
    a = bayesdrop.evaluate(net, x, y, num_samples=15, seed=5, batch_size=32)
    b = bayesdrop.evaluate(net, DataLoader(TensorDataset(x, y), batch_size=32), num_samples=15, seed=5)
    c = bayesdrop.evaluate(net, TensorDataset(x, y), num_samples=15, seed=5, batch_size=32)
    for other in (b, c):
        np.testing.assert_array_equal(a.mc_predictive, other.mc_predictive)
        assert a.to_dict() == other.to_dict()  # metrics, gap and convergence (NaN SEs as None)


def test_bad_arguments():
    net = nn.Sequential(Dropout(0.5), nn.Linear(2, 2))
    x = torch.randn(4, 2)
    with pytest.raises(
        TypeError, match="'likelihood' parameter of evaluate must be a Categorical or Gaussian. Got str"
    ):
        bayesdrop.evaluate(net, x, [0, 1, 0, 1], likelihood="regression")
    with pytest.raises(TypeError, match="'y' parameter of evaluate is required"):
        bayesdrop.evaluate(net, x)
    with pytest.raises(TypeError, match=r"must yield \(x, y\) batches.*Got a list of length 3"):
        bayesdrop.evaluate(net, [[x, x, x]])
    with pytest.raises(ValueError, match="'num_samples' parameter of evaluate must be an int >= 1. Got 0"):
        bayesdrop.evaluate(net, x, [0, 1, 0, 1], num_samples=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]. Got 2"):
        bayesdrop.evaluate(net, x, [0, 1, 2, 1])
    ev = bayesdrop.evaluate(net, x.numpy(), [0, 1, 0, 1], num_samples=2)  # arrays are data too
    assert len(ev.targets) == 4


# --------------------------------------------------------------------------- the first hour (issue 19)


def _hf_loader(n: int = 48, batch_size: int = 16):
    """A DataLoader of tokenised texts through transformers' own DataCollatorWithPadding (local vocab, no download)."""
    import tempfile
    from pathlib import Path

    transformers = pytest.importorskip("transformers")
    vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrst"]))
    collate = transformers.DataCollatorWithPadding(transformers.BertTokenizer(vocab=str(vocab)))
    gen = torch.Generator().manual_seed(0)
    features = []
    for _ in range(n):
        length = int(torch.randint(3, 9, (), generator=gen))
        ids = torch.randint(5, 25, (length,), generator=gen).tolist()
        features.append({"input_ids": [2, *ids, 3], "labels": int(ids[0] >= 15)})
    return torch.utils.data.DataLoader(features, batch_size=batch_size, collate_fn=collate), transformers


def test_evaluate_and_fit_take_hugging_face_dict_batches_with_their_labels():
    loader, transformers = _hf_loader()
    first = next(iter(loader))
    assert set(first) == {"input_ids", "attention_mask", "labels"}  # what every HF collator yields
    config = transformers.BertConfig(
        vocab_size=25, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    h = bayesdrop.fit(model, loader, likelihood=bayesdrop.Categorical(), epochs=1, output="logits", seed=0,
                      progress=False)  # fmt: skip
    assert math.isfinite(h.loss[0])
    ev = bayesdrop.evaluate(model, loader, num_samples=4, output="logits", train_mode=True, seed=0)
    labels = torch.cat([b["labels"] for b in loader]).numpy()
    np.testing.assert_array_equal(ev.targets, labels)  # the labels came from the "labels" key
    # the same batches with the labels under another key: target= names it
    renamed = [{"y" if k == "labels" else k: v for k, v in b.items()} for b in loader]
    ev2 = bayesdrop.evaluate(model, renamed, num_samples=4, output="logits", train_mode=True, seed=0, target="y")
    np.testing.assert_allclose(ev2.mc_predictive, ev.mc_predictive)
    with pytest.raises(TypeError, match=r"dict batch without a target tensor under the key 'labels'.*target=KEY"):
        bayesdrop.evaluate(model, renamed, num_samples=2, output="logits", train_mode=True)


def test_a_regressor_without_a_likelihood_is_told_to_pass_one():
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    x, y = torch.randn(20, 2), torch.randn(20) * 0.1
    with pytest.raises(ValueError, match=r"likelihood=bayesdrop.Gaussian\(\)"):
        bayesdrop.evaluate(net, x, y, num_samples=3)


def test_evaluate_names_itself_for_a_model_without_dropout():
    net = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(ValueError, match=r"^evaluate\(\) needs a model with a stochastic layer"):
        bayesdrop.evaluate(net, torch.randn(5, 2), torch.randint(0, 3, (5,)), num_samples=3)


def test_evaluate_documents_that_the_batch_size_changes_the_draws():
    doc = bayesdrop.evaluate.__doc__
    assert "batch size" in doc.split("seed : int")[1].split("batch_size : int")[0]


# --------------------------------------------------------------------------- out-of-distribution data (issue 20)


def test_evaluate_with_ood_data_from_a_loader_equals_tensors():
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    x, y = torch.randn(60, 2), torch.randint(0, 3, (60,))
    far = torch.randn(40, 2) * 5
    ev = bayesdrop.evaluate(net, x, y, num_samples=8, seed=0, batch_size=16, ood=far)
    loader = DataLoader(TensorDataset(far), batch_size=16)  # inputs only, no labels
    ev_loader = bayesdrop.evaluate(net, x, y, num_samples=8, seed=0, batch_size=16, ood=loader)
    labelled = DataLoader(TensorDataset(far, torch.zeros(40, dtype=torch.long)), batch_size=16)  # labels ignored
    ev_labelled = bayesdrop.evaluate(net, x, y, num_samples=8, seed=0, batch_size=16, ood=labelled)
    assert ev.ood["num_examples"] == 40
    names = {"mc_max_prob", "mc_entropy", "mc_mutual_information", "mc_variation_ratio", "det_max_prob",
             "det_max_logit", "det_energy"}  # fmt: skip
    assert set(ev.ood["metrics"]) == names
    for other in (ev_loader, ev_labelled):
        for name in names:
            np.testing.assert_allclose(other.ood["scores_out"][name], ev.ood["scores_out"][name])
            assert other.ood["metrics"][name] == pytest.approx(ev.ood["metrics"][name])
    # the in-distribution scores are those of the evaluation itself
    np.testing.assert_allclose(ev.ood["scores_in"]["mc_entropy"], ev.per_example["entropy"])
    np.testing.assert_allclose(ev.ood["scores_in"]["mc_max_prob"], 1 - ev.mc_predictive.max(1))
    m = ev.ood["metrics"]["mc_entropy"]
    assert m == bayesdrop.metrics.ood_detection(ev.ood["scores_in"]["mc_entropy"], ev.ood["scores_out"]["mc_entropy"])
    assert json.dumps(ev.to_dict()["ood"])  # the metrics go to metrics.json


def test_evaluate_ood_for_a_regressor_uses_the_variances():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    lik = bayesdrop.Gaussian(heteroscedastic=True)
    ev = bayesdrop.evaluate(net, torch.randn(30, 1), torch.randn(30), likelihood=lik, num_samples=6, seed=0,
                            ood=torch.randn(20, 1) + 10)  # fmt: skip
    assert set(ev.ood["metrics"]) == {"mc_epistemic_var", "mc_total_var"}
    np.testing.assert_allclose(ev.ood["scores_in"]["mc_total_var"], ev.per_example["total_var"])
    with pytest.raises(ValueError, match=r"'ood' parameter of evaluate must hold at least one example"):
        bayesdrop.evaluate(net, torch.randn(5, 1), torch.randn(5), likelihood=lik, num_samples=2, ood=torch.zeros(0, 1))
