"""Dropout placement (Cai's block, the variance-shift diagnostic) and bad arguments of the family's layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bayesdrop.nn import (
    DropConnectLinear,
    Dropout,
    DropPath,
    FastDropoutLinear,
    GaussianNoise,
    MaxPoolDropout2d,
    conv_block,
    linear_decay,
    variance_shift,
)


def test_variance_shift_dropout_before_batchnorm_vs_cai_order():
    # Same layers, two orders. Dropout right before BatchNorm: the running
    # variance, collected with the dropout noise, exceeds the eval variance.
    # Cai's block (BN -> ReLU -> Dropout -> Conv): the BN sees no dropout.
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    before = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Dropout(0.5), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3)
    )
    cai = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), conv_block(8, 8, 0.5))
    for model in (before, cai):
        model.train()
        with torch.no_grad():
            for _ in range(100):
                model(x)
    shift_before = variance_shift(before, x)["3"]
    shift_cai = variance_shift(cai, x)["1.0"]
    assert shift_before > 0.5
    assert abs(shift_cai) < 0.05
    assert before.training  # mode restored
    with pytest.raises(ValueError, match="needs a model with BatchNorm"):
        variance_shift(nn.Linear(2, 2), torch.randn(2, 2))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: DropConnectLinear(2, 2, p=1.0),
            ValueError,
            r"'p' parameter of DropConnectLinear must be a float in \[0, 1\). Got 1.0",
        ),
        (
            lambda: DropConnectLinear(2, 2, inference="mean"),
            ValueError,
            r"'inference' parameter of DropConnectLinear must be one of 'weight_scaling', 'moment_matching'",
        ),
        (
            lambda: DropConnectLinear(2, 2, activation="gelu"),
            ValueError,
            r"'activation' parameter of DropConnectLinear must be one of",
        ),
        (
            lambda: MaxPoolDropout2d(2, p=-0.5),
            ValueError,
            r"'p' parameter of MaxPoolDropout2d must be a float in \[0, 1\). Got -0.5",
        ),
        (lambda: DropPath(2.0), ValueError, r"'p' parameter of DropPath"),
        (
            lambda: GaussianNoise(-1.0),
            ValueError,
            r"'std' parameter of GaussianNoise must be a float in \[0, inf\]. Got -1.0",
        ),
        (lambda: FastDropoutLinear(2, 2, p=1.0), ValueError, r"'p' parameter of FastDropoutLinear"),
        (lambda: linear_decay(0), ValueError, r"'num_blocks' parameter of linear_decay must be an int >= 1. Got 0"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
