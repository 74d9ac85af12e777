"""compare's rough edges (issue 31): a failed model named everywhere, a verdict that says which test holds it
back, a DIR with one writer, a dead job process that fails its job alone, a store rebuilt mid-compare."""

import os
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synth import DIGITS_CFG_KW

import spectro
from spectro.cli.main import main
from spectro.comparison.scoring import Predictions, significance
from spectro.errors import SpectroError
from spectro.utils.files import exclusive

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


def _npz_store(path, *, n=12, seed=0) -> str:
    """A store of ``n`` noise clips in 2 classes x 3 folds at ``path`` (rebuilt in place when called again)."""
    rng = np.random.default_rng(seed)
    src = f"{path}-src{seed}.npz"
    np.savez(src, X=(0.1 * rng.standard_normal((n, 4000))).astype(np.float32), y=np.arange(n) % 2,
             folds=np.arange(n) % 3 + 1)
    spectro.preprocess(src, str(path), config=spectro.FeatureConfig(**DIGITS_CFG_KW), progress=False)
    return str(path)


def test_a_second_compare_into_the_same_dir_is_refused_while_the_first_runs(tmp_path, capsys):
    store = _npz_store(tmp_path / "store")
    out = str(tmp_path / "cmp")
    with exclusive(out, what="comparison"):  # the first compare, still running
        with pytest.raises(SpectroError, match="another process is writing comparison"):
            spectro.compare(store, ["svm"], out, **TINY)
        assert main(["compare", store, "--models", "svm", "--out", out, "--quiet"]) == 2
        assert "another process is writing comparison" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "compare.json"))  # the second one wrote nothing
    spectro.compare(store, ["svm"], out, **TINY)  # once the first is done, it runs


def test_a_store_rebuilt_after_a_compare_is_named_with_how_to_go_on(tmp_path):
    store = _npz_store(tmp_path / "store")
    out = str(tmp_path / "cmp")
    spectro.compare(store, ["svm"], out, **TINY)
    _npz_store(tmp_path / "store", n=18, seed=1)
    with pytest.raises(SpectroError) as err:
        spectro.compare(store, ["svm"], out, **TINY)
    msg = str(err.value)
    assert "before it was rebuilt" in msg and "another --out" in msg and f"remove {out}" in msg


def test_a_store_rebuilt_while_compare_trains_is_said_so(tmp_path, monkeypatch):
    import spectro.comparison.compare as cmp

    store = _npz_store(tmp_path / "store")
    real = cmp.run_jobs

    def rebuilt_meanwhile(*args, **kwargs):
        outcomes = real(*args, **kwargs)
        _npz_store(tmp_path / "store", n=18, seed=1)  # another preprocess into the same store, mid-compare
        return outcomes

    monkeypatch.setattr(cmp, "run_jobs", rebuilt_meanwhile)
    with pytest.raises(SpectroError, match=r"was rebuilt while compare trained .*another --out"):
        spectro.compare(store, ["svm"], str(tmp_path / "cmp"), **TINY)
