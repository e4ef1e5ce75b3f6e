from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import bayesdrop
import bayesdrop.report as report_module


@pytest.fixture
def evaluation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    return bayesdrop.evaluate(net, torch.randn(40, 3), torch.randint(0, 3, (40,)), num_samples=10, seed=0)


def test_report_folder_contents(tmp_path, evaluation):
    out = bayesdrop.write_report(evaluation, tmp_path / "rep")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "metrics.json",
            "index.html",
            "reliability.png",
            "risk_coverage.png",
            "uncertainty_vs_error.png",
            "gap_histogram.png",
            "convergence.png",
            "selective.png",
        ]
    )
    data = json.loads((out / "metrics.json").read_text())
    assert data["mc"]["nll"] == pytest.approx(evaluation.mc["nll"])
    assert data["num_samples"] == 10 and data["convergence"]["T"] == [1, 2, 5, 10]
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "deterministic" in page
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folder left


def test_regression_report(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    ev = bayesdrop.evaluate(
        net, torch.randn(30, 2), torch.randn(30), likelihood=bayesdrop.Gaussian(noise_std=0.5), num_samples=5
    )
    out = bayesdrop.write_report(ev, tmp_path / "r")
    assert (out / "regression_calibration.png").exists()
    assert "crps" in json.loads((out / "metrics.json").read_text())["mc"]


def test_existing_folder_needs_overwrite(tmp_path, evaluation):
    target = tmp_path / "rep"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        bayesdrop.write_report(evaluation, target)
    assert (target / "keep.txt").read_text() == "mine"
    bayesdrop.write_report(evaluation, target, overwrite=True)
    assert not (target / "keep.txt").exists() and (target / "metrics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_interrupted_report_leaves_nothing_half_written(tmp_path, evaluation, monkeypatch):
    def boom(ev, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "_figure_sections", boom)
    with pytest.raises(KeyboardInterrupt):
        bayesdrop.write_report(evaluation, tmp_path / "rep")
    assert list(tmp_path.iterdir()) == []


def test_the_page_names_model_data_and_date_explains_metrics_and_never_shows_nan(tmp_path):
    import re
    from datetime import datetime, timezone

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
    lik = bayesdrop.Gaussian(heteroscedastic=True)
    ev = bayesdrop.evaluate(net, torch.randn(30, 2), torch.randn(30), likelihood=lik, num_samples=5, seed=0)
    assert "mixture_nll" in ev.mc and "mixture_nll" not in ev.deterministic  # a metric of the MC side only
    ev.meta.update(model="toy-mlp.pt", data="toy.csv", method="mc")
    page = (bayesdrop.write_report(ev, tmp_path / "rep") / "index.html").read_text()
    text = re.sub(r"<[^>]+>", " ", page.split("<h2>Figures")[0])
    assert "toy-mlp.pt" in text and "toy.csv" in text and "mc" in text
    assert datetime.now(timezone.utc).strftime("%Y-%m-%d") in text
    assert "nan" not in text.lower().split() and "not defined" in text
    for metric, note in report_module.METRIC_NOTES.items():
        if metric in ev.mc:
            assert note in html_unescape(text), metric


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_a_report_with_ood_data_draws_its_histogram_and_roc_curves(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    ev = bayesdrop.evaluate(net, torch.randn(40, 3), torch.randint(0, 3, (40,)), num_samples=10, seed=0,
                            ood=torch.randn(25, 3) * 4)  # fmt: skip
    out = bayesdrop.write_report(ev, tmp_path / "rep")
    assert (out / "ood_histogram.png").exists() and (out / "ood_roc.png").exists()
    page = (out / "index.html").read_text()
    assert "Out-of-distribution detection (25 OOD examples)" in page and "det_energy" in page
    assert json.loads((out / "metrics.json").read_text())["ood"]["num_examples"] == 25
