"""A two-split smoke version of the UCI benchmark, on the shared data when present."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesdrop.benchmark import LEARNED_DEFAULTS, LearnedNoise, format_results, run_uci, score_learned, train_learned
from bayesdrop.nn import ConcreteDropout, VariationalLinear


def test_uci_two_split_smoke(shared_data, tmp_path):
    out = tmp_path / "uci.md"
    results = run_uci(
        str(shared_data / "uci"),
        ["yacht"],
        [0, 1],
        ["mc", "variational", "gaussian", "concrete"],
        out,
        epochs_multiplier=1,
        num_samples=100,
        jobs=1,
        progress=False,
    )
    assert sorted((r["split"], r["method"]) for r in results) == sorted(
        (s, m) for s in (0, 1) for m in ("mc", "variational", "gaussian", "concrete")
    )
    for r in results:
        assert r["rmse"] > 0 and -20 < r["ll"] < 5
        if r["method"] in ("mc", "gaussian"):
            assert r["p"] in (0.005, 0.01, 0.05, 0.1) and r["tau"] in (0.25, 0.5, 0.75)
        elif r["method"] == "concrete":
            assert len(r["p"]) == 2 and all(0 < p < 1 for p in r["p"])  # the learned rate of each layer
        else:
            assert 0 <= r["sparsity"] <= 1 and r["noise_std"] > 0
    table = out.read_text()
    assert "| yacht | variational | 2 | 40 |" in table and "0.67" in table  # Gal's number beside ours
    # the log makes a rerun skip finished work
    lines = (tmp_path / "uci.md.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["dataset"] == "yacht"
    again = run_uci(
        str(shared_data / "uci"), ["yacht"], [0, 1], ["mc"], out, epochs_multiplier=1, num_samples=100, progress=False
    )
    assert len(again) == 8 and len((tmp_path / "uci.md.jsonl").read_text().splitlines()) == 8


def test_format_results_mean_and_standard_error():
    rs = [{"dataset": "yacht", "method": "mc", "epochs": 40, "rmse": v, "ll": -v} for v in (1.0, 2.0, 3.0)]
    table = format_results(rs)
    assert "| yacht | mc | 3 | 40 | 2.00 ± 0.58 | -2.00 ± 0.58 | 0.67 | -1.25 |  | -1.38 ± 0.01 |" in table


@pytest.mark.parametrize(
    "settings", [LEARNED_DEFAULTS["variational"], LEARNED_DEFAULTS["concrete"], LearnedNoise(alpha="input", width=8)]
)
def test_learned_noise_settings_build_train_and_score(settings):
    # no shared data needed: a noisy sine; the settings decide the layers, the noise model and the width
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(200, 1))
    y = np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=200)
    net, lik = train_learned(settings, x, y, hidden=16, epochs=30, seed=0)
    assert lik.heteroscedastic == settings.heteroscedastic
    kinds = [type(m) for m in net.modules() if isinstance(m, (VariationalLinear, ConcreteDropout))]
    assert kinds == [VariationalLinear if settings.method == "variational" else ConcreteDropout] * 2
    first = net[0] if settings.method == "variational" else net[0].layer
    assert first.out_features == (settings.width or 16)
    r = score_learned(net, lik, x[:50], y[:50] * 3.0 + 1.0, 1.0, 3.0, 100, 0)
    assert r["rmse"] > 0 and np.isfinite(r["ll"]) and r["noise_std"] > 0
    # scores are in the target's units: the same predictions scored against scaled targets change the RMSE by 3x
    r1 = score_learned(net, lik, x[:50], y[:50], 0.0, 1.0, 100, 0)
    assert r["rmse"] == pytest.approx(3 * r1["rmse"], rel=1e-6)
