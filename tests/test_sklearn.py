from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from bayesdrop.nn import ConcreteDropout
from bayesdrop.sklearn import DropoutClassifier, DropoutRegressor, from_state


@pytest.mark.parametrize(
    "est",
    [
        DropoutRegressor(epochs=20, num_samples=10, random_state=0),
        DropoutRegressor(method="mc", heteroscedastic=True, epochs=20, num_samples=10, random_state=0),
        DropoutClassifier(method="gaussian", epochs=20, num_samples=10, random_state=0),
        DropoutClassifier(epochs=20, num_samples=10, random_state=0),
        DropoutRegressor(method="concrete", epochs=20, num_samples=10, random_state=0),
    ],
)
def test_check_estimator(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed


def _reg_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1, 10, 100]
    y = 50 + 20 * np.sin(X[:, 0]) + 0.1 * X[:, 1] + rng.normal(size=n) * 2.0
    return X, y


def test_regressor_predicts_in_target_units_with_intervals():
    X, y = _reg_data()
    reg = DropoutRegressor((50,), epochs=150, lr=1e-2, random_state=0).fit(X[:200], y[:200])
    mean, std = reg.predict(X[200:], return_std=True)
    assert abs(mean.mean() - y[200:].mean()) < 5 and np.all(std > 0)
    lo, hi = reg.predict_interval(X[200:], level=0.9)
    assert np.all(lo < mean) and np.all(mean < hi)
    cover = np.mean((y[200:] >= lo) & (y[200:] <= hi))
    assert 0.75 <= cover <= 1.0
    draws = reg.sample_predictive(X[200:205], num_samples=500)
    assert draws.shape == (500, 5)
    # predictive draws have the predictive std (SE of a std from 500 draws ~ std/sqrt(1000))
    m5, s5 = reg.predict(X[200:205], return_std=True)
    assert np.all(np.abs(draws.std(0) - s5) <= 6 * s5 / np.sqrt(1000) + 0.3 * s5)
    assert reg.score(X[200:], y[200:]) > 0.5


def test_classifier_probabilities_and_classes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    clf = DropoutClassifier(epochs=40, lr=1e-2, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert set(clf.predict(X)) <= {"pos", "neg"} and clf.score(X, y) > 0.9
    assert clf.sample_predictive(X[:4], num_samples=7).shape == (7, 4, 2)


def test_pipeline_gridsearch_clone_pickle_and_state_roundtrip():
    X, y = _reg_data(120)
    pipe = make_pipeline(StandardScaler(), DropoutRegressor(epochs=10, num_samples=10, random_state=0))
    grid = GridSearchCV(pipe, {"dropoutregressor__method": ["variational", "mc"]}, cv=2).fit(X, y)
    assert grid.best_params_["dropoutregressor__method"] in {"variational", "mc"}
    reg = DropoutRegressor(epochs=10, num_samples=10, random_state=0).fit(X, y)
    c = clone(reg)
    assert c.get_params() == reg.get_params() and not hasattr(c, "model_")
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X[:5]), reg.predict(X[:5]))
    restored = from_state(reg.to_state())
    np.testing.assert_allclose(restored.predict(X[:5]), reg.predict(X[:5]), rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"method": "bayes"},
            r"'method' parameter of DropoutRegressor must be one of 'variational', 'mc', 'gaussian', 'concrete'. "
            r"Got 'bayes'",
        ),
        ({"p": 1.0}, r"'p' parameter of DropoutRegressor must be a float in \[0, 1\). Got 1.0"),
        ({"epochs": 0}, r"'epochs' parameter of DropoutRegressor must be an int >= 1. Got 0"),
    ],
)
def test_bad_params(params, match):
    X, y = _reg_data(20)
    with pytest.raises(ValueError, match=match):
        DropoutRegressor(**params).fit(X, y)


def test_from_state_rejects_an_incomplete_state_with_a_clear_error():
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    state = DropoutRegressor(epochs=2, num_samples=5, random_state=0).fit(X, y).to_state()
    for key in ("state", "y_std", "estimator"):
        broken = {k: v for k, v in state.items() if k != key}
        with pytest.raises(ValueError, match=rf"incomplete bayesdrop model: missing {key}"):
            from_state(broken)
    with pytest.raises(ValueError, match="must name one of 'DropoutRegressor', 'DropoutClassifier'. Got 'Ridge'"):
        from_state({**state, "estimator": "Ridge"})


