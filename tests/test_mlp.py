"""The estimators' input standardisation: per column, pooled ("global") and the "auto" choice between them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from bayesdrop.mlp import one_scale, standardization
from bayesdrop.sklearn import DropoutClassifier


def _pixels(seed: int = 0) -> np.ndarray:
    """200 'images' of 20 pixels in [0, 1]; pixel 0 is off in all but one (at 0.1), like an MNIST border pixel."""
    x = np.random.default_rng(seed).uniform(size=(200, 20))
    x[:, 0] = 0.0
    x[7, 0] = 0.1
    return x


def test_column_scaling_divides_each_column_by_its_own_std():
    x = _pixels()
    mean, std = standardization(x)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(std, x.std(0))


def test_global_scaling_pools_one_std_over_every_column():
    x = _pixels()
    mean, std = standardization(x, "global")
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(std, np.full(20, np.sqrt(((x - x.mean(0)) ** 2).mean())))


def test_global_scaling_keeps_a_new_image_near_the_training_scale():
    x, new = _pixels(), np.full((1, 20), 1.0)  # the border pixel on

    def deviations(scaling: str) -> float:
        mean, std = standardization(x, scaling)
        return float(np.abs((new - mean) / std).max())

    column, pooled = deviations("column"), deviations("global")
    assert column > 100  # 1 / (0.1 / sqrt(200)) ~ 141 deviations
    assert pooled < 5


def test_a_vector_and_constant_data_keep_their_own_scale():
    mean, std = standardization(np.array([1.0, 3.0]), "global")
    assert (mean, std) == (2.0, 1.0)
    assert standardization(np.ones((4, 3)), "global")[1].tolist() == [1.0, 1.0, 1.0]


def test_auto_pools_pixels_and_not_features_in_different_units():
    assert one_scale(load_digits(return_X_y=True)[0]) and one_scale(_pixels())
    X = load_breast_cancer(return_X_y=True)[0]
    assert not one_scale(X)
    np.testing.assert_allclose(standardization(X, "auto")[1], standardization(X)[1])
    x = _pixels()
    np.testing.assert_allclose(standardization(x, "auto")[1], standardization(x, "global")[1])


def test_the_estimator_standardises_as_asked():
    X, y = load_digits(return_X_y=True)
    kw = {"epochs": 2, "random_state": 0, "early_stopping": False, "temperature_scaling": False}
    pooled = DropoutClassifier(input_scaling="global", **kw).fit(X[:300], y[:300]).model_.x_std
    assert len(set(pooled.tolist())) == 1
    own = DropoutClassifier(input_scaling="column", **kw).fit(X[:300], y[:300]).model_.x_std
    assert len(set(own.tolist())) > 10
    default = DropoutClassifier(**kw).fit(X[:300], y[:300]).model_.x_std  # "auto": digits' pixels share one scale
    assert default.tolist() == pooled.tolist()
    Xb, yb = load_breast_cancer(return_X_y=True)
    tabular = DropoutClassifier(**kw).fit(Xb[:300], yb[:300]).model_.x_std  # different units: a std per column
    assert len(set(tabular.tolist())) > 10


def test_an_unknown_scaling_is_refused():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match=r"'input_scaling' parameter of DropoutClassifier must be one of 'column', "):
        DropoutClassifier(input_scaling="pixels", epochs=1).fit(X[:50], y[:50])
