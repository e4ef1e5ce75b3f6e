"""Progress bars where someone watches, none in a log (unless forced, then throttled)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from bayesdrop import _progress


def test_auto_bars_show_in_a_terminal_and_hide_in_a_log(monkeypatch):
    monkeypatch.setattr(_progress, "interactive", lambda: False)
    assert _progress.progress_bar(range(3), progress=None).disable
    forced = _progress.progress_bar(range(3), progress=True, file=io.StringIO())
    assert not forced.disable and forced.mininterval == _progress.LOG_INTERVAL
    assert _progress.progress_bar(range(3), progress=False).disable
    monkeypatch.setattr(_progress, "interactive", lambda: True)
    live = _progress.progress_bar(range(3), progress=None, file=io.StringIO())
    assert not live.disable and live.mininterval < 1
    with pytest.raises(TypeError, match="'progress' parameter must be True, False or None. Got 'yes'"):
        _progress.progress_bar(range(3), progress="yes")


def test_a_fit_in_a_log_writes_no_progress_bar():
    # stderr is a pipe here, as in CI or `cmd > log 2>&1`: the default bar stays out of it
    code = (
        "import torch, bayesdrop\n"
        "x = torch.randn(512, 3); y = x.sum(1)\n"
        "net = torch.nn.Sequential(bayesdrop.nn.VariationalLinear(3, 8), torch.nn.ReLU(), bayesdrop.nn.VariationalLinear(8, 1))\n"
        "bayesdrop.fit(net, (x, y), likelihood=bayesdrop.Gaussian(), epochs=20, batch_size=16)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stderr == ""


def test_import_bayesdrop_leaves_scikit_learn_matplotlib_and_pyro_for_later():
    code = "import sys, bayesdrop; print(sorted(m for m in ('sklearn', 'matplotlib', 'pyro') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
