"""A run's files are checked when read: finite weights, typed model.json, labels that fit the model.

Every refusal is one line that names the file (and the field), given before any work.
"""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import skops.io
import torch
from synth import class_folders, tiny_store

import spectro.training.evaluate as evaluate_module
from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.training.evaluate import evaluate
from spectro.training.run import load_run
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("runfiles"))


@pytest.fixture(scope="module")
def cnn_run(store, tmp_path_factory):
    return train(store, "cnn", str(tmp_path_factory.mktemp("runs") / "cnn"), epochs=1, batch_size=8, **FAST).path


@pytest.fixture(scope="module")
def svm_run(store, tmp_path_factory):
    return train(store, "svm", str(tmp_path_factory.mktemp("runs") / "svm"), **FAST).path


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    src = class_folders(tmp_path_factory.mktemp("audio"), per_class=1, sr=8000)
    return os.path.join(src, "low", "low_0.wav")


def copy_run(run, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- non-finite weights (issue 22, D8 and D2) -----------------------------------------

def poison_weights(path):
    state = torch.load(path, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    torch.save(state, path)


def test_nan_weights_are_refused_by_load_evaluate_predict_and_export(cnn_run, wav, tmp_path, capsys):
    run = copy_run(cnn_run, tmp_path)
    poison_weights(run / "model" / "weights.pt")
    report = {p.name: p.stat().st_mtime_ns for p in (run / "eval").iterdir()}
    with pytest.raises(SpectroError, match=r"weights\.pt holds non-finite weights"):
        load_run(str(run))
    commands = [["evaluate", str(run)], ["predict", str(run), wav, "--format", "json"]]
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        commands.append(["export", str(run), "--out", str(tmp_path / "nan.onnx")])
    for argv in commands:
        assert main(argv) == 2, argv
        err = one_error_line(capsys)
        assert "weights.pt holds non-finite weights (NaN or Inf)" in err, err
    assert {p.name: p.stat().st_mtime_ns for p in (run / "eval").iterdir()} == report  # refused before any work
    assert not (tmp_path / "nan.onnx").exists()


def test_nan_last_weights_are_refused(cnn_run, tmp_path):
    run = copy_run(cnn_run, tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["model"][next(iter(ckpt["model"]))].view(-1)[0] = float("inf")
    torch.save(ckpt, run / "checkpoints" / "last.pt")
    with pytest.raises(SpectroError, match=r"last\.pt holds non-finite weights"):
        load_run(str(run), weights="last")


def test_resume_refuses_a_nan_checkpoint_before_training(cnn_run, tmp_path, capsys):
    run = copy_run(cnn_run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    cfg = json.loads((run / "train_config.json").read_text())
    (run / "train_config.json").write_text(json.dumps({**cfg, "epochs": 2}))  # one epoch left to train
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["model"]["features.0.0.weight"].view(-1)[0] = float("nan")
    torch.save(ckpt, run / "checkpoints" / "last.pt")
    before = (run / "metrics.csv").read_text()
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = one_error_line(capsys)
    assert "last.pt holds non-finite weights" in err and "lr" not in err  # not blamed on the learning rate
    assert (run / "metrics.csv").read_text() == before  # no epoch was trained


def test_nan_svm_is_refused(svm_run, tmp_path, capsys):
    run = copy_run(svm_run, tmp_path)
    path = run / "model" / "model.skops"
    pipeline = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    pipeline["scale"].mean_[0] = np.nan
    skops.io.dump(pipeline, path)
    assert main(["evaluate", str(run)]) == 2
    err = one_error_line(capsys)
    assert "model.skops holds non-finite values" in err and "mean_" in err


def test_evaluate_json_never_holds_nan(cnn_run, tmp_path, monkeypatch, capsys):
    run = copy_run(cnn_run, tmp_path)
    real = evaluate_module.compute_metrics

    def with_nan(*args, **kw):
        m = real(*args, **kw)
        m["log_loss"] = float("nan")
        m["per_class"]["low"]["f1"] = float("inf")
        return m

    monkeypatch.setattr(evaluate_module, "compute_metrics", with_nan)

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))

    m = evaluate(str(run), "test")
    assert m["log_loss"] is None and m["per_class"]["low"]["f1"] is None
    written = strict((run / "eval" / "test.json").read_text())
    assert written["log_loss"] is None and written["accuracy"] == m["accuracy"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    assert strict(capsys.readouterr().out)["per_class"]["low"]["f1"] is None


# --- typed run files (issue 22, D4) --------------------------------------------------

def edit_json(path, change):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


@pytest.mark.parametrize("labels, message", [
    ({"a": 1}, "labels.json: must be a list of class names (strings)"),
    (["high", "low"], "labels.json: 2 class names, but the model has 3 outputs"),
    ([1, 2, 3], "labels.json: must be a list of class names (strings)"),
    (["low", "low", "mid"], "labels.json: class names must be distinct"),
])
def test_labels_json_is_checked_against_the_model(cnn_run, wav, tmp_path, capsys, labels, message):
    run = copy_run(cnn_run, tmp_path)
    (run / "labels.json").write_text(json.dumps(labels))
    for argv in (["predict", str(run), wav], ["evaluate", str(run)]):
        assert main(argv) == 2
        assert message in one_error_line(capsys)


@pytest.mark.parametrize("field, value, message", [
    ("num_classes", "three", "field 'num_classes' must be an integer, got 'three'"),
    ("num_classes", 2, "field 'classes' must be a list of 2 (num_classes)"),
    ("options", [1], "field 'options' must be a dict, got [1]"),
    ("in_channels", 0, "field 'in_channels' must be at least 1"),
    ("classes", "low", "field 'classes' must be a list, got 'low'"),
    ("settings", None, "field 'settings' must be a dict, got None"),
    ("name", 7, "field 'name' must be a str, got 7"),
])
@pytest.mark.parametrize("kind", ["cnn", "svm"])
def test_model_json_fields_are_typed(cnn_run, svm_run, wav, tmp_path, capsys, kind, field, value, message):
    run = copy_run(cnn_run if kind == "cnn" else svm_run, tmp_path)
    edit_json(run / "model" / "model.json", lambda d: {**d, field: value})
    for argv in (["predict", str(run), wav], ["evaluate", str(run)]):
        assert main(argv) == 2
        err = one_error_line(capsys)
        assert f"model.json: {message}" in err, err
