"""evaluate: metrics agree with scikit-learn; reports of every model kind; runs load without running code."""

import json
import os
import pickle
import shlex

import numpy as np
import pytest
from sklearn import metrics as skm
from synth import TINY_CFG as CFG
from synth import class_folders, tiny_store

from spectro import preprocess
from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.metrics.scores import compute_metrics, format_report, metrics_from_confusion
from spectro.training.evaluate import evaluate
from spectro.training.run import load_run
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="module")
def cnn_run(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cnn"
    return train(store, "cnn", str(out), epochs=2, batch_size=8, device="cpu", progress=False,
                 min_holdout=0)  # a hold-out even on this tiny store: evaluate --split val needs one


@pytest.fixture(scope="module")
def svm_run(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "svm"
    return train(store, "svm", str(out), progress=False)


# --- metrics --------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    c, n = 5, 300
    y = rng.integers(0, 4, n)  # class 4 never occurs as truth
    proba = rng.dirichlet(np.ones(c), n)
    proba[:, 3] = 0  # class 3 is never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    m = compute_metrics(y, proba, list("abcde"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(c), zero_division=0)
    for i, name in enumerate("abcde"):
        assert m["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    for k in (2, 3):
        assert m["top_k_accuracy"][str(k)] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=k, labels=range(c)))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=range(c)))
    np.testing.assert_array_equal(m["confusion_matrix"], skm.confusion_matrix(y, pred, labels=range(c)))
    assert set(m["top_k_accuracy"]) == {"2", "3"}  # k < number of classes only


def test_metrics_from_confusion_known_answer():
    cm = np.array([[3, 1], [0, 0]])  # 4 of class 0, one predicted as 1; class 1 absent from truth
    m = metrics_from_confusion(cm)
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.75
    assert m["f1"] == pytest.approx([2 * 0.75 / 1.75, 0.0]) and m["macro_f1"] == pytest.approx(0.75 / 1.75)


# --- evaluate -------------------------------------------------------------------------

def test_evaluate_writes_the_report_and_agrees_with_predictions(cnn_run, store):
    m = evaluate(cnn_run.path, "test")
    files = sorted(os.listdir(os.path.join(cnn_run.path, "eval")))
    assert files == ["test.json", "test_confusion.csv", "test_confusion.png", "test_per_class.csv",
                     "test_predictions.csv"]
    split = cnn_run.info["examples"]
    assert m["n"] == split["test"] == int(np.sum(m["confusion_matrix"]))
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert 0 <= m[key] <= 1
    assert m == {**json.loads(open(os.path.join(cnn_run.path, "eval", "test.json")).read())}
    # Recompute by hand: load the run, predict the test rows of the store.
    from spectro.signals.store import open_store
    st = open_store(store)
    test_rows = np.flatnonzero(st.folds == cnn_run.info["folds"]["test"])
    pred = load_run(cnn_run.path).predict(st.features[test_rows])
    assert m["accuracy"] == pytest.approx(np.mean(pred == np.asarray(st.labels)[st.y[test_rows]]))
    assert evaluate(cnn_run.path, "val", write=False)["n"] == split["val"]
    assert evaluate(cnn_run.path, "all", write=False)["n"] == len(st)
    assert "macro-F1" in format_report(m)


def test_evaluate_cli_json_and_table(cnn_run, capsys):
    assert main(["evaluate", cnn_run.path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # one JSON object, nothing else on stdout
    assert {"accuracy", "balanced_accuracy", "macro_f1", "top_k_accuracy", "per_class"} <= set(out)
    assert main(["evaluate", cnn_run.path, "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "balanced accuracy" in text and "precision" in text and "high" in text


def test_evaluate_works_on_the_svm_unchanged(svm_run):
    assert svm_run.info["kind"] == "svm"
    m = evaluate(svm_run.path, "test")
    assert m["accuracy"] > 0.5 and os.path.isfile(os.path.join(svm_run.path, "eval", "test_confusion.png"))


def test_evaluate_errors(cnn_run, tmp_path, capsys):
    with pytest.raises(SpectroError, match="unknown split 'dev'"):
        evaluate(cnn_run.path, "dev")
    other = class_folders(tmp_path / "src", per_class=4, sr=8000)
    preprocess(other, str(tmp_path / "other"), config=CFG.replace(n_mels=24), workers=0, progress=False)
    with pytest.raises(SpectroError, match="another FeatureConfig"):
        evaluate(cnn_run.path, "test", store=str(tmp_path / "other"))
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.strip() == f"spectro: error: run not found: {tmp_path / 'nothing'}"


# --- runs load without running code ---------------------------------------------------

class Exploit:
    """A pickle payload: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_a_run_with_a_malicious_weights_file_is_refused(cnn_run, tmp_path):
    import shutil

    run = tmp_path / "sent-to-me"
    shutil.copytree(cnn_run.path, run)
    marker = tmp_path / "pwned"
    with open(run / "model" / "weights.pt", "wb") as f:
        pickle.dump(Exploit(marker), f, protocol=2)
    with pytest.raises(SpectroError, match=r"refusing to load .*weights\.pt"):
        load_run(str(run))
    with pytest.raises(SpectroError, match="refusing to load"):
        evaluate(str(run))
    # The checkpoint that --resume reads is held to the same rule.
    with open(run / "checkpoints" / "last.pt", "wb") as f:
        pickle.dump(Exploit(marker), f, protocol=2)
    with pytest.raises(SpectroError, match=r"refusing to load .*last\.pt"):
        train(resume=str(run), progress=False)
    assert not marker.exists()
