from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from bayesdrop.nn import ConcreteDropout, Dropout
from bayesdrop.sklearn import DEFAULT_P, MIN_P, DropoutClassifier, DropoutRegressor, from_state


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
        ({"device": "gpu0"}, r"'device' parameter of DropoutRegressor must be None, a device name .*Got 'gpu0'"),
        ({"device": 3.5}, r"'device' parameter of DropoutRegressor must be None, a device name .*Got 3.5"),
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


# -- held-out data: early stopping, temperature scaling ------------------------------------------------------


def _blobs(n=600, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = rng.normal(size=(n, 4)) + 1.5 * np.eye(classes, 4)[y]
    return X, y


def test_early_stopping_restores_the_best_epoch():
    X, y = _blobs()
    kw = {"hidden_layer_sizes": (64, 64), "validation_fraction": 0.2, "num_samples": 10, "random_state": 0}
    clf = DropoutClassifier(epochs=300, lr=3e-2, early_stopping=True, n_iter_no_change=4, **kw).fit(X, y)
    best = clf.best_epoch_
    assert clf.n_iter_ == best + 4 < 300 and clf.history_.stopped_early
    assert clf.validation_scores_[best - 1] == min(clf.validation_scores_)
    # validation draws no training randomness, so a run that ends at the best epoch has the same weights
    short = DropoutClassifier(epochs=best, lr=3e-2, early_stopping=True, n_iter_no_change=1000, **kw).fit(X, y)
    for (name, a), b in zip(clf.model_.state_dict().items(), short.model_.state_dict().values()):
        if name != "temperature":
            assert torch.equal(a, b), name


@pytest.mark.parametrize("cls", [DropoutClassifier, DropoutRegressor])
def test_the_temperature_lowers_the_validation_nll(cls):
    X, y = _blobs(400, seed=1)
    if cls is DropoutRegressor:
        y = X[:, 0] + 0.3 * np.random.default_rng(2).normal(size=len(X))
    kw = {
        "hidden_layer_sizes": (128, 128),
        "epochs": 150,
        "early_stopping": False,
        "p": 0.05,  # started low and
        "min_p": 0.0,  # free to collapse, the rates give an overconfident network (T 1.57); with the floor T is 0.95
        "random_state": 0,
        "num_samples": 30,
    }
    on = cls(temperature_scaling=True, **kw).fit(X, y)
    off = cls(temperature_scaling=False, **kw).fit(X, y)  # no split held out: trained on all rows
    plain = cls(temperature_scaling=True, **kw).fit(X, y)
    plain.model_.temperature.fill_(1.0)  # the same network as `on`, before its temperature
    assert on.temperature_ != 1.0 and off.temperature_ == 1.0 and off.validation_scores_ == []
    if cls is DropoutClassifier:
        assert on.temperature_ > 1.2  # the case the temperature is for: an overconfident network
    target = np.searchsorted(on.classes_, y) if cls is DropoutClassifier else y
    _, val = on._holdout(target, cls is DropoutClassifier)  # the split fit held out (same random_state)

    def val_nll(est):
        if cls is DropoutClassifier:
            p = est.predict_proba(X[val])
            return -np.log(p[np.arange(len(val)), y[val]]).mean()
        mu, log_var = est._moments(X[val])
        log_p = -0.5 * (np.log(2 * np.pi) + log_var + (torch.as_tensor(y[val]) - mu) ** 2 / log_var.exp())
        return -(torch.logsumexp(log_p, 0) - np.log(log_p.shape[0])).mean().item()

    assert val_nll(on) < val_nll(plain)


def test_the_defaults_reproduce_from_a_seed_and_auto_turns_on_with_enough_rows():
    X, y = _blobs(1200)
    a = DropoutClassifier(num_samples=10, random_state=3).fit(X, y)
    b = DropoutClassifier(num_samples=10, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X[:50]), b.predict_proba(X[:50]))
    assert a.best_epoch_ is not None and a.temperature_ == 1.0  # 1,200 rows: early stopping, no temperature
    small = DropoutClassifier(epochs=5, num_samples=5, random_state=0).fit(X[:900], y[:900])
    assert small.best_epoch_ is None and small.temperature_ == 1.0 and small.n_iter_ == 5
    X, y = _blobs(10_000)
    big = DropoutClassifier((8,), epochs=3, num_samples=5, random_state=0).fit(X, y)
    assert big.best_epoch_ is not None and big.temperature_ != 1.0  # 10,000 rows: both