def test_concrete_method_learns_its_rates_and_round_trips():
    X, y = _reg_data(200)
    reg = DropoutRegressor(method="concrete", p=0.2, epochs=60, lr=1e-2, random_state=0).fit(X, y)
    layers = [m for m in reg.model_.modules() if isinstance(m, ConcreteDropout)]
    assert len(layers) == 2
    ps = [float(m.p.detach()) for m in layers]
    assert all(0 < p < 1 for p in ps) and all(abs(p - 0.2) > 1e-3 for p in ps)  # learned, not the initial rate
    assert reg.score(X, y) > 0.5
    restored = from_state(reg.to_state())
    np.testing.assert_allclose(restored.predict(X[:5]), reg.predict(X[:5]), rtol=1e-6)
    clf = DropoutClassifier(method="concrete", epochs=30, lr=1e-2, random_state=0).fit(
        X, (y > np.median(y)).astype(int)
    )
    assert clf.score(X, (y > np.median(y)).astype(int)) > 0.8


def test_intervals_reach_through_a_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _reg_data(120)
    pipe = make_pipeline(StandardScaler(), DropoutRegressor(epochs=5, num_samples=20, random_state=0)).fit(X, y)
    mean, lower, upper = pipe.predict(X[:7], return_interval=0.9)
    mean2, std = pipe.predict(X[:7], return_std=True)
    reg = pipe[-1]
    z = 1.6448536269514722  # the 0.95 quantile of N(0, 1)
    np.testing.assert_allclose(mean, mean2)  # a seeded estimator: the same draws
    np.testing.assert_allclose(lower, mean - z * std, rtol=1e-10)
    np.testing.assert_allclose(upper, mean + z * std, rtol=1e-10)
    lo, hi = reg.predict_interval(StandardScaler().fit(X).transform(X[:7]), level=0.9)
    np.testing.assert_allclose(lo, lower)
    np.testing.assert_allclose(hi, upper)
    search = GridSearchCV(pipe, {"dropoutregressor__p": [0.05, 0.1]}, cv=2).fit(X, y)
    out = search.best_estimator_.predict(X[:4], return_std=True, return_interval=0.5)
    assert len(out) == 4 and np.all(out[2] < out[0]) and np.all(out[0] < out[3])
    with pytest.raises(ValueError, match=r"'return_interval' parameter of DropoutRegressor.predict must be"):
        pipe.predict(X[:2], return_interval=1.5)


def test_mapie_split_conformal_with_the_mc_spread():
    pytest.importorskip("mapie")
    from mapie.classification import SplitConformalClassifier
    from mapie.conformity_scores import StdConformityScore
    from mapie.regression import SplitConformalRegressor

    X, y = _reg_data(300)
    reg = DropoutRegressor(epochs=20, num_samples=30, random_state=0).fit(X[:150], y[:150])
    scr = SplitConformalRegressor(reg, confidence_level=0.9, conformity_score=StdConformityScore(), prefit=True)
    scr.conformalize(X[150:230], y[150:230])
    _, intervals = scr.predict_interval(X[230:])
    lower, upper = intervals[:, 0, 0], intervals[:, 1, 0]
    _, std = reg.predict(X[230:], return_std=True)
    width = upper - lower
    np.testing.assert_allclose(width / width.mean(), std / std.mean(), rtol=0.05)  # widths follow the MC spread
    Xc = np.random.default_rng(0).normal(size=(240, 2))
    yc = np.digitize(Xc[:, 0] + 0.3 * Xc[:, 1], [-0.5, 0.5])  # three classes (MAPIE's APS needs more than two)
    clf = DropoutClassifier(epochs=10, num_samples=20, random_state=0).fit(Xc[:120], yc[:120])
    scc = SplitConformalClassifier(clf, confidence_level=0.9, conformity_score="aps", prefit=True)
    scc.conformalize(Xc[120:180], yc[120:180])
    _, sets = scc.predict_set(Xc[180:])
    assert sets.shape == (60, 3, 1) and sets[:, :, 0].any(1).all()
