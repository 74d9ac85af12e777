"""export: the ONNX graph plus its sidecar reproduce the run's probabilities (CNN and SVM); errors are one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synth import REPO, tiny_store

from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.inference import export as export_mod
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
    assert os.listdir(tmp_path) == []  # no m.onnx, m.onnx.json, m.onnx.data or temporary file


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


# -- one file, exact opset, nothing left by a failure, NaN-aware check (issues 19 item 7, 22 D6-D8) --------


def _leftovers(folder, keep=()):
    return sorted(set(os.listdir(folder)) - set(keep))


def test_a_model_under_2gb_is_one_self_contained_file(exported, tmp_path):
    _, out, path = exported
    folder = os.path.dirname(path)
    assert _leftovers(folder) == ["cnn.onnx", "cnn.onnx.json"]  # no cnn.onnx.data, no temporary file
    assert f"wrote {path}, {path}.json (opset 18)" in out
    side = json.loads(Path(path + ".json").read_text())
    assert side["files"] == {"graph": "cnn.onnx", "data": None} and side["opset"] == 18
    # The .onnx alone, copied elsewhere, is the whole model.
    shutil.copy(path, tmp_path / "alone.onnx")
    session = ort.InferenceSession(str(tmp_path / "alone.onnx"), providers=["CPUExecutionProvider"])
    [proba] = session.run(["probabilities"], {"image": np.zeros((2, 1, 32, 32), dtype=np.float32)})
    assert proba.shape == (2, 3)


def test_a_model_over_the_limit_names_its_data_file_everywhere(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export_mod, "SINGLE_FILE_LIMIT", 0)  # as a model over 2 GB
    out = tmp_path / "big" / "m.onnx"
    assert main(["export", str(runs / "cnn"), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"spectro: wrote {out}, {out}.data, {out}.json (opset 18);")
    assert _leftovers(out.parent) == ["m.onnx", "m.onnx.data", "m.onnx.json"]
    assert json.loads((tmp_path / "big" / "m.onnx.json").read_text())["files"] == {"graph": "m.onnx",
                                                                                    "data": "m.onnx.data"}
    # The files named are the whole model: copied together, they run.
    (tmp_path / "copy").mkdir()
    for name in ("m.onnx", "m.onnx.data"):
        shutil.copy(out.parent / name, tmp_path / "copy" / name)
    session = ort.InferenceSession(str(tmp_path / "copy" / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(["probabilities"], {"image": np.zeros((1, 1, 32, 32), dtype=np.float32)})[0].shape == (1, 3)


def test_an_out_that_is_a_directory_is_one_line_and_leaves_nothing(runs, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["export", str(runs / "cnn"), "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.strip() == (f"spectro: error: --out {tmp_path / 'd'} is a directory; give the "
                                               f".onnx file to write, e.g. {tmp_path / 'd' / 'model.onnx'}")
    assert _leftovers(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


def test_an_opset_the_exporter_cannot_write_is_one_line_and_leaves_nothing(runs, tmp_path):
    out = tmp_path / "op7.onnx"
    # A process of its own: the exporters' chatter (torch's logger, onnxscript's tracebacks) goes to its stderr.
    for opset, expected in (("7", ("spectro: error: --opset 7 is not supported for cnn: its exporter wrote opset 18; "
                                   "use --opset 18 or newer")),
                            ("99", "spectro: error: --opset must be a whole number from 7 to ")):
        done = subprocess.run([sys.executable, "-m", "spectro", "export", str(runs / "cnn"), "--out", str(out),
                               "--opset", opset], capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "PYTHONPATH": REPO})
        assert done.returncode == 2 and done.stdout == ""
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(expected), done.stderr
        assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("model, opset", [("svm", 13), ("cnn", 20)])
def test_the_opset_asked_is_the_opset_in_the_file_and_the_sidecar(runs, tmp_path, model, opset):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    result = export_onnx(str(runs / model), str(tmp_path / "m.onnx"), opset=opset)
    in_file = {o.domain: o.version for o in onnx.load(result.path).opset_import}
    assert in_file[""] == opset == result.opset == json.loads(Path(result.sidecar).read_text())["opset"]


@pytest.mark.parametrize("where", ["onnxruntime", "weights"])
def test_non_finite_outputs_fail_and_leave_nothing(runs, tmp_path, monkeypatch, where):
    run = str(runs / "cnn")
    if where == "onnxruntime":
        real_run = ort.InferenceSession.run

        def nan_first(self, names, feeds, *a, **k):
            got = real_run(self, names, feeds, *a, **k)
            got[0][0, 0] = np.nan  # max(0.0, nan) is 0.0: a plain max would pass this over
            return got

        monkeypatch.setattr(ort.InferenceSession, "run", nan_first)
        match = "ONNX Runtime gives NaN or infinite 'logits'"
    else:
        torch = pytest.importorskip("torch")
        run = str(tmp_path / "nanw")
        shutil.copytree(runs / "cnn", run)
        weights = os.path.join(run, "model", "weights.pt")
        state = torch.load(weights, weights_only=True)
        first = next(k for k, v in state.items() if v.is_floating_point() and v.ndim > 1)
        state[first].view(-1)[0] = float("nan")
        torch.save(state, weights)
        match = "NaN|non-finite"
    (tmp_path / "out").mkdir()
    with pytest.raises(SpectroError, match=match):
        export_onnx(run, str(tmp_path / "out" / "m.onnx"))
    assert os.listdir(tmp_path / "out") == []
