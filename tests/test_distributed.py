"""fit, evaluate and sample inside torch.distributed: two CPU processes, gloo, localhost, bounded in time.

Every check runs inside the workers (an AssertionError there fails the test
with the worker's traceback); the spawner kills both after ``TIMEOUT_S``.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import bayesdrop
import bayesdrop.active
from bayesdrop import _checkpoint, training
from bayesdrop._distributed import derive_seed, is_distributed, rank_seed
from bayesdrop.nn import Dropout, VariationalLinear
from tests.conftest import z_value

TIMEOUT_S = 180
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_once(fn, *args) -> None:
    port = _free_port()
    ctx = mp.start_processes(fn, args=(2, port, *args), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=5):  # raises ProcessRaisedException with the worker's traceback
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"{fn.__name__} did not finish within {TIMEOUT_S} s")


def _spawn(fn, *args) -> None:
    """Run ``fn`` on two ranks; a failed check in a worker fails at once.

    A worker killed by a signal, not by a Python exception, gets one more try
    on a fresh port: gloo's C++ threads have aborted a worker ("terminate
    called without an active exception", SIGABRT) once in many CI runs with
    every check passing. A crash that repeats still fails the test.
    """
    try:
        _spawn_once(fn, *args)
    except mp.ProcessExitedException as crash:
        print(f"{fn.__name__}: a worker crashed ({crash}); trying once more")
        _spawn_once(fn, *args)


def _init(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))


def _both(obj):
    out = [None, None]
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------ fit


def _kl_only_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(VariationalLinear(4, 1))


def _sgd(groups):
    return torch.optim.SGD(groups, lr=0.1)


def _fit_worker(rank: int, world: int, port: int, tmp: str) -> None:
    _init(rank, world, port)
    try:
        # Inputs are zero, so the output is the bias (plus the layer's 1e-4 numerical jitter): the weights and
        # log sigma^2 move by the KL gradient alone. With the KL counted once per step and the global N, two
        # ranks of 16 rows equal one process with batches of 32 rows in the same order; counting the KL once
        # per rank, or using the local N, doubles the weights' steps.
        n = 64
        x = torch.zeros(n, 4)
        y = torch.randn(n, generator=torch.Generator().manual_seed(1))
        ds = TensorDataset(x, y)
        ref, ref_lik = _kl_only_net(), bayesdrop.Gaussian()
        kw = dict(epochs=3, optimizer=_sgd, progress=False, seed=0)
        training.fit(ref, DataLoader(ds, batch_size=32), likelihood=ref_lik, **kw)

        saves = []
        real_save = _checkpoint.save_atomic  # what fit's checkpoints are written with
        _checkpoint.save_atomic = lambda obj, path: (saves.append(path), real_save(obj, path))
        sampler = DistributedSampler(ds, shuffle=False)
        loader = DataLoader(ds, batch_size=16, sampler=sampler)
        ddp, lik = nn.parallel.DistributedDataParallel(_kl_only_net()), bayesdrop.Gaussian()
        ckpt = Path(tmp) / f"ddp-{port}.pt"  # a fresh file for a retried spawn
        h = training.fit(ddp, loader, likelihood=lik, checkpoint=ckpt, **kw)
        _checkpoint.save_atomic = real_save
        net = ddp.module[0]
        start = _kl_only_net()[0]
        assert (net.weight - start.weight).abs().min() > 1e-3  # the KL moved the weights
        torch.testing.assert_close(net.weight, ref[0].weight, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(net.log_sigma2, ref[0].log_sigma2, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(net.bias, ref[0].bias, rtol=0, atol=1e-3)
        torch.testing.assert_close(lik.log_var, ref_lik.log_var, rtol=0, atol=1e-3)
        a, b = _both([p.detach() for p in [*ddp.parameters(), *lik.parameters()]])
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))  # one model on both ranks
        assert h.loss == _both(h.loss)[1 - rank]  # the history is the global one
        assert sampler.epoch == 2  # set every epoch
        assert len(saves) == (3 if rank == 0 else 0)  # only rank 0 writes
        dist.barrier()
        state = training.load_checkpoint(ckpt)
        assert state["world_size"] == 2 and len(state["batch_rng"]) == 2

        # Resume: 3 epochs from the checkpoint + 1 = 4 uninterrupted epochs.
        kw["epochs"] = 4
        resumed = nn.parallel.DistributedDataParallel(_kl_only_net())
        training.fit(resumed, loader, likelihood=bayesdrop.Gaussian(), checkpoint=ckpt, resume=True, **kw)
        fresh = nn.parallel.DistributedDataParallel(_kl_only_net())
        training.fit(fresh, loader, likelihood=bayesdrop.Gaussian(), **kw)
        for p, q in zip(resumed.parameters(), fresh.parameters(), strict=True):
            assert torch.equal(p, q)
        dist.barrier()  # both ranks done before either tears gloo down
    finally:
        dist.destroy_process_group()


def test_fit_under_ddp_counts_the_kl_once_and_resumes(tmp_path):
    _spawn(_fit_worker, str(tmp_path))


# ------------------------------------------------------------------- evaluate


def _unit() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(0.4), nn.Linear(2, 3)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.5, -2.0], [-0.5, 1.0], [2.0, 0.5]]))
        net[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return net


X = torch.tensor([[1.0, 2.0], [-1.5, 0.5], [0.25, -0.75], [2.0, -1.0], [0.5, 0.5]], dtype=torch.float64)
Y = torch.tensor([0, 1, 2, 0, 1])


def _exact(net: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    """The MC predictive's exact mean and per-class variance: the four dropout masks of two inputs."""
    q = 0.6
    probs, weights = [], []
    for m in itertools.product([0, 1], repeat=2):
        with torch.no_grad():
            probs.append(torch.softmax(net[1](X * torch.tensor(m, dtype=torch.float64) / q), -1).numpy())
        weights.append(q ** sum(m) * (1 - q) ** (2 - sum(m)))
    p, w = np.array(probs), np.array(weights)[:, None, None]
    mean = (w * p).sum(0)
    return mean, (w * (p - mean) ** 2).sum(0)


