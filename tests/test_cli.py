from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from bayesdrop.cli import main


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def reg_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = 2 * X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=120)
    return _write_csv(tmp_path / "train.csv", ["a", "b", "c", "y"], np.column_stack([X, y]).tolist())


@pytest.fixture
def cls_csv(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)
    return _write_csv(tmp_path / "cls.csv", ["u", "v", "label"], np.column_stack([X, y]).tolist())


def test_regression_end_to_end(tmp_path, reg_csv, capsys):
    model = tmp_path / "m.pt"
    assert main(["fit", str(reg_csv), "--target", "y", "--epochs", "30", "--quiet", "--out", str(model)]) == 0
    state = torch.load(model, weights_only=True)  # a model file is data
    assert state["format"] == "bayesdrop-model" and state["feature_names"] == ["a", "b", "c"]
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(model), str(reg_csv), "--out", str(pred), "--num-samples", "50", "--level", "0.9"]) == 0
    rows = list(csv.reader(open(pred)))
    assert rows[0] == ["mean", "std", "lower_0.9", "upper_0.9"] and len(rows) == 121
    mean, std, lo, hi = map(float, rows[1])
    assert std > 0 and lo < mean < hi
    out = tmp_path / "rep"
    assert main(["report", str(model), str(reg_csv), "--target", "y", "--out", str(out), "--num-samples", "20"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "regression" and "heteroscedastic=True" in metrics["meta"]["likelihood"]
    assert (out / "index.html").exists()


def test_classification_end_to_end(tmp_path, cls_csv):
    model = tmp_path / "c.pt"
    assert (
        main(
            [
                "fit",
                str(cls_csv),
                "--target",
                "label",
                "--task",
                "classification",
                "--method",
                "mc",
                "--p",
                "0.1",
                "--epochs",
                "20",
                "--quiet",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    pred = tmp_path / "p.csv"
    assert main(["predict", str(model), str(cls_csv), "--out", str(pred), "--num-samples", "20"]) == 0
    rows = list(csv.reader(open(pred)))
    assert rows[0] == ["prob_0", "prob_1", "prob_2", "predicted", "entropy", "mutual_information"]
    probs = np.array([[float(v) for v in r[:3]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert (
        main(
            [
                "report",
                str(model),
                str(cls_csv),
                "--target",
                "label",
                "--out",
                str(tmp_path / "r"),
                "--num-samples",
                "10",
            ]
        )
        == 0
    )
    assert (tmp_path / "r" / "reliability.png").exists()


def test_bad_input_exits_2_without_traceback(tmp_path, reg_csv, capsys):
    def run(args):
        code = main(args)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return code, err

    code, err = run(["fit", str(tmp_path / "nope.csv"), "--target", "y", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "CSV file not found" in err
    code, err = run(["fit", str(reg_csv), "--target", "price", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "target column 'price' not found" in err and "columns are: a, b, c, y" in err
    bad = _write_csv(tmp_path / "bad.csv", ["a", "y"], [["1.0", "2"], ["red", "3"]])
    code, err = run(["fit", str(bad), "--target", "y", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "line 3, column 'a': non-numeric value 'red'" in err
    nan = _write_csv(tmp_path / "nan.csv", ["a", "y"], [["1.0", "2"], ["nan", "3"]])
    code, err = run(["fit", str(nan), "--target", "y", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "not a finite number (NaN in the data)" in err
    empty_cell = _write_csv(tmp_path / "empty.csv", ["a", "y"], [["1.0", "2"], ["", "3"]])
    code, err = run(["fit", str(empty_cell), "--target", "y", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "non-numeric value ''" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    code, err = run(["predict", str(junk), str(reg_csv), "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "is not a bayesdrop model file" in err
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    code, err = run(["predict", str(tmp_path / "other.pt"), str(reg_csv), "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "is not a bayesdrop model file" in err
    code, err = run(["predict", str(tmp_path / "missing.pt"), str(reg_csv), "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "model file not found" in err
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(junk), str(reg_csv), "--out", "x.csv", "--level", "1.5"])
    assert exc.value.code == 2 and "expected a number in (0, 1), got '1.5'" in capsys.readouterr().err


def test_missing_feature_column_at_predict(tmp_path, reg_csv, capsys):
    model = tmp_path / "m.pt"
    main(["fit", str(reg_csv), "--target", "y", "--epochs", "2", "--quiet", "--out", str(model)])
    other = _write_csv(tmp_path / "o.csv", ["a", "b"], [["1", "2"]])
    assert main(["predict", str(model), str(other), "--out", str(tmp_path / "p.csv")]) == 2
    assert "feature column(s) 'c' not found" in capsys.readouterr().err


def test_console_entry_points():
    out = subprocess.run([sys.executable, "-m", "bayesdrop", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("bayesdrop ")
    bad = subprocess.run(
        [sys.executable, "-m", "bayesdrop", "fit", "missing.csv", "--target", "y", "--out", "m.pt"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "bayesdrop: error: CSV file not found: missing.csv"


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "diabetes-mc",
        "diabetes-variational",
        "digits-concrete",
        "digits-mc",
        "index.html",
        "summary.md",
    ]
    assert "| digits | concrete | accuracy |" in (out / "summary.md").read_text()
    # The index page is HTML a browser shows as a table (no markdown in a <pre>), linking every report and
    # showing its headline figure, which exists.
    page = (out / "index.html").read_text()
    assert "<pre>" not in page and "|---|" not in page and page.count("<tr>") >= 4 * 5
    for report, figure in [("digits-mc", "reliability.png"), ("diabetes-variational", "regression_calibration.png")]:
        assert f"href='{report}/index.html'" in page and f"src='{report}/{figure}'" in page
        assert (out / report / figure).exists()
    assert main(["demo", "--out", str(out), "--quick", "--quiet"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


# --------------------------------------------------------------------------- the first hour (issue 19)


def test_the_task_is_inferred_from_the_target_column_and_said(tmp_path, reg_csv, capsys):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 2))
    labels = _write_csv(
        tmp_path / "bc.csv", ["u", "v", "label"], np.column_stack([X, X[:, 0] > 0]).astype(int).tolist()
    )
    model = tmp_path / "bc.pt"
    assert main(["fit", str(labels), "--target", "label", "--epochs", "3", "--quiet", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "classification model (concrete)" in out and "inferred from column 'label'" in out and "(None)" not in out
    assert torch.load(model, weights_only=True)["task"] == "classification"
    assert (
        main(["fit", str(reg_csv), "--target", "y", "--epochs", "2", "--quiet", "--out", str(tmp_path / "r.pt")]) == 0
    )
    assert "regression model (variational)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "inferred from the target column" in " ".join(capsys.readouterr().out.split())


def test_text_class_labels_are_accepted_and_written_back_as_text(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 2))
    rows = [[*map(str, x), "malignant" if x[0] > 0 else "benign"] for x in X]
    data = _write_csv(tmp_path / "text.csv", ["u", "v", "diagnosis"], rows)
    model, pred = tmp_path / "t.pt", tmp_path / "p.csv"
    assert main(["fit", str(data), "--target", "diagnosis", "--epochs", "20", "--quiet", "--out", str(model)]) == 0
    assert "classification model" in capsys.readouterr().out
    assert main(["predict", str(model), str(data), "--out", str(pred), "--num-samples", "10"]) == 0
    written = list(csv.reader(open(pred)))
    assert written[0][:2] == ["prob_benign", "prob_malignant"]
    assert {r[2] for r in written[1:]} <= {"benign", "malignant"}
    assert main(["report", str(model), str(data), "--target", "diagnosis", "--out", str(tmp_path / "rep"),
                 "--num-samples", "5"]) == 0  # fmt: skip
    assert (
        main(["fit", str(data), "--target", "diagnosis", "--task", "regression", "--out", str(tmp_path / "x.pt")]) == 2
    )
    assert "--task regression needs numeric targets" in capsys.readouterr().err


def test_fit_predict_and_report_refuse_to_overwrite_without_the_flag(tmp_path, reg_csv, capsys):
    model, pred, rep = tmp_path / "m.pt", tmp_path / "p.csv", tmp_path / "rep"
    fit = ["fit", str(reg_csv), "--target", "y", "--epochs", "2", "--quiet", "--out", str(model)]
    assert main(fit) == 0
    before = model.read_bytes()
    assert main(fit) == 2
    assert f"{model} exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert model.read_bytes() == before  # nothing was written
    assert main([*fit, "--overwrite"]) == 0
    predict = ["predict", str(model), str(reg_csv), "--out", str(pred), "--num-samples", "5"]
    assert main(predict) == 0 and main(predict) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*predict, "--overwrite"]) == 0
    report = ["report", str(model), str(reg_csv), "--target", "y", "--out", str(rep), "--num-samples", "5"]
    assert main(report) == 0 and main(report) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite" in err and "overwrite=True" not in err


def test_cli_messages_name_the_flag(tmp_path, reg_csv, capsys):
    for flag, value, said in [("--p", "1.5", "expected a dropout rate in [0, 1), got '1.5'"),
                              ("--lr", "-1", "expected a positive number, got '-1'")]:  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(["fit", str(reg_csv), "--target", "y", flag, value, "--out", str(tmp_path / "m.pt")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"argument {flag}" in err and said in err
