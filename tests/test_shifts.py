"""Dataset shift generators: exact cases, ranges and bad input."""

from __future__ import annotations

import pytest
import torch

from bayesdrop import datasets
from bayesdrop.shifts import CORRUPTIONS, INTENSITIES, corrupt, rotate, shift, translate


def _images(n=4, h=28, w=28, seed=0):
    return torch.rand((n, h, w), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_rotation_by_multiples_of_90_degrees_equals_rot90(k):
    x = _images()
    torch.testing.assert_close(rotate(x, 90 * k), torch.rot90(x, k, (-2, -1)), atol=1e-5, rtol=0)
    x4 = _images(2, 6, 6)[:, None].expand(2, 3, 6, 6).contiguous()  # channels rotate alike
    torch.testing.assert_close(rotate(x4, 90 * k), torch.rot90(x4, k, (-2, -1)), atol=1e-5, rtol=0)


def test_rotation_keeps_the_centre_and_a_small_angle_moves_little():
    x = torch.zeros(1, 29, 29)
    x[0, 14, 14] = 1.0  # the centre pixel of an odd image stays where it is at any angle
    assert rotate(x, 37)[0, 14, 14] == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(rotate(x, 0), x, atol=1e-5, rtol=0)  # bilinear at the pixel centres


def test_translation_is_a_shift_with_zero_fill():
    x = _images(3, 5, 7)
    for k in (0, 1, 3, 7):
        want = torch.zeros_like(x)
        want[..., k:] = x[..., : 7 - k]
        assert translate(x, k).equal(want)
    left = translate(x, -2)
    assert left[..., :5].equal(x[..., 2:]) and left[..., 5:].abs().sum() == 0


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corruptions_stay_in_range_grow_with_severity_and_reproduce(kind):
    x = _images(8)
    changes = []
    for severity in range(1, 6):
        out = corrupt(x, kind, severity, seed=0)
        assert out.shape == x.shape and out.dtype == x.dtype and out.min() >= 0 and out.max() <= 1
        changes.append(float((out - x).abs().mean()))
        assert corrupt(x, kind, severity, seed=0).equal(out)  # a seed reproduces
    assert changes[-1] > changes[0] > 0, changes


def test_shift_dispatches_and_lists_the_benchmarks_intensities():
    x = _images(2)
    assert shift(x, "rotation", 90).equal(rotate(x, 90))
    assert shift(x, "translation", 4).equal(translate(x, 4))
    assert shift(x, "fog", 3, seed=1).equal(corrupt(x, "fog", 3, seed=1))
    assert shift(x, "rotation", 0).equal(x)
    assert INTENSITIES["rotation"] == tuple(range(15, 181, 15)) and INTENSITIES["translation"] == tuple(range(2, 27, 2))
    assert datasets.rotate is rotate and datasets.shift is shift  # re-exported where the loaders are


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: rotate(torch.rand(3, 784), 15), ValueError, r"'images' parameter of rotate must be images"),
        (lambda: rotate(torch.randint(0, 255, (2, 4, 4)), 15), TypeError, r"divide uint8 images by 255"),
        (lambda: rotate(torch.rand(2, 4, 4) * 3, 15), ValueError, r"must hold values in \[0, 1\]"),
        (lambda: rotate(torch.rand(2, 4, 4), 400), ValueError, r"'degrees' parameter of rotate must be a number"),
        (lambda: translate(torch.rand(2, 4, 4), 9), ValueError, r"'pixels' parameter of translate must be an int"),
        (lambda: corrupt(torch.rand(2, 4, 4), "fog", 6), ValueError, r"'severity' parameter of corrupt must be"),
        (lambda: corrupt(torch.rand(2, 4, 4), "snow", 1), ValueError, r"'kind' parameter of corrupt must be one of"),
        (lambda: shift(torch.rand(2, 4, 4), "zoom", 1), ValueError, r"'kind' parameter of shift must be one of"),
        (lambda: rotate([[0.0]], 15), TypeError, r"must be a torch.Tensor of images"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ood_image_sets():
    crops = datasets.photo_crops(5, seed=0)
    assert crops.shape == (5, 28, 28) and 0 <= crops.min() and crops.max() <= 1 and crops.std() > 0.02
    assert datasets.photo_crops(5, seed=0).equal(crops)
    noise = datasets.noise_images(4, "uniform", seed=1)
    assert noise.shape == (4, 28, 28) and abs(float(noise.mean()) - 0.5) < 0.05
    with pytest.raises(ValueError, match=r"'kind' parameter of noise_images must be one of"):
        datasets.noise_images(2, "pink")
    with pytest.raises(ValueError, match=r"'n' parameter of photo_crops must be an int >= 1"):
        datasets.photo_crops(0)
