"""Dataset shift for image tensors: rotation, translation and MNIST-C-style corruptions, each with an intensity.

Images are floating tensors ``(N, H, W)`` or ``(N, C, H, W)`` with values in
[0, 1] (MNIST: ``uint8 / 255``). Every generator returns a new tensor of the
same shape, dtype and device, with values in [0, 1].

- :func:`rotate`: counter-clockwise by ``degrees`` about the image centre,
  bilinear, zero fill (Ovadia et al. 2019 rotate MNIST by 15 to 180 degrees
  in steps of 15); a multiple of 90 degrees equals ``torch.rot90``.
- :func:`translate`: ``pixels`` to the right, zero fill (Ovadia et al.:
  2 to 26 pixels in steps of 2).
- :func:`corrupt`: six corruptions after MNIST-C (Mu & Gilmer 2019) at a
  severity from 1 to 5: ``shot_noise``, ``impulse_noise``,
  ``motion_blur``, ``fog``, ``brightness``, ``stripe``. The parameters per
  severity are bayesdrop's own (:data:`CORRUPTIONS`), chosen so that
  severity 1 is mild and 5 is hard for a digit classifier; they are not
  MNIST-C's code.

:func:`shift` applies any of them by name; :data:`INTENSITIES` lists the
benchmark's intensities of each.

References
----------
- Ovadia et al. 2019, "Can you trust your model's uncertainty? Evaluating
  predictive uncertainty under dataset shift", arXiv:1906.02530, sec. 4.
- Mu & Gilmer 2019, "MNIST-C: a robustness benchmark for computer vision",
  arXiv:1906.02337.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._distributed import seed_or_draw

__all__ = ["CORRUPTIONS", "INTENSITIES", "corrupt", "rotate", "shift", "translate"]

#: Each corruption's parameter at severities 1 to 5.
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "shot_noise": (60.0, 25.0, 12.0, 5.0, 3.0),  # Poisson photons per unit intensity
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),  # fraction of pixels set to 0 or 1
    "motion_blur": (3.0, 5.0, 7.0, 9.0, 11.0),  # length in pixels of a horizontal box blur
    "fog": (0.3, 0.5, 0.7, 0.9, 1.2),  # amplitude of smooth noise added to the background
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to every pixel
    "stripe": (2.0, 4.0, 6.0, 8.0, 10.0),  # width in pixels of an inverted vertical band at the centre
}

#: The intensities the shift benchmark uses (Ovadia et al.'s for rotation and translation).
INTENSITIES: dict[str, tuple[int, ...]] = {
    "rotation": tuple(range(15, 181, 15)),
    "translation": tuple(range(2, 27, 2)),
    **{name: (1, 2, 3, 4, 5) for name in CORRUPTIONS},
}


def _images(images: Any, owner: str) -> tuple[Tensor, bool]:
    """``images`` as (N, C, H, W), and whether it came without a channel axis."""
    if not isinstance(images, Tensor):
        raise TypeError(
            f"The 'images' parameter of {owner} must be a torch.Tensor of images. Got {type(images).__name__} instead."
        )
    if images.ndim not in (3, 4) or images.shape[-1] < 2 or images.shape[-2] < 2:
        raise ValueError(
            f"The 'images' parameter of {owner} must be images (N, H, W) or (N, C, H, W). Got shape "
            f"{tuple(images.shape)} instead (flat vectors: reshape them to (N, 28, 28) first)."
        )
    if not images.is_floating_point():
        raise TypeError(
            f"The 'images' parameter of {owner} must be a floating tensor with values in [0, 1] (divide uint8 "
            f"images by 255). Got {images.dtype} instead."
        )
    if images.numel() and (not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise ValueError(f"The 'images' parameter of {owner} must hold values in [0, 1]. Got values outside.")
    return (images[:, None] if images.ndim == 3 else images), images.ndim == 3


def _intensity(value: Any, name: str, owner: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"The '{name}' parameter of {owner} must be a number in [{low:g}, {high:g}]. Got {value!r}.")
    return float(value)


def rotate(images: Tensor, degrees: float) -> Tensor:
    """Rotate counter-clockwise by ``degrees`` about the centre (bilinear, zero fill).

    Parameters
    ----------
    images : Tensor (N, H, W) or (N, C, H, W)
        Values in [0, 1].
    degrees : float
        In [-360, 360]; 90 equals ``torch.rot90(images, 1, (-2, -1))`` on square images.

    Returns
    -------
    Tensor
        Same shape, dtype and device.

    Examples
    --------
    >>> x = torch.rand(2, 5, 5)
    >>> bool(torch.allclose(rotate(x, 90), torch.rot90(x, 1, (-2, -1)), atol=1e-6))
    True
    """
    x, flat = _images(images, "rotate")
    angle = math.radians(_intensity(degrees, "degrees", "rotate", -360, 360))
    cos, sin = math.cos(angle), math.sin(angle)
    h, w = x.shape[-2:]
    # affine_grid maps each output pixel (coordinates normalised to [-1, 1], x right, y down) to where it reads
    # the input. Turning the image counter-clockwise on screen, output (x, y) reads input
    # (cos x - sin y, sin x + cos y) in pixels about the centre; the normalisation brings in the aspect ratio.
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)
    return out[:, 0] if flat else out


def translate(images: Tensor, pixels: int) -> Tensor:
    """Shift ``pixels`` to the right (negative: to the left), filling with zeros.

    Parameters
    ----------
    images : Tensor (N, H, W) or (N, C, H, W)
        Values in [0, 1].
    pixels : int
        In [-W, W].

    Returns
    -------
    Tensor
        Same shape, dtype and device.

    Examples
    --------
    >>> translate(torch.tensor([[[0.25, 0.5, 0.75], [0.5, 0.5, 0.5]]]), 1).tolist()
    [[[0.0, 0.25, 0.5], [0.0, 0.5, 0.5]]]
    """
    x, flat = _images(images, "translate")
    w = x.shape[-1]
    if isinstance(pixels, bool) or not isinstance(pixels, int) or not -w <= pixels <= w:
        raise ValueError(f"The 'pixels' parameter of translate must be an int in [-{w}, {w}]. Got {pixels!r}.")
    out = torch.zeros_like(x)
    if pixels >= 0:
        out[..., pixels:] = x[..., : w - pixels]
    else:
        out[..., : w + pixels] = x[..., -pixels:]
    return out[:, 0] if flat else out


def _box_blur(x: Tensor, length: int) -> Tensor:
    kernel = torch.full((1, 1, 1, length), 1.0 / length, dtype=x.dtype, device=x.device)
    c = x.shape[1]
    return F.conv2d(x, kernel.expand(c, 1, 1, length), padding=(0, length // 2), groups=c)


def _fog(x: Tensor, amplitude: float, gen: torch.Generator) -> Tensor:
    h, w = x.shape[-2:]
    coarse = torch.rand((len(x), 1, 4, 4), generator=gen, dtype=x.dtype, device="cpu").to(x.device)
    fog = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1) * amplitude
    peak = x.amax(dim=(-2, -1), keepdim=True)
    return (x + fog) * peak / (peak + amplitude).clamp_min(1e-12)  # MNIST-C's rescaling to the old maximum


def corrupt(images: Tensor, kind: str, severity: int, *, seed: int | None = None) -> Tensor:
    """One of the MNIST-C-style corruptions at ``severity`` 1 to 5 (see :data:`CORRUPTIONS`).

    Parameters
    ----------
    images : Tensor (N, H, W) or (N, C, H, W)
        Values in [0, 1].
    kind : {"shot_noise", "impulse_noise", "motion_blur", "fog", "brightness", "stripe"}
    severity : int
        1 (mild) to 5 (hard).
    seed : int, optional
        Makes the random corruptions reproducible (torch's global RNG is left
        untouched); without one a seed is drawn from the global RNG.

    Returns
    -------
    Tensor
        Same shape, dtype and device, values in [0, 1].

    Examples
    --------
    >>> corrupt(torch.zeros(1, 4, 4), "brightness", 5).max().item()
    0.5
    """
    x, flat = _images(images, "corrupt")
    if kind not in CORRUPTIONS:
        raise ValueError(
            f"The 'kind' parameter of corrupt must be one of {', '.join(map(repr, CORRUPTIONS))}. Got {kind!r}."
        )
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise ValueError(f"The 'severity' parameter of corrupt must be an int in [1, 5]. Got {severity!r} instead.")
    level = CORRUPTIONS[kind][severity - 1]
    gen = torch.Generator().manual_seed(seed_or_draw(seed))
    if kind == "shot_noise":
        out = torch.poisson(x.cpu() * level, generator=gen).to(x) / level
    elif kind == "impulse_noise":
        u = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        out = torch.where(u < level / 2, 0.0, torch.where(u > 1 - level / 2, 1.0, x))
    elif kind == "motion_blur":
        out = _box_blur(x, int(level))
    elif kind == "fog":
        out = _fog(x, level, gen)
    elif kind == "brightness":
        out = x + level
    else:
        w, band = x.shape[-1], int(level)
        start = (w - band) // 2
        out = x.clone()
        out[..., start : start + band] = 1 - x[..., start : start + band]
    out = out.clamp(0, 1)
    return out[:, 0] if flat else out


def shift(images: Tensor, kind: str, intensity: float, *, seed: int | None = None) -> Tensor:
    """Apply the shift ``kind`` at ``intensity``: degrees, pixels or a corruption's severity.

    Parameters
    ----------
    images : Tensor (N, H, W) or (N, C, H, W)
        Values in [0, 1].
    kind : str
        ``"rotation"`` (degrees), ``"translation"`` (pixels) or a corruption
        of :data:`CORRUPTIONS` (severity 1 to 5).
    intensity : float
        The amount (see ``kind``); 0 returns the images unchanged.
    seed : int, optional
        For the random corruptions.

    Returns
    -------
    Tensor

    Examples
    --------
    >>> x = torch.rand(3, 8, 8)
    >>> bool(torch.equal(shift(x, "translation", 2), translate(x, 2)))
    True
    """
    if kind not in INTENSITIES:
        raise ValueError(
            f"The 'kind' parameter of shift must be one of {', '.join(map(repr, INTENSITIES))}. Got {kind!r}."
        )
    if intensity == 0:
        return _images(images, "shift")[0].reshape(images.shape).clone()
    if kind == "rotation":
        return rotate(images, intensity)
    # pixels and severities are whole numbers: 2.0 reads as 2; anything else goes on and is refused there
    count = int(intensity) if isinstance(intensity, float) and intensity.is_integer() else intensity
    if kind == "translation":
        return translate(images, count)  # type: ignore[arg-type]
    return corrupt(images, kind, count, seed=seed)  # type: ignore[arg-type]