@pytest.mark.parametrize(
    ("params", "n", "match"),
    [
        (
            {"validation_fraction": 0.0},
            100,
            r"'validation_fraction' parameter of DropoutClassifier must be a float in \(0, 1\)",
        ),
        (
            {"validation_fraction": 1.0},
            100,
            r"'validation_fraction' parameter of DropoutClassifier must be a float in \(0, 1\)",
        ),
        ({"n_iter_no_change": 0}, 100, r"'n_iter_no_change' parameter of DropoutClassifier must be an int >= 1. Got 0"),
        (
            {"early_stopping": "yes"},
            100,
            r"'early_stopping' parameter of DropoutClassifier must be True, False or 'auto'",
        ),
        ({"temperature_scaling": None}, 100, r"'temperature_scaling' parameter .* must be True, False or 'auto'"),
        ({"min_p": 0.1}, 100, r"'min_p' parameter of DropoutClassifier must be a float in \[0, 0.1\)\. Got 0.1"),
        (
            {"p": 0.02},
            100,
            r"Got 0.05 instead\. The floor must lie below the initial rate p=0.02: pass a smaller min_p",
        ),
        ({"min_p": -0.01}, 100, r"'min_p' parameter of DropoutClassifier must be a float in \[0, 0.1\)"),
        (
            {"p": 1.5},
            100,
            r"'p' parameter of DropoutClassifier must be a float in \[0, 1\)\. Got 1.5 instead\. \(None picks",
        ),
        ({"method": "mc", "min_p": 1.0}, 100, r"'min_p' parameter of DropoutClassifier must be a float in \[0, 1\)"),
        (
            {"early_stopping": True},
            8,
            r"'early_stopping' parameter of DropoutClassifier needs at least 2 training and 2 validation rows",
        ),
        (
            {"early_stopping": True, "validation_fraction": 0.05},
            40,
            r"'validation_fraction' parameter of DropoutClassifier leaves a class out",
        ),
    ],
)
def test_bad_held_out_options(params, n, match):
    X, y = _blobs(n, classes=3)
    with pytest.raises(ValueError, match=match):
        DropoutClassifier(epochs=2, **params).fit(X, y)


def test_min_p_floors_every_learned_rate_of_the_default_classifier():
    X, y = _blobs(3000)  # enough rows that the learned rates fall (the entropy term is divided by N)
    kw = {"hidden_layer_sizes": (64, 64), "epochs": 30, "early_stopping": False, "num_samples": 5, "random_state": 0}
    free = DropoutClassifier(min_p=0.0, **kw).fit(X, y)
    floored = DropoutClassifier(**kw).fit(X, y)  # the default floor, MIN_P

    assert min(_rates(free)) < MIN_P  # without the floor some rate falls below it ...
    assert min(_rates(floored)) >= MIN_P - 1e-6  # ... with it none does (float32)
    assert DropoutClassifier().get_params()["min_p"] == MIN_P


def _rates(clf: DropoutClassifier) -> list[float]:
    return [float(m.p.detach()) for m in clf.model_.modules() if isinstance(m, ConcreteDropout)]


