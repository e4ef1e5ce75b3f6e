"""DropPath, stochastic depth, the linear decay rule and FractalNet joins."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import (
    DropPath,
    DropPathJoin,
    StochasticDepth,
    linear_decay,
)
from tests.conftest import z_value


@pytest.mark.parametrize("p", [0.5, 0.2])  # at p = 0.5 a swap of drop and keep probability is invisible
def test_drop_path_drops_whole_examples(p):
    torch.manual_seed(0)
    layer = DropPath(p).train()
    y = layer(torch.ones(2000, 3, 4))
    per = y.flatten(1)
    assert torch.equal(per.amin(1), per.amax(1))
    assert torch.allclose(torch.unique(per), torch.tensor([0.0, 1 / (1 - p)]))  # kept examples scaled 1/(1-p)
    frac = float((per[:, 0] == 0).double().mean())  # dropped with probability p
    assert abs(frac - p) <= z_value(2) * math.sqrt(p * (1 - p) / 2000)
    assert torch.equal(DropPath(0.5).eval()(torch.ones(3)), torch.ones(3))


def test_stochastic_depth_and_linear_decay():
    block = nn.Linear(4, 4)
    sd = StochasticDepth(block, 0.5).eval()
    x = torch.randn(8, 4)
    torch.testing.assert_close(sd(x), x + block(x))
    with bayesdrop.sampling(sd):
        out = sd(x)
    branch = (out - x).detach()
    kept = ~torch.isclose(branch, torch.zeros_like(branch)).all(1)
    torch.testing.assert_close(branch[kept], 2 * block(x)[kept].detach())
    decay = linear_decay(5, 0.5)
    survival = [1 - d for d in decay]
    assert survival == pytest.approx([1 - (l / 5) * (1 - 0.5) for l in range(1, 6)])
    # p_last = 0.2 is the last block's drop probability (survival p_L = 0.8): drops l/L * 0.2.
    assert linear_decay(4, 0.2) == pytest.approx([0.05, 0.1, 0.15, 0.2])


def test_stochastic_depth_drops_the_branch_with_probability_p():
    # p = 0.2 of 4000 examples: the branch is dropped with probability p and kept ones are scaled 1/(1-p).
    torch.manual_seed(0)
    block = nn.Linear(4, 4)
    sd = StochasticDepth(block, 0.2)
    x = torch.randn(4000, 4)
    with torch.no_grad(), bayesdrop.sampling(sd):
        branch = sd(x) - x
        full = block(x)
    dropped = torch.isclose(branch, torch.zeros_like(branch), atol=1e-6).all(1)
    assert abs(float(dropped.double().mean()) - 0.2) <= z_value(2) * math.sqrt(0.2 * 0.8 / 4000)
    torch.testing.assert_close(branch[~dropped], full[~dropped] / 0.8, rtol=1e-5, atol=1e-6)


def test_drop_path_join_probabilities_at_p_not_one_half():
    # Two paths (1 and 3), p_local = 0.2: both kept (mean 2) with probability 0.8^2 = 0.64; a swap of drop
    # and keep would give 0.04. p_global = 0.3 with p_local = 0: a batch keeps a single path (1 or 3) with
    # probability 0.3.
    torch.manual_seed(0)
    paths = torch.stack([torch.full((4000, 1), 1.0), torch.full((4000, 1), 3.0)], 1)
    out = DropPathJoin(2, p_local=0.2, p_global=0.0).train()(paths)[:, 0]
    both = float((out == 2.0).double().mean())
    assert abs(both - 0.64) <= z_value(2) * math.sqrt(0.64 * 0.36 / 4000)
    glob = DropPathJoin(2, p_local=0.0, p_global=0.3).train()
    one = torch.stack([glob(paths[:1])[0, 0] != 2.0 for _ in range(4000)]).double().mean()
    assert abs(float(one) - 0.3) <= z_value(2) * math.sqrt(0.3 * 0.7 / 4000)


def test_drop_path_join_local_global_and_eval():
    torch.manual_seed(0)
    join = DropPathJoin(3, p_local=0.5, p_global=0.0).train()
    paths = torch.stack([torch.full((500, 2), v) for v in (1.0, 2.0, 4.0)], 1)
    out = join(paths)
    possible = {1.0, 2.0, 4.0, 1.5, 2.5, 3.0, 7 / 3}
    assert set(np.round(out[:, 0].tolist(), 6)) <= {round(v, 6) for v in possible}  # never empty
    assert len(set(np.round(out[:, 0].tolist(), 6))) > 3
    glob = DropPathJoin(3, p_local=0.5, p_global=1.0).train()
    g = glob(paths)
    assert torch.unique(g).numel() == 1 and float(g[0, 0]) in (1.0, 2.0, 4.0)  # one path for the batch
    torch.testing.assert_close(join.eval()(paths), paths.mean(1))
    with bayesdrop.sampling(glob):
        s = glob(paths)
    assert torch.unique(s[:, 0]).numel() == 3  # per example under sampling
    with pytest.raises(ValueError, match=r"'num_paths' parameter of DropPathJoin must be an int >= 2. Got 1"):
        DropPathJoin(1)


def test_drop_path_draws_from_the_generator_it_is_given():
    # Mutation testing: ignoring `generator` survived. Same generator seed, same mask; the global RNG untouched.
    from bayesdrop.nn.functional import drop_path

    x = torch.ones(256, 3)
    state = torch.get_rng_state()
    a = drop_path(x, 0.5, generator=torch.Generator().manual_seed(0))
    b = drop_path(x, 0.5, generator=torch.Generator().manual_seed(0))
    c = drop_path(x, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)
