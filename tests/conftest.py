"""Shared helpers for statistical tests.

Every statistical assertion in the suite is a z-test whose threshold comes
from one false-failure budget: each test function may fail by chance with
probability at most ``FAILURE_BUDGET``, split (Bonferroni) over the number of
quantities it checks. With ~100 statistical tests the whole suite fails by
chance with probability below 1e-4; the seeds are fixed, so a run is
reproducible anyway.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import pytest

FAILURE_BUDGET = 1e-6

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def z_value(num_checks: int = 1, budget: float = FAILURE_BUDGET) -> float:
    """Two-sided z threshold for ``num_checks`` simultaneous checks."""
    return NormalDist().inv_cdf(1.0 - budget / (2.0 * num_checks))


def within(estimate: float, truth: float, standard_error: float, num_checks: int = 1) -> bool:
    return abs(estimate - truth) <= z_value(num_checks) * standard_error


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def sem(var: float, n: int) -> float:
    return math.sqrt(var / n)


def t_value(df: int, num_checks: int = 1, budget: float = FAILURE_BUDGET) -> float:
    """Two-sided Student-t threshold for a standard error estimated with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(1.0 - budget / (2.0 * num_checks), df))


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist every worker gets one of the machine's cores: one torch thread each, or the workers'
    # thread pools fight over the cores and the suite runs slower than serially.
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