def test_p_none_picks_the_methods_default_rate():
    X, y = _blobs(100)
    kw = {"epochs": 1, "lr": 1e-12, "num_samples": 2, "random_state": 0}  # a step too small to move a rate
    concrete = DropoutClassifier(**kw).fit(X, y)
    assert concrete.get_params()["p"] is None
    np.testing.assert_allclose(_rates(concrete), DEFAULT_P["concrete"], rtol=1e-5)
    mc = DropoutClassifier(method="mc", **kw).fit(X, y)
    assert {m.p for m in mc.model_.modules() if isinstance(m, Dropout)} == {0.05}
    np.testing.assert_allclose(_rates(DropoutClassifier(p=0.3, **kw).fit(X, y)), 0.3, rtol=1e-5)
    assert DEFAULT_P["concrete"] > MIN_P == DEFAULT_P["mc"]  # concrete starts above mc's rate, never falls below it


def test_a_rare_class_cannot_be_split_off_and_auto_then_trains_on_everything():
    X, y = _blobs(1500)
    y[0] = 7  # one example of a fourth class
    with pytest.raises(ValueError, match="'validation_fraction' parameter of DropoutClassifier leaves a class out"):
        DropoutClassifier(epochs=2, early_stopping=True).fit(X, y)
    clf = DropoutClassifier(epochs=2, num_samples=5, random_state=0).fit(X, y)  # "auto": no split possible
    assert clf.best_epoch_ is None and clf.validation_scores_ == []


def test_explicit_early_stopping_fails_check_estimator_only_where_the_data_are_too_small_to_split():
    est = DropoutClassifier(epochs=5, num_samples=5, early_stopping=True, temperature_scaling=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)

    def chain(e):  # a check may wrap our error in its own assertion
        return str(e) + (chain(e.__cause__ or e.__context__) if (e.__cause__ or e.__context__) else "")

    failed = [chain(r["exception"]) for r in results if r["status"] == "failed"]
    assert failed  # scikit-learn's checks fit on 1 to 30 rows
    ours = (
        "'early_stopping' parameter of DropoutClassifier needs",
        "'validation_fraction' parameter of DropoutClassifier",
    )
    assert all(any(o in f for o in ours) for f in failed), failed


def test_the_temperature_travels_with_the_model_file(tmp_path):
    X, y = _blobs(300)
    clf = DropoutClassifier(epochs=20, temperature_scaling=True, num_samples=10, random_state=0).fit(X, y)
    state = clf.to_state()
    restored = from_state(state)
    assert restored.temperature_ == clf.temperature_ != 1.0
    np.testing.assert_allclose(restored.predict_proba(X[:5]), clf.predict_proba(X[:5]), rtol=1e-6)
    old = {**state, "state": {k: v for k, v in state["state"].items() if k != "temperature"}}  # an older file
    assert from_state(old).temperature_ == 1.0


def test_device_cpu_trains_as_the_default_and_saves_by_name():
    X, y = _blobs(200)
    kw = {"epochs": 5, "num_samples": 10, "random_state": 0}
    plain = DropoutClassifier(**kw).fit(X, y)
    on_cpu = DropoutClassifier(device=torch.device("cpu"), **kw).fit(X, y)
    np.testing.assert_array_equal(on_cpu.predict_proba(X[:5]), plain.predict_proba(X[:5]))
    state = on_cpu.to_state()
    assert state["params"]["device"] == "cpu"
    np.testing.assert_array_equal(from_state(state).predict_proba(X[:5]), on_cpu.predict_proba(X[:5]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
def test_cuda_without_cuda_is_a_clear_error():
    X, y = _blobs(50)
    with pytest.raises(ValueError, match=r"'device' parameter of DropoutClassifier is 'cuda', but this torch sees no"):
        DropoutClassifier(device="cuda", epochs=2).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda_and_predicts_on_the_cpu():
    X, y = _blobs(300)
    clf = DropoutClassifier(device="cuda", epochs=30, num_samples=20, random_state=0).fit(X, y)
    assert all(t.device.type == "cpu" for t in clf.model_.state_dict().values())
    assert clf.score(X, y) > 0.9
