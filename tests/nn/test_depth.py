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


def test_drop_path_drops_whole_examples():
    layer = DropPath(0.5).train()
    y = layer(torch.ones(2000, 3, 4))
    per = y.flatten(1)
    assert torch.equal(per.amin(1), per.amax(1)) and set(torch.unique(per).tolist()) == {0.0, 2.0}
    frac = float((per[:, 0] == 0).double().mean())
    assert abs(frac - 0.5) <= z_value() * math.sqrt(0.25 / 2000)
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
