from __future__ import annotations

import numpy as np
import pytest

from bayesdrop.datasets import UCI_DATASETS, load_uci, read_csv


def test_read_csv_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,t\n1,2,3\n4,5,6\n\n")
    X, y, names = read_csv(p, target="t")
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(y, [3, 6])
    assert names == ["a", "b"]
    X2, y2, _ = read_csv(p, features=["b", "a"])
    np.testing.assert_array_equal(X2, [[2, 1], [5, 4]]) and y2 is None
    p.write_text("a,t\n1,2,3\n")
    with pytest.raises(ValueError, match="line 2: expected 2 fields, got 3"):
        read_csv(p, target="t")
    p.write_text("a,t\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_csv(p, target="t")


def test_load_uci_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="'name' parameter of load_uci must be one of bostonHousing"):
        load_uci("boston", tmp_path)
    with pytest.raises(FileNotFoundError, match="UCI dataset folder not found"):
        load_uci("yacht", tmp_path)


@pytest.mark.parametrize("name", ["bostonHousing", "kin8nm", "naval-propulsion-plant", "protein-tertiary-structure"])
def test_load_uci_shared_data(shared_data, name):
    ds = load_uci(name, shared_data / "uci")
    expected_rows = {
        "bostonHousing": 506,
        "kin8nm": 8192,
        "naval-propulsion-plant": 11934,
        "protein-tertiary-structure": 45730,
    }
    assert ds.X.shape[0] == expected_rows[name] and ds.y.shape == (expected_rows[name],)
    assert len(ds.splits) == (5 if name.startswith("protein") else 20)
    train, test = ds.splits[0]
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(ds.y)
    assert name in UCI_DATASETS and len(ds.tau_values) == 3 and len(ds.dropout_rates) == 4
