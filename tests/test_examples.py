"""Every example runs with --smoke; an example not listed here fails the suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COVERED = [
    "quickstart.py",
    "distributed.py",
    "mnist_cnn.py",
    "benchmarks/mc_sampling.py",
    "benchmarks/gpu_check.py",
    "benchmarks/posterior_quality.py",
    "benchmarks/learned_noise.py",
    "benchmarks/classification.py",
    "benchmarks/coverage.py",
    "benchmarks/shift_ood.py",
    "benchmarks/overconfidence.py",
    "benchmarks/uci_estimator.py",
    "benchmarks/active_scoring.py",
    "benchmarks/input_scaling.py",
    "benchmarks/paired.py",
    "reproductions/mnist_dropout.py",
    "reproductions/features_and_sparsity.py",
    "reproductions/gaussian_vs_bernoulli.py",
    "reproductions/nwgm.py",
    "reproductions/fast_dropout.py",
    "reproductions/sparse_vd.py",
    "reproductions/stochastic_depth.py",
    "reproductions/bishop_ridge.py",
    "reproductions/active_learning.py",
]


def test_every_example_is_covered():
    found = sorted(
        str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py") if p.name != "__init__.py" and p.name[0] != "_"
    )
    assert found == sorted(COVERED), "add new examples to COVERED"


@pytest.mark.parametrize("name", COVERED)
def test_example_runs_in_smoke_mode(name, capsys, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(name.replace("/", "_")[:-3], EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses in an example look their module up there
    spec.loader.exec_module(module)
    data = getattr(module, "DEFAULT_DATA", None)  # examples on the shared data skip cleanly without it
    if data is not None and not data.exists():
        pytest.skip(f"{name} needs {data}")
    monkeypatch.chdir(tmp_path)  # whatever an example writes lands here
    module.main(["--smoke"])
    out = capsys.readouterr().out
    assert out.strip()
    if name.startswith("reproductions/"):  # each claim: its table (printed and written) and its figure
        folder = tmp_path / "reproductions"
        assert "| claim | paper | ours | settings |" in out
        assert list(folder.glob("*/table.md")) and list(folder.glob("*/*.png")) and list(folder.glob("*/results.json"))


def test_active_scoring_chunks_shard_and_resume(tmp_path, capsys):
    """The whole-pool mode: two shards share the chunks, a rerun scores nothing new, the table covers every image."""
    spec = importlib.util.spec_from_file_location("active_scoring_chunks", EXAMPLES / "benchmarks/active_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log = tmp_path / "pool.jsonl"
    common = ["--smoke", "--chunks", "--log", str(log), "--variants", "acquire", "loop", "floor"]
    module.main([*common, "--shard", "0/2"])
    assert "2 of 3 chunks" in capsys.readouterr().out  # chunks 0 and 2 of the 40 images in chunks of 16
    module.main([*common, "--shard", "1/2"])
    assert capsys.readouterr().out.startswith("chunk 2/3:")
    lines = log.read_text().splitlines()
    module.main([*common, "--shard", "0/1"])  # resume: every chunk is in the log already
    out = capsys.readouterr().out
    assert log.read_text().splitlines() == lines and len(lines) == 3
    assert out.startswith("BALD scores of 40 of the 40 pool images (3 of 3 chunks")  # no chunk scored again
    assert "| loop |" in out and "| floor |" in out
    other = tmp_path / "other.jsonl"  # a log from a run at another T: refused, not mixed in
    other.write_text(lines[0].replace('"T": 4', '"T": 8') + "\n")
    with pytest.raises(SystemExit, match="another run"):
        module.main([*common[:3], str(other), *common[4:]])
    with pytest.raises(SystemExit, match="--shard must be i/n"):
        module.main([*common, "--shard", "2/2"])
