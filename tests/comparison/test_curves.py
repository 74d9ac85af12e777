"""Learning curves: nested shares of the training groups, the same test fold, one line per model."""

import os

import numpy as np
import pytest
from test_compare import TINY

import spectro
from spectro.comparison.curves import learning_curve, parse_train_sizes
from spectro.errors import SpectroError
from spectro.plots.curves import plot_learning_curve
from spectro.training.run import read_split


def test_learning_curve_nested_sizes_same_test_fold_table_and_figure(store, tmp_path, one_thread):
    out = str(tmp_path / "curve")
    curve = spectro.compare(store, ["svm", "cnn", "ensemble"], out, train_sizes="1,0.5", **TINY)
    t = curve.table
    assert list(zip(t["model"], t["train_fraction"])) == [(m, f) for f in (0.5, 1.0) for m in ("svm", "cnn", "ensemble")]
    # 4 training voices of 10 clips: half of them is 2 voices, 20 clips (the ensemble: its members').
    assert t.set_index(["model", "train_fraction"])["train_examples"].to_dict() == {
        **{(m, 0.5): 20 for m in ("svm", "cnn", "ensemble")}, **{(m, 1.0): 40 for m in ("svm", "cnn", "ensemble")}}
    assert t["accuracy"].between(0, 1).all()
    for m in ("svm", "cnn"):
        small = read_split(curve.comparisons[0.5].runs[m][0])
        full = read_split(curve.comparisons[1.0].runs[m][0])
        learned = lambda s: set(s["train"]) | set(s.get("val", []))  # noqa: E731
        assert learned(small) < learned(full)  # the smaller share lies inside the larger
        assert small["test"] == full["test"]  # every size tested on the same clips
    for name in ("curve.csv", "curve.md", "curve.png"):
        assert os.path.isfile(os.path.join(out, name))
    fig = curve.figure()
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["svm", "cnn", "ensemble"]
    assert [list(line.get_xdata()) for line in ax.lines] == [[20, 40]] * 3
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["20", "40"]
    # Again: every run is reused, the curve is the same.
    again = learning_curve(spectro.compare, store, ["svm", "cnn", "ensemble"], out, train_sizes=[0.5, 1], **TINY)
    assert again.table["accuracy"].tolist() == t["accuracy"].tolist()


def test_learning_curve_refuses_bad_sizes_and_foreign_folders(store, tmp_path):
    for bad in ("0", "1.5", "a,b", "", "nan"):
        with pytest.raises(SpectroError, match="train-sizes"):
            parse_train_sizes(bad)
    assert parse_train_sizes("1, 0.1,0.25,0.1") == [0.1, 0.25, 1.0]
    out = tmp_path / "mine"
    out.mkdir()
    (out / "NOTES.txt").write_text("mine")
    with pytest.raises(SpectroError, match="did not write"):
        learning_curve(spectro.compare, store, ["svm"], str(out), train_sizes="0.5,1", progress=False)
    assert os.listdir(out) == ["NOTES.txt"]
    with pytest.raises(SpectroError, match="sets the training fraction itself"):
        learning_curve(spectro.compare, store, ["svm"], str(tmp_path / "x"), train_sizes="0.5", train_fraction=0.5)


def test_compare_cli_train_sizes(store, tmp_path, one_thread, capsys):
    from spectro.cli.main import main

    out = str(tmp_path / "cli")
    assert main(["compare", store, "--models", "svm", "--train-sizes", "0.5,1", "--out", out, "--quiet",
                 "--explain"]) == 0
    printed = capsys.readouterr().out
    assert "| svm | 0.5 | 20 |" in printed and "| svm | 1 | 40 |" in printed
    assert sorted(os.listdir(out)) == ["curve.csv", "curve.md", "curve.png", "size-0.5", "size-1"]
    report = os.path.join(out, "size-1", "explain", "report.html")
    assert f"explained in {report}" in printed
    html = open(report, encoding="utf-8").read()
    assert "the learning curve: test accuracy against training examples" in html  # the curve is in the report
    # compare wrote explain/ into its folder: a second run there reuses everything and is not refused.
    assert main(["compare", store, "--models", "svm", "--train-sizes", "0.5,1", "--out", out, "--quiet"]) == 0
    assert main(["compare", store, "--models", "svm", "--train-sizes", "0,1", "--out", out]) == 2
    assert capsys.readouterr().err.startswith("spectro: error: --train-sizes must be fractions in (0, 1]")


def test_learning_curve_figure_under_cv_draws_the_spread():
    import pandas as pd

    table = pd.DataFrame({"model": ["svm", "svm", "cnn", "cnn"], "train_examples": [30, 120, 30, 120],
                          "accuracy": [0.5, 0.8, 0.4, 0.9], "accuracy_std": [0.1, 0.05, 0.2, 0.02],
                          "accuracy_low": np.nan, "accuracy_high": np.nan})
    fig = plot_learning_curve(table)
    ax = fig.axes[0]
    bands = ax.collections
    assert len(bands) == 2
    # The cnn's band at 30 examples spans 0.4 +- 0.2.
    ys = bands[1].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.2) and ys.max() == pytest.approx(0.92)
    assert "std over folds" in ax.get_title()
