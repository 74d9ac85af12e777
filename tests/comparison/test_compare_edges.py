"""compare's rough edges (issue 31): a failed model named everywhere, a verdict that says which test holds it
back, a DIR with one writer, a dead job process that fails its job alone, a store rebuilt mid-compare."""

import os
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spectro
from spectro.cli.main import main
from spectro.comparison.scoring import Predictions, significance

TINY = dict(epochs=1, batch_size=8, progress=False, timing=False)


def test_a_failed_model_is_named_in_the_verdict_the_report_and_a_warning(store, tmp_path, one_thread):
    out = str(tmp_path / "cmp")
    # ~20 training examples and a batch of 64: the cnn refuses, the svm ignores the batch size.
    with pytest.warns(UserWarning, match=r"cnn failed: .*batch size"):
        c = spectro.compare(store, ["svm", "cnn"], out, epochs=1, batch_size=64, progress=False, timing=False)
    assert set(c.failed) == {"cnn"} and "batch size" in c.failed["cnn"]
    assert c.best == "svm"
    assert "cnn failed" in c.verdict and "batch size" in c.verdict
    report = Path(out, "report.md").read_text()
    assert c.verdict in report


def _preds(correct: np.ndarray) -> Predictions:
    n = correct.size
    y = np.zeros(n, np.int64)
    return Predictions(rows=np.arange(n), ids=np.arange(n).astype(str).astype(object), y_true=y,
                       y_pred=np.where(correct, 0, 1).astype(np.int64),
                       proba=np.eye(2, dtype=np.float32)[np.where(correct, 0, 1)], fold=np.ones(n, np.int64))


def test_the_verdict_says_which_test_holds_a_difference_back_and_why():
    # 60 examples of 3 groups: the runner-up misses every example of one group. McNemar (examples taken as
    # independent) calls that certain; resampling the 3 groups can leave that group out, so the interval holds 0.
    groups = np.repeat(np.array(["a", "b", "c"], dtype=object), 20)
    st = types.SimpleNamespace(groups=groups, labels=["x", "y"])
    preds = {"best": _preds(np.ones(60, bool)), "other": _preds(groups != "a")}
    table = pd.DataFrame({"model": ["best", "other"], "status": ["ok", "ok"]})
    best, verdict = significance(table, preds, st, cv=False)
    assert best == "best" and table.set_index("model").loc["other", "significant"] == "no"
    assert table.set_index("model").loc["other", "p_holm"] < 0.05  # McNemar alone would mark it
    assert "not distinguishable" in verdict
    assert "McNemar alone" in verdict and "only 3 groups" in verdict and "includes 0" in verdict
