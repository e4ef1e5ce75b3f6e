"""Atomic writes: one helper for files, one for folders (used by reports, model files and benchmark logs).

A file is written under a temporary name beside its destination and renamed
over it, so an interrupted write never leaves a half-written file; a folder is
built the same way and renamed into place. ``mkstemp``/``mkdtemp`` create
their results private (0600 / 0700); what lands here gets the permissions the
user's umask asks for, as ``open`` and ``mkdir`` would give (usually 0644 and
0755), so a teammate or a web server can read a model file or a report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_dir", "atomic_write"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], data: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, renamed over it when complete.

    Parameters
    ----------
    path : path
        Destination; its folder is created.
    data : str, bytes or callable
        Text (UTF-8), bytes, or a function that writes to the open binary file.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Build a folder in the yielded temporary path; on success it replaces ``path``.

    Parameters
    ----------
    path : path
        The folder to create (or replace).
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    context manager
        Entered, it gives the temporary folder (a ``Path``) to fill.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False (checked before anything is built).
    """
    out = Path(path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
