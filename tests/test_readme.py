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
    assert capsys.readouterr().out.strip()