def _evaluate_worker(rank: int, world: int, port: int) -> None:
    _init(rank, world, port)
    try:
        assert is_distributed()
        net, T = _unit(), 4000
        exact, var = _exact(net)
        z = z_value(2 * exact.size)
        ds = TensorDataset(X, Y)  # 5 rows on 2 ranks: DistributedSampler pads one
        loader = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, shuffle=True, seed=0))
        ev = bayesdrop.evaluate(net, loader, num_samples=T, seed=0)
        assert np.array_equal(ev.targets, Y.numpy())  # the whole set, in dataset order, padding dropped
        assert np.all(np.abs(ev.mc_predictive - exact) <= z * np.sqrt(var / T))
        other = _both(ev.to_dict())[1 - rank]
        assert other == ev.to_dict()  # every rank returns the metrics of the whole set
        single = bayesdrop.evaluate(net, X, Y, num_samples=T, seed=0)  # one process' evaluation, same set
        assert np.all(np.abs(single.mc_predictive - ev.mc_predictive) <= z * np.sqrt(2 * var / T))
        assert ev.convergence["nll"]["value"][-1] == pytest.approx(ev.mc["nll"])

        # Never the same noise on two ranks: seeded, or unseeded after the same torch.manual_seed.
        a, b = _both(bayesdrop.sample(net, X, 50, seed=0))
        assert not torch.equal(a, b)
        torch.manual_seed(0)
        a, b = _both(bayesdrop.sample(net, X, 50))
        assert not torch.equal(a, b)
        assert _both(rank_seed(7)) == [derive_seed(7, 0), derive_seed(7, 1)]
        dist.barrier()  # both ranks done before either tears gloo down
    finally:
        dist.destroy_process_group()


def test_evaluate_all_reduces_and_ranks_draw_different_noise():
    _spawn(_evaluate_worker)


def _consistent_worker(rank: int, world: int, port: int) -> None:
    _init(rank, world, port)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4)).eval()
        pool = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
        whole = bayesdrop.sample(net, pool, 20, seed=5, consistent=True)
        half = bayesdrop.sample(net, pool[5 * rank : 5 * rank + 5], 20, seed=5, consistent=True)
        assert torch.allclose(half, whole[:, 5 * rank : 5 * rank + 5], atol=1e-6)  # a rank's share of the pool
        assert torch.equal(*_both(whole))  # the seed is not combined with the rank
        torch.manual_seed(rank)  # unseeded: rank 0's draw is broadcast, whatever the ranks' RNG states
        assert torch.equal(*_both(bayesdrop.sample(net, pool, 20, consistent=True)))
        scores = bayesdrop.active.acquire(net, pool[5 * rank : 5 * rank + 5], 5, num_samples=20, seed=5).scores
        ref = bayesdrop.active.acquire(net, pool, 10, num_samples=20, seed=5)
        mine = ref.scores[(ref.indices >= 5 * rank) & (ref.indices < 5 * rank + 5)]
        assert torch.allclose(scores.sort().values, mine.sort().values)
        dist.barrier()  # both ranks done before either tears gloo down
    finally:
        dist.destroy_process_group()


def test_consistent_masks_are_the_same_on_every_rank():
    _spawn(_consistent_worker)


def test_the_distributed_example_runs_under_torchrun(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port",
        str(_free_port()),
        str(ROOT / "examples" / "distributed.py"),
        "--smoke",
        "--out",
        str(tmp_path / "report"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rank 0" in res.stdout and (tmp_path / "report" / "index.html").exists()


def test_one_process_without_a_process_group():
    assert not is_distributed()
    assert rank_seed(5) == 5 and rank_seed(None) is None
