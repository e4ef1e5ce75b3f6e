"""The runnable Python blocks of the README and of the docs' Markdown pages run, one test each.

A block is runnable when it starts with ``import torch, bayesdrop``; other blocks (shell commands, fragments
that need the user's data) are shown, not run.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("_build", "api", "results", "auto_tutorials")  # written by the docs build, not sources
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if not set(p.relative_to(ROOT / "docs").parts) & set(GENERATED)),
]


def _blocks(page: Path) -> list[str]:
    found = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    return [b for b in found if b.startswith("import torch, bayesdrop")]


BLOCKS = [(page, i, block) for page in PAGES for i, block in enumerate(_blocks(page))]


def test_the_pages_have_their_runnable_blocks():
    assert len(_blocks(ROOT / "README.md")) >= 1  # the quick start
    assert len(BLOCKS) >= 10
    assert any("write_report" in b for _, _, b in BLOCKS)
    pages = {page.name for page, _, _ in BLOCKS}
    assert {"fitting.md", "sampling.md", "evaluation.md", "deciding.md", "active_learning.md"} <= pages


@pytest.mark.parametrize(("page", "index", "block"), BLOCKS, ids=[f"{p.relative_to(ROOT)}:{i}" for p, i, _ in BLOCKS])
def test_block_runs(page, index, block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"{page} (block {index})", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    if "write_report" in block:
        assert (tmp_path / "report-example" / "index.html").exists()
    # The quick start and the training-loop example print the learned noise beside the truth (0.1): a
    # calibration library's front door must show a noise near it, within a factor of 1.5.
    for value, truth in re.findall(r"learned noise std ([0-9.]+) \(true ([0-9.]+)\)", out):
        assert float(truth) / 1.5 <= float(value) <= float(truth) * 1.5, (value, truth)


def test_the_first_blocks_of_the_readme_and_the_fitting_page_print_the_learned_noise():
    for page in (ROOT / "README.md", ROOT / "docs" / "user_guide" / "fitting.md"):
        first = _blocks(page)[0]
        assert "learned noise std" in first and "(true 0.1)" in first, page
