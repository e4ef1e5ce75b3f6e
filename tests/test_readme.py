"""The README's runnable Python blocks (those that start with ``import torch, bayesdrop``) run, one test each."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if b.startswith("import torch, bayesdrop")
]


def test_the_readme_has_its_runnable_blocks():
    assert len(BLOCKS) >= 8
    assert any("write_report" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    block = BLOCKS[index]
    exec(compile(block, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    if "write_report" in block:
        assert (tmp_path / "report-example" / "index.html").exists()
    # The quick start and the training-loop example print the learned noise beside the truth (0.1): a
    # calibration library's front door must show a noise near it, within a factor of 1.5.
    for value, truth in re.findall(r"learned noise std ([0-9.]+) \(true ([0-9.]+)\)", out):
        assert float(truth) / 1.5 <= float(value) <= float(truth) * 1.5, (value, truth)


def test_the_first_two_blocks_print_the_learned_noise():
    assert all("learned noise std" in b and "(true 0.1)" in b for b in BLOCKS[:2])
