"""The README's runnable Python blocks (those that start with ``import torch, bayesdrop``) run."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if b.startswith("import torch, bayesdrop")
]


def test_readme_blocks_run(tmp_path, monkeypatch, capsys):
    assert len(BLOCKS) >= 2
    monkeypatch.chdir(tmp_path)
    for block in BLOCKS:
        exec(compile(block, str(README), "exec"), {})
    assert (tmp_path / "report-example" / "index.html").exists()
    out = capsys.readouterr().out
    # The quick start and the training-loop example print the learned noise beside the truth (0.1): a
    # calibration library's front door must show a noise near it, within a factor of 1.5.
    learned = [(float(a), float(b)) for a, b in re.findall(r"learned noise std ([0-9.]+) \(true ([0-9.]+)\)", out)]
    assert len(learned) >= 2, out
    for value, truth in learned:
        assert truth / 1.5 <= value <= truth * 1.5, (value, truth)
