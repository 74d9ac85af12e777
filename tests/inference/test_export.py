"""export: the ONNX graph plus its sidecar reproduce the run's probabilities (CNN and SVM); errors are one line."""

import json
import os
import sys

import numpy as np
import pytest
from synth import tiny_store

from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.inference.export import export_onnx
from spectro.models import SVMClassifier
from spectro.models.svm_onnx import svm_to_onnx
from spectro.signals.store import open_store
from spectro.training.run import load_run
from spectro.training.train import train

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    store = tiny_store(root)
    train(store, "cnn", str(root / "cnn"), epochs=1, batch_size=8, device="cpu", progress=False)
    train(store, "svm", str(root / "svm"), progress=False)
    return root


@pytest.fixture(scope="module")
def exported(runs):
    """``spectro export`` of the CNN run, once for the module: (exit code, stdout, model path)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["export", str(runs / "cnn"), "--format", "onnx", "--out", str(runs / "onnx" / "cnn.onnx")])
    return code, out.getvalue(), str(runs / "onnx" / "cnn.onnx")


def test_export_prints_the_check_and_writes_the_sidecar(exported):
    code, out, path = exported
    assert code == 0
    assert "largest absolute difference" in out and "(limit 0.0001)" in out
    side = json.loads(open(path + ".json").read())
    assert side["labels"] == ["high", "low", "mid"]
    assert side["input"]["shape"] == ["batch", 1, 32, "time"] and side["input"]["dynamic_time"] is True
    assert side["check"]["max_abs_diff"] <= 1e-4
    assert np.asarray(side["normalisation"]["mean"]).shape == (1, 32)
    steps = " ".join(side["preprocessing"])
    for needle in ("soxr", "n_fft=256", "hop_length=128", "Slaney", "80 dB", "mean[c, f]"):
        assert needle in steps


def test_onnx_with_the_sidecar_gives_the_runs_probabilities(exported, runs):
    _, _, path = exported
    side = json.loads(open(path + ".json").read())
    store = open_store(str(runs / "store"))
    images = np.asarray(store.features[:12], dtype=np.float32)  # (12, 1, 32, 32)
    mean, std = np.asarray(side["normalisation"]["mean"]), np.asarray(side["normalisation"]["std"])
    x = ((images - mean[None, :, :, None]) / std[None, :, :, None]).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    [proba] = session.run(["probabilities"], {"image": x})
    expected = load_run(str(runs / "cnn")).predict_proba(store.features[:12])
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    # The time axis is dynamic: a wider image runs too, batch of one.
    [wide] = session.run(["probabilities"], {"image": np.concatenate([x[:1], x[:1]], axis=3)})
    assert wide.shape == (1, 3)


def test_a_difference_above_the_tolerance_fails_and_leaves_nothing(runs, monkeypatch, tmp_path):
    real_run = ort.InferenceSession.run

    def off_by_a_bit(self, names, feeds, *a, **k):
        return [o + 1e-3 for o in real_run(self, names, feeds, *a, **k)]

    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    monkeypatch.setattr(ort.InferenceSession, "run", off_by_a_bit)
    with pytest.raises(SpectroError, match=r"differ by 0.001 \(more than 0.0001\)"):
        export_onnx(str(runs / "svm"), str(tmp_path / "m.onnx"))  # the SVM: the quickest to export
    assert not os.path.exists(tmp_path / "m.onnx") and not os.path.exists(tmp_path / "m.onnx.json")


def test_the_svm_exports_through_skl2onnx(runs, tmp_path):
    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    result = export_onnx(str(runs / "svm"), str(tmp_path / "svm.onnx"))
    assert result.against == "scikit-learn" and result.max_abs_diff <= 1e-4 and not result.dynamic_time
    side = json.loads(open(result.sidecar).read())
    store = open_store(str(runs / "store"))
    mean, std = np.asarray(side["normalisation"]["mean"]), np.asarray(side["normalisation"]["std"])
    x = ((np.asarray(store.features[:], dtype=np.float32) - mean[None, :, :, None]) / std[None, :, :, None])
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    [proba] = session.run(["probabilities"], {"image": x.astype(np.float32)})
    np.testing.assert_allclose(proba, load_run(str(runs / "svm")).predict_proba(store.features[:]), atol=1e-4)


@pytest.mark.parametrize("calibration", ["sigmoid", "temperature"])
def test_the_svm_exports_with_either_calibration_and_two_classes(runs, tmp_path, calibration):
    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    store = open_store(str(runs / "store"))
    two = list(store.labels)[:2]
    train(str(runs / "store"), "svm", str(tmp_path / "run"), progress=False,
          model_options={"calibration": calibration})
    result = export_onnx(str(tmp_path / "run"), str(tmp_path / "svm.onnx"))
    assert result.max_abs_diff <= 1e-4
    # Two classes: the SVC has one decision value per image, the graph still two probabilities.
    X = np.asarray(store.features[:], dtype=np.float32)
    keep = np.isin(np.asarray(store.labels)[store.y], two)
    clf = SVMClassifier(calibration=calibration, C_grid=(1.0,), gamma_factors=(1.0,), cv=2)
    clf.fit(X[keep], np.asarray(store.labels)[store.y[keep]])
    session = ort.InferenceSession(svm_to_onnx(clf, opset=17).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"image": X})
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-4)
    assert proba.shape == (len(X), 2)


def test_a_missing_extra_is_one_line(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert main(["export", str(runs / "cnn"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["spectro: error: ONNX export needs the onnx extra (onnxruntime is missing): "
                   "pip install 'spectro[onnx]'"]
