"""Atomic writes: nothing half-written, and the permissions the user's umask asks for."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.files import atomic_dir, atomic_write
from bayesdrop.training import save_atomic


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    # mkstemp/mkdtemp alone leave 0600 / 0700 whatever the umask: a teammate could not read a report.
    umask(mask)
    assert _mode(atomic_write(tmp_path / "a.txt", "text")) == file_mode
    save_atomic({"x": 1}, tmp_path / "model.pt")
    assert _mode(tmp_path / "model.pt") == file_mode
    net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    ev = bayesdrop.evaluate(net, torch.randn(10, 2), torch.randint(0, 2, (10,)), num_samples=3, seed=0)
    out = bayesdrop.write_report(ev, tmp_path / "report")
    assert _mode(out) == dir_mode and _mode(out / "index.html") == file_mode


def test_interrupted_writes_leave_the_old_content(tmp_path):
    target = atomic_write(tmp_path / "f.bin", b"old")

    def boom(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        with atomic_dir(tmp_path / "d", overwrite=False):
            pass
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d", overwrite=True) as tmp:
            (tmp / "new").write_text("y")
            raise RuntimeError
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["keep"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.bin"]
