"""A run's files are checked when read: finite weights, typed model.json, labels that fit the model.

Every refusal is one line that names the file (and the field), given before any work.
"""

import csv
import errno
import importlib.util
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import skops.io
import torch
from synth import class_folders, tiny_store

import spectro.training.evaluate as evaluate_module
import spectro.training.recorder as recorder_module
import spectro.utils.files as files_module
from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.training.evaluate import evaluate
from spectro.training.run import load_run, run_status
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


# --- full disk and read-only places (issue 22, D13 and D17) ---------------------------

def leftovers(run):
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name)


def test_a_full_disk_during_training_is_one_line_and_leaves_a_failed_run(store, tmp_path, monkeypatch, capsys):
    """The checkpoint's write hits ENOSPC (a binary file: only weights are written so)."""
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[:100])  # part of it lands, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.f.close()

    def fdopen(fd, mode="r", *args, **kw):
        f = real_fdopen(fd, mode, *args, **kw)
        return FullDisk(f) if "b" in mode else f

    monkeypatch.setattr(files_module.os, "fdopen", fdopen)
    out = tmp_path / "run"
    assert main(["train", "--store", store, "--model", "cnn", "--epochs", "2", "--batch-size", "8", "--device",
                 "cpu", "--out", str(out), "--quiet"]) == 2
    err = one_error_line(capsys)
    assert f"cannot write {out / 'checkpoints' / 'last.pt'}: no space left on the device" in err, err
    assert "choose another --out" in err
    assert leftovers(out) == [] and not (out / "checkpoints" / "last.pt").exists()
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "no space left" in info["error"]
    assert run_status(str(out)) == "failed"
    monkeypatch.undo()
    # Nothing of it blocks the next try into the same folder.
    assert train(store, "cnn", str(out), epochs=1, batch_size=8, **FAST).status == "done"


def _mount_tmpfs(path, options):
    path.mkdir(exist_ok=True)
    if not shutil.which("mount") or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                                   capture_output=True, check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root")


@pytest.fixture
def tiny_disk(tmp_path):
    disk = tmp_path / "small"
    _mount_tmpfs(disk, "size=150k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_really_full_disk_during_training(store, tiny_disk, capsys):
    """The same on a 150 kB tmpfs: torch's own writer would leave last.pt.tmp and a RuntimeError traceback."""
    out = tiny_disk / "run"
    assert main(["train", "--store", store, "--model", "cnn", "--epochs", "3", "--batch-size", "8", "--device",
                 "cpu", "--out", str(out), "--quiet"]) == 2
    err = one_error_line(capsys)
    assert "no space left on the device" in err and str(out) in err, err
    assert leftovers(out) == []
    assert run_status(str(out)) == "failed"


def test_evaluate_on_a_read_only_run_is_one_line(svm_run, tmp_path, monkeypatch, capsys):
    run = copy_run(svm_run, tmp_path)
    shutil.rmtree(run / "eval")
    real_mkstemp = files_module.tempfile.mkstemp

    def read_only(*args, dir=None, **kw):
        if dir and str(run) in str(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
        return real_mkstemp(*args, dir=dir, **kw)

    monkeypatch.setattr(files_module.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(evaluate_module, "_check_writable", lambda path: None)  # the late failure, while writing
    assert main(["evaluate", str(run)]) == 2
    err = one_error_line(capsys)
    assert "read-only file system" in err and "--no-write" in err and str(run / "eval") in err, err
    assert leftovers(run) == []


def test_evaluate_on_a_read_only_mount(svm_run, tmp_path, capsys):
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "size=1m")
    try:
        shutil.copytree(svm_run, disk / "svm")
        shutil.rmtree(disk / "svm" / "eval")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        assert main(["evaluate", str(disk / "svm")]) == 2
        err = one_error_line(capsys)
        assert f"cannot write {disk / 'svm' / 'eval'}: read-only file system" in err, err
        assert main(["evaluate", str(disk / "svm"), "--no-write"]) == 0
        assert "accuracy" in capsys.readouterr().out
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# --- what a run folder keeps (issue 19, item 7) ---------------------------------------

def test_a_finished_run_keeps_its_best_and_last_weights_only(store, tmp_path, capsys):
    out = tmp_path / "run"
    run = train(store, "cnn", str(out), epochs=2, batch_size=8, **FAST)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert "trainer" not in ckpt and "rng" not in ckpt  # no optimizer, scheduler or RNG state once done
    weights = (out / "model" / "weights.pt").stat().st_size
    assert (out / "checkpoints" / "last.pt").stat().st_size < 1.2 * weights
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total < 2 * weights + 400_000  # two sets of weights, plus small files (curves.png, eval/, csv)
    last = load_run(str(out), weights="last")  # the last weights still load
    assert last.predict_proba(np.zeros((1, *run.mean.shape, run.feature_config.n_frames))).shape == (1, 3)
    assert train(resume=str(out), progress=True).status == "done"  # nothing left to resume, said so
    assert "already finished its 2 epochs" in capsys.readouterr().err


def test_an_interrupted_run_keeps_what_a_resume_needs(store, tmp_path):
    out = tmp_path / "run"
    train(store, "cnn", str(out), epochs=2, batch_size=8, on_epoch=lambda row, m: True, **FAST)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert {"trainer", "rng", "loop", "model"} <= set(ckpt)
    assert train(resume=str(out), progress=False).info["epochs_done"] == 2


@pytest.mark.parametrize("args", [[], ["--batch-size", "999"]])  # a clean exit, and a refused run
def test_no_lock_file_is_left_beside_a_run(store, tmp_path, capsys, args):
    out = tmp_path / "svm"
    main(["train", store, "--model", "cnn", "--epochs", "1", "--device", "cpu", "--out", str(out), "--quiet", *args])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")] == []


def test_the_svm_line_shows_what_an_svm_has(store, tmp_path, capsys):
    assert main(["train", store, "--model", "svm", "--out", str(tmp_path / "svm")]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    for what in ("C ", "gamma ", "support vectors", "inner-CV accuracy"):
        assert what in captured.out and what in captured.err, what  # the fit line and the last line
    for network_column in ("val loss", "lr ", "best epoch", "epoch 1/"):
        assert network_column not in text, network_column


# --- --tensorboard (issue 17, item 7) -------------------------------------------------

def test_tensorboard_logs_every_epoch(store, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                            reason="tensorboard is not installed (pip install 'spectro[tensorboard]')")
    out = tmp_path / "run"
    assert main(["train", store, "--model", "cnn", "--epochs", "2", "--batch-size", "8", "--device", "cpu",
                 "--out", str(out), "--quiet", "--tensorboard"]) == 0
    events = event_accumulator.EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "macro_f1/val", "lr"} <= tags
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for column, tag in [("train_loss", "loss/train"), ("val_macro_f1", "macro_f1/val"), ("lr", "lr")]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        np.testing.assert_allclose([e.value for e in logged], [float(r[column]) for r in rows], rtol=1e-6)


def test_tensorboard_without_the_package_is_one_line(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recorder_module, "SummaryWriter", None)
    out = tmp_path / "run"
    assert main(["train", store, "--model", "cnn", "--epochs", "1", "--device", "cpu", "--out", str(out),
                 "--quiet", "--tensorboard"]) == 2
    assert "pip install 'spectro[tensorboard]'" in one_error_line(capsys)
    assert not out.exists()  # refused before the run folder
