"""A two-split smoke version of the UCI benchmark, on the shared data when present."""

from __future__ import annotations

import json

from bayesdrop.benchmark import format_results, run_uci


def test_uci_two_split_smoke(shared_data, tmp_path):
    out = tmp_path / "uci.md"
    results = run_uci(
        str(shared_data / "uci"),
        ["yacht"],
        [0, 1],
        ["mc", "variational", "gaussian"],
        out,
        epochs_multiplier=1,
        num_samples=100,
        jobs=1,
        progress=False,
    )
    assert sorted((r["split"], r["method"]) for r in results) == sorted(
        (s, m) for s in (0, 1) for m in ("mc", "variational", "gaussian")
    )
    for r in results:
        assert r["rmse"] > 0 and -20 < r["ll"] < 5
        if r["method"] != "variational":
            assert r["p"] in (0.005, 0.01, 0.05, 0.1) and r["tau"] in (0.25, 0.5, 0.75)
    table = out.read_text()
    assert "| yacht | variational | 2 | 40 |" in table and "0.67" in table  # Gal's number beside ours
    # the log makes a rerun skip finished work
    lines = (tmp_path / "uci.md.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["dataset"] == "yacht"
    again = run_uci(
        str(shared_data / "uci"), ["yacht"], [0, 1], ["mc"], out, epochs_multiplier=1, num_samples=100, progress=False
    )
    assert len(again) == 6 and len((tmp_path / "uci.md.jsonl").read_text().splitlines()) == 6


def test_format_results_mean_and_standard_error():
    rs = [{"dataset": "yacht", "method": "mc", "epochs": 40, "rmse": v, "ll": -v} for v in (1.0, 2.0, 3.0)]
    table = format_results(rs)
    assert "| yacht | mc | 3 | 40 | 2.00 ± 0.58 | -2.00 ± 0.58 | 0.67 | -1.25 |  | -1.38 ± 0.01 |" in table
