"""bayesdrop.active: scores, joint entropies, BatchBALD, stochastic batches, acquire and the pool loop.

Statistical tests use z = 5 (two-sided false-failure probability 6e-7 per
comparison; a few hundred comparisons in the suite keep the total near 1e-4).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop
from bayesdrop import active, metrics
from bayesdrop.likelihoods import Gaussian

Z = 5.0


def _random_probs(t: int, n: int, k: int, seed: int = 0, sharp: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(sharp * torch.randn(t, n, k, generator=gen, dtype=torch.float64), -1)


# --------------------------------------------------------------------------- scores


def test_bald_equals_mutual_information_and_entropy_equals_predictive_entropy():
    p = _random_probs(20, 50, 4)
    logits = p.log()
    assert np.allclose(active.acquisition_scores(logits, "bald").numpy(), metrics.mutual_information(p.numpy()))
    assert np.allclose(active.acquisition_scores(logits, "entropy").numpy(), metrics.predictive_entropy(p.numpy()))
    vr = active.acquisition_scores(logits, "variation_ratio").numpy()
    assert np.allclose(vr, metrics.variation_ratio(p.numpy())) and len(np.unique(vr)) > 3  # votes of the T samples


def test_scores_on_a_hand_computed_example():
    # Two samples of one example over 3 classes: mean (0.5, 0.3, 0.2).
    p = torch.tensor([[[0.6, 0.2, 0.2]], [[0.4, 0.4, 0.2]]], dtype=torch.float64)
    s = {m: float(active.acquisition_scores(p.log(), m)[0]) for m in ("mean_std", "margin")}
    assert s["mean_std"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)  # per-class std over samples (ddof 0)
    assert s["margin"] == pytest.approx(1 - (0.5 - 0.3))


def test_binary_logit_column_is_read_as_two_classes():
    z = torch.tensor([[0.0, 3.0], [2.0, -1.0]])  # (T, N) logits of P(y = 1)
    two = torch.stack([torch.zeros_like(z), z], -1)  # the same as two-class logits [0, z]
    assert torch.allclose(active.acquisition_scores(z, "bald"), active.acquisition_scores(two, "bald"))


def test_variance_score_of_a_regressor_is_the_variance_of_the_sampled_means():
    gen = torch.Generator().manual_seed(1)
    means, log_var = torch.randn(30, 8, 1, generator=gen), torch.randn(30, 8, 1, generator=gen)
    het = active.acquisition_scores(torch.cat([means, log_var], -1), "variance", likelihood=Gaussian(True))
    assert torch.allclose(het, means.double().var(0, unbiased=False)[:, 0])
    homo = active.acquisition_scores(means[..., 0], "variance", likelihood=Gaussian())
    assert torch.allclose(homo, het)


def test_score_errors_name_the_fix():
    p = _random_probs(4, 3, 2).log()
    with pytest.raises(ValueError, match="method='variance'"):
        active.acquisition_scores(p, "bald", likelihood=Gaussian())
    with pytest.raises(ValueError, match="likelihood is Categorical"):
        active.acquisition_scores(p, "variance")
    with pytest.raises(ValueError, match="'method' parameter of acquisition_scores must be one of"):
        active.acquisition_scores(p, "bold")


# --------------------------------------------------------------------------- joint entropy and BatchBALD


def _brute_joint_entropy(probs: torch.Tensor) -> float:
    t, k, c = probs.shape
    h = 0.0
    for config in itertools.product(range(c), repeat=k):
        pc = float(np.mean([np.prod([float(probs[s, j, config[j]]) for j in range(k)]) for s in range(t)]))
        h -= pc * math.log(pc) if pc > 0 else 0.0
    return h


@pytest.mark.parametrize(("t", "k", "c"), [(1, 1, 2), (3, 2, 3), (4, 3, 3), (2, 4, 2)])
def test_exact_joint_entropy_equals_enumeration(t, k, c):
    probs = _random_probs(t, k, c, seed=t * 10 + k)
    assert float(active.joint_entropy(probs)) == pytest.approx(_brute_joint_entropy(probs), rel=1e-10)


def test_sampled_joint_entropy_is_within_z_standard_errors_of_the_exact_one():
    # The estimator -mean(log p(c_m)) over m configurations drawn from p: its variance is Var[log p(c)] / m.
    probs = _random_probs(5, 4, 3, seed=3, sharp=1.5)
    exact = float(active.joint_entropy(probs))
    joint = probs.new_ones(5, 1)
    for j in range(4):
        joint = (joint[:, :, None] * probs[:, j, None, :]).reshape(5, -1)
    p = joint.mean(0)
    var = float((p * p.log() ** 2).sum()) - exact**2
    m = 4000
    est = float(active.joint_entropy(probs, num_configurations=m, generator=torch.Generator().manual_seed(0)))
    assert abs(est - exact) <= Z * math.sqrt(var / m)
    assert var > 0  # the test can fail: a biased estimator (say, weights 1/p dropped) is ~30 SE away


def test_sampled_candidate_joint_entropies_are_within_z_standard_errors_of_the_exact_ones():
    # With a batch's configurations c drawn from p(c), BatchBALD estimates H[y_batch, y_n] by the mean of
    # g(c) = -sum_y p(y | c) log p(c, y); its variance is Var_c[g] / m, computed here by enumeration.
    from bayesdrop.active import _candidate_joint_entropies, _exact_configurations, _sampled_configurations

    probs = _random_probs(4, 6, 3, seed=8, sharp=1.5)
    exact_joint = _exact_configurations(probs[:, :3])  # (T, 27)
    exact = _candidate_joint_entropies(exact_joint, probs, True)
    pc = exact_joint.mean(0)  # (27,)
    pcy = torch.einsum("tc,tnk->nck", exact_joint, probs) / 4  # (N, 27, K)
    g = -(pcy / pc[None, :, None] * torch.log(pcy)).sum(-1)  # (N, 27)
    var = (pc * g**2).sum(-1) - (pc * g).sum(-1) ** 2
    m = 5000
    sampled = _sampled_configurations(probs[:, :3], m, torch.Generator().manual_seed(1))
    est = _candidate_joint_entropies(sampled, probs, False)
    assert torch.all((est - exact).abs() <= Z * torch.sqrt(var / m))
    assert torch.allclose((pc * g).sum(-1), exact)  # the estimator's mean is the exact joint entropy


def test_batchbald_with_k_1_is_the_top_bald_example():
    p = _random_probs(10, 40, 5, seed=5)
    bald = active.acquisition_scores(p.log(), "bald")
    one = active.batchbald(p, 1)
    assert one.indices.tolist() == [int(bald.argmax())]
    assert float(one.scores[0]) == pytest.approx(float(bald.max()), rel=1e-10)


def test_batchbald_scores_are_the_joint_mutual_information_of_the_batch():
    p = _random_probs(6, 25, 3, seed=6)
    picked = active.batchbald(p, 4, num_configurations=10**6)  # exact throughout
    chosen = picked.indices.tolist()
    for i in range(1, 5):
        batch = p[:, chosen[:i]]
        mi = float(active.joint_entropy(batch)) - float(metrics.expected_entropy(batch.numpy()).sum())
        assert float(picked.scores[i - 1]) == pytest.approx(mi, rel=1e-9)
    assert bool((picked.scores[1:] >= picked.scores[:-1] - 1e-12).all())


def _duplicated_pool(copies: int = 3) -> torch.Tensor:
    # 30 distinct examples whose T = 20 sampled networks are confident but disagree (a trained CNN's picture);
    # every example appears `copies` times with identical samples, as consistent masks give identical inputs.
    gen = torch.Generator().manual_seed(7)
    votes = torch.randint(0, 10, (20, 30), generator=gen)
    votes[:, :10] = votes[:, :10] % 2  # some examples split between two classes only (less BALD)
    probs = torch.full((20, 30, 10), 0.001 / 9, dtype=torch.float64)
    probs.scatter_(2, votes[..., None], 0.999)
    return probs.repeat(1, copies, 1)


def test_batchbald_never_takes_two_copies_while_top_k_bald_does():
    probs = _duplicated_pool()
    base = torch.arange(probs.shape[1]) % 30
    topk = active.acquisition_scores(probs.log(), "bald").topk(10).indices
    assert len(set(base[topk].tolist())) < 10  # top-k BALD takes copies
    picked = active.batchbald(probs, 10, num_configurations=1000, generator=torch.Generator().manual_seed(0))
    assert len(set(base[picked.indices].tolist())) == 10


def test_batchbald_on_the_top_bald_candidates_returns_pool_indices():
    probs = _duplicated_pool()
    bald = active.acquisition_scores(probs.log(), "bald")
    picked = active.batchbald(probs, 5, num_candidates=30, generator=torch.Generator().manual_seed(0))
    assert set(picked.indices.tolist()) <= set(bald.topk(30).indices.tolist())
    assert len(set((picked.indices % 30).tolist())) == 5  # still no two copies
    full = active.batchbald(probs, 1)
    assert float(active.batchbald(probs, 1, num_candidates=3).scores[0]) == pytest.approx(float(full.scores[0]))
    with pytest.raises(ValueError, match="'num_candidates' parameter of batchbald must be at least k = 5"):
        active.batchbald(probs, 5, num_candidates=4)


def test_batchbald_k_larger_than_pool_is_an_error():
    with pytest.raises(ValueError, match="'k' parameter of batchbald must be at most the pool size 3"):
        active.batchbald(_random_probs(2, 3, 2), 4)


# --------------------------------------------------------------------------- stochastic batches


@pytest.mark.parametrize("mode", ["softmax", "power", "softrank"])
def test_stochastic_acquisition_follows_its_distribution(mode):
    scores = torch.tensor([0.2, 1.0, 2.0, 0.5], dtype=torch.float64)
    beta = 1.5
    if mode == "softmax":
        w = torch.exp(beta * scores)
    elif mode == "power":
        w = scores**beta
    else:
        w = torch.tensor([4.0, 2.0, 1.0, 3.0], dtype=torch.float64) ** -beta  # the scores' ranks r: weights r^-beta
    expect = (w / w.sum()).numpy()
    n = 20000
    gen = torch.Generator().manual_seed(11)
    draws = [int(active.stochastic_batch(scores, 1, mode=mode, beta=beta, generator=gen).indices[0]) for _ in range(n)]
    freq = np.bincount(draws, minlength=4) / n
    assert np.all(np.abs(freq - expect) <= Z * np.sqrt(expect * (1 - expect) / n))


def test_stochastic_batch_draws_without_replacement():
    picked = active.stochastic_batch(torch.arange(10.0), 10, generator=torch.Generator().manual_seed(0))
    assert sorted(picked.indices.tolist()) == list(range(10))


def test_power_mode_needs_non_negative_scores_but_forgives_rounding():
    with pytest.raises(ValueError, match="scores >= 0 .* Got -1"):
        active.stochastic_batch(torch.tensor([-1.0, 1.0]), 1, mode="power")
    picked = active.stochastic_batch(torch.tensor([-1e-17, 1.0]), 2, mode="power")  # a BALD score rounded below 0
    assert sorted(picked.indices.tolist()) == [0, 1]


# --------------------------------------------------------------------------- acquire on a model


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)).eval()


def test_consistent_masks_are_shared_by_every_example_and_have_the_dropout_rate():
    net = nn.Sequential(nn.Dropout(0.25))
    s = bayesdrop.sample(net, torch.ones(6, 400), 50, seed=0, consistent=True)
    assert torch.equal(s, s[:, :1].expand_as(s))  # the same mask for every example
    # Kept fraction over 50 x 400 independent mask entries: 0.75 within z SE.
    kept = float((s[:, 0] > 0).double().mean())
    assert abs(kept - 0.75) <= Z * math.sqrt(0.75 * 0.25 / (50 * 400))
    assert torch.all((s == 0) | (s == 1 / 0.75))


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_consistent_samples_do_not_depend_on_the_chunk_size(chunk):
    net, x = _net(), torch.randn(64, 5)
    whole = bayesdrop.sample(net, x, 12, seed=3, consistent=True)
    assert torch.allclose(bayesdrop.sample(net, x, 12, seed=3, consistent=True, chunk_size=chunk), whole, atol=1e-6)
    assert torch.allclose(bayesdrop.sample(net, x[10:20], 12, seed=3, consistent=True), whole[:, 10:20], atol=1e-6)


def test_consistent_masks_reach_bayesdrop_layers_too():
    torch.manual_seed(0)
    net = nn.Sequential(bayesdrop.nn.VariationalLinear(5, 8), nn.ReLU(), bayesdrop.nn.Dropout(0.3), nn.Linear(8, 2))
    x = torch.randn(9, 5)
    s = bayesdrop.sample(net, x, 5, seed=1, consistent=True)
    assert torch.allclose(bayesdrop.sample(net, x[4:5], 5, seed=1, consistent=True), s[:, 4:5], atol=1e-6)


def test_acquire_scores_do_not_depend_on_the_batch_size_or_the_pool_type():
    net, pool = _net(), torch.randn(50, 5)
    ref = active.acquire(net, pool, 6, num_samples=15, seed=2, batch_size=50)
    for other in (
        active.acquire(net, pool, 6, num_samples=15, seed=2, batch_size=7),
        active.acquire(net, TensorDataset(pool), 6, num_samples=15, seed=2, batch_size=9),
        active.acquire(net, DataLoader(TensorDataset(pool, torch.zeros(50)), batch_size=11), 6, num_samples=15, seed=2),
        active.acquire(net, pool.numpy(), 6, num_samples=15, seed=2),
    ):
        assert other.indices.tolist() == ref.indices.tolist()
        assert torch.allclose(other.scores, ref.scores)


def test_acquire_bald_equals_mutual_information_of_the_consistent_samples():
    net, pool = _net(), torch.randn(30, 5)
    picked = active.acquire(net, pool, 30, num_samples=25, seed=4)
    s = bayesdrop.sample(net, pool, 25, seed=4, consistent=True)
    mi = metrics.mutual_information(torch.softmax(s.double(), -1).numpy())
    assert np.allclose(picked.scores.numpy(), mi[picked.indices.numpy()])
    assert picked.indices.tolist() == np.argsort(-mi, kind="stable").tolist()


@pytest.mark.parametrize("method", [*active.CLASSIFICATION_SCORES, "random", "batchbald"])
def test_every_classification_method_returns_k_distinct_indices(method):
    picked = active.acquire(_net(), torch.randn(40, 5), 5, method=method, num_samples=8, seed=0)
    assert len(set(picked.indices.tolist())) == 5 and picked.scores.shape == (5,)


def test_acquire_stochastic_is_reproducible_from_the_seed():
    net, pool = _net(), torch.randn(40, 5)
    a = active.acquire(net, pool, 5, num_samples=8, seed=9, stochastic="power")
    assert (
        a.indices.tolist() == active.acquire(net, pool, 5, num_samples=8, seed=9, stochastic="power").indices.tolist()
    )


def test_acquire_variance_on_a_fitted_regressor_reads_its_likelihood():
    from sklearn.datasets import load_diabetes

    from bayesdrop.sklearn import DropoutRegressor

    X, y = load_diabetes(return_X_y=True)
    est = DropoutRegressor(hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(X[:100], y[:100])
    pool = torch.tensor(X[100:160], dtype=torch.float32)
    picked = active.acquire(est.model_, pool, 4, method="variance", num_samples=10, seed=0)
    assert len(picked.indices) == 4
    with pytest.raises(ValueError, match="regressor .*method='variance'"):
        active.acquire(est.model_, pool, 4, method="bald")


def test_acquire_bad_input():
    net, pool = _net(), torch.randn(5, 5)
    with pytest.raises(ValueError, match="'k' parameter of acquire must be at most the pool size 5. Got 6"):
        active.acquire(net, pool, 6, num_samples=2)
    with pytest.raises(ValueError, match="'pool' parameter of acquire must hold at least one example"):
        active.acquire(net, torch.randn(0, 5), 1, num_samples=2)
    with pytest.raises(ValueError, match="'k' parameter of acquire must be at most the pool size 5. Got 6"):
        active.acquire(net, DataLoader(TensorDataset(pool), batch_size=2), 6, method="batchbald", num_samples=2)
    with pytest.raises(ValueError, match="must hold at least one example"):
        active.acquire(net, TensorDataset(torch.randn(0, 5)), 1, method="batchbald", num_samples=2)
    with pytest.raises(ValueError, match="needs a model with a stochastic layer"):
        active.acquire(nn.Linear(5, 3), pool, 1, num_samples=2)
    with pytest.raises(ValueError, match="'method' parameter of acquire must be one of"):
        active.acquire(net, pool, 1, method="coreset")
    with pytest.raises(ValueError, match="'stochastic' parameter of acquire must be None with method='batchbald'"):
        active.acquire(net, pool, 1, method="batchbald", stochastic="power")
    with pytest.raises(TypeError, match="'pool' parameter of acquire must be a tensor"):
        active.acquire(net, [pool], 1)


# --------------------------------------------------------------------------- the loop


def _digits(n_pool: int = 400) -> tuple[TensorDataset, tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16, dtype=torch.float32)
    y = torch.tensor(y)
    return TensorDataset(X[:n_pool], y[:n_pool]), (X[1500:], y[1500:])


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))


LOOP = {"rounds": 3, "k": 5, "initial": 10, "subset": 150, "fit_options": {"epochs": 3}, "eval_samples": 4,
        "acquire_options": {"num_samples": 6}, "progress": False}  # fmt: skip


def test_loop_labels_what_it_acquired_and_records_every_round(tmp_path):
    pool, test = _digits()
    h = active.run_loop(pool, _mlp, test=test, method="bald", seed=1, **LOOP)
    assert h.labels == [10, 15, 20, 25]
    assert sorted(h.labelled[:10]) == sorted(active.initial_labels(pool.tensors[1], 10, seed=1))
    assert h.labelled[10:] == [i for c in h.chosen for i in c] and len(set(h.labelled)) == 25
    assert all(0 <= m["accuracy"] <= 1 for m in h.metrics) and len(h.seconds) == 4 and h.stopped
    assert sorted(pool.tensors[1][h.labelled[:10]].tolist()) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # balanced start


class _Crash(Exception):
    pass


def _train(model, data):
    bayesdrop.fit(model, data, likelihood=bayesdrop.Categorical(), epochs=3, progress=False)  # global RNG


def test_loop_resume_equals_an_uninterrupted_run_and_a_crash_loses_no_label(tmp_path):
    # A user's training callable on torch's global RNG: the loop seeds it per round, so a resume matches.
    pool, test = _digits()
    whole = active.run_loop(pool, _mlp, test=test, seed=3, train=_train, **LOOP)
    calls = []

    def crashing(model, data):
        calls.append(len(data[1]))
        if len(calls) == 3:
            raise _Crash
        _train(model, data)

    ckpt = tmp_path / "loop.pt"
    with pytest.raises(_Crash):
        active.run_loop(pool, _mlp, test=test, seed=3, train=crashing, checkpoint=ckpt, **LOOP)
    saved = active.ActiveHistory(**torch.load(ckpt, weights_only=True)["history"])
    assert len(saved.labelled) == 20  # two acquisitions made before the crash are in the checkpoint
    resumed = active.run_loop(pool, _mlp, test=test, seed=3, train=_train, checkpoint=ckpt, resume=True, **LOOP)
    assert resumed.labelled == whole.labelled and resumed.chosen == whole.chosen
    assert resumed.metrics == whole.metrics
    again = active.run_loop(pool, _mlp, test=test, seed=3, train=_train, checkpoint=ckpt, resume=True, **LOOP)
    assert again.labelled == whole.labelled  # a finished run returns at once


def test_loop_default_training_is_reproducible_from_the_seed():
    pool, test = _digits()
    a = active.run_loop(pool, _mlp, test=test, seed=5, **{**LOOP, "rounds": 1})
    b = active.run_loop(pool, _mlp, test=test, seed=5, **{**LOOP, "rounds": 1})
    assert a.labelled == b.labelled and a.metrics == b.metrics


def test_loop_stop_when_ends_the_run_before_its_acquisition():
    pool, test = _digits()
    h = active.run_loop(pool, _mlp, test=test, seed=0, stop_when=lambda h: len(h.labels) == 2, **LOOP)
    assert h.labels == [10, 15] and h.chosen[-1] == [] and h.stopped


def test_loop_bad_input(tmp_path):
    pool, test = _digits()
    ckpt = tmp_path / "a.pt"
    active.run_loop(pool, _mlp, test=test, seed=0, checkpoint=ckpt, **{**LOOP, "rounds": 1})
    other, _ = _digits(300)
    with pytest.raises(ValueError, match="written for another pool"):
        active.run_loop(other, _mlp, test=test, seed=0, checkpoint=ckpt, resume=True, **{**LOOP, "rounds": 1})
    with pytest.raises(ValueError, match="needs an existing 'checkpoint'"):
        active.run_loop(pool, _mlp, test=test, resume=True, **LOOP)
    with pytest.raises(ValueError, match="fewer than the 10 classes"):
        active.run_loop(pool, _mlp, test=test, **{**LOOP, "initial": 5})
    missing = TensorDataset(pool.tensors[0], pool.tensors[1].clamp(max=8) * 0 + torch.arange(400) % 2 * 9)
    with pytest.raises(ValueError, match="0 examples of class 1"):
        active.run_loop(missing, _mlp, test=test, **LOOP)
    with pytest.raises(ValueError, match="more than the dataset's 400"):
        active.run_loop(pool, _mlp, test=test, **{**LOOP, "rounds": 100})


def test_loop_for_a_regressor_acquires_by_the_epistemic_variance():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = torch.tensor(X * 10, dtype=torch.float32), torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    pool = TensorDataset(X[:300], y[:300])

    def net():
        return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))

    lik = Gaussian(heteroscedastic=True)
    options = {**LOOP, "rounds": 2, "initial": 20, "subset": None}
    h = active.run_loop(
        pool, net, test=(X[300:], y[300:]), method="variance", likelihood=lik, balanced=False, **options
    )
    assert h.labels == [20, 25, 30] and "rmse" in h.metrics[-1]
    with pytest.raises(ValueError, match="labels are real numbers .* balanced=False"):
        active.run_loop(pool, net, test=(X[300:], y[300:]), method="variance", likelihood=lik, **options)


def test_active_learning_curves_draw_the_mean_and_a_band():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = active.ActiveHistory(labels=[20, 30], metrics=[{"accuracy": 0.5}, {"accuracy": 0.7}])
    b = active.ActiveHistory(labels=[20, 30, 40], metrics=[{"accuracy": 0.7}, {"accuracy": 0.9}, {"accuracy": 0.95}])
    out = bayesdrop.plots.active_learning_curves({"bald": [a, b], "random": [a]}, error=True)
    x, y = out["lines"]["bald"].get_data()
    assert list(x) == [20, 30, 40] and np.allclose(y, [0.4, 0.2, 0.05])
    assert "bald" in out["bands"] and "random" not in out["bands"]
    plt.close("all")
