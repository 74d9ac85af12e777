"""Issue 31: runs that lose nothing of the user's and read only finite, consistent numbers."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf
from synth import REPO, TINY_CFG, class_folders, tiny_store, tone

from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store
from spectro.training.run import load_run
from spectro.training.train import train

FAST = dict(device="cpu", progress=False)
DEAD = {"pid": 2**22 + 12345, "host": os.uname().nodename}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("integrity"))


@pytest.fixture(scope="module")
def svm_run(store, tmp_path_factory):
    return train(store, "svm", str(tmp_path_factory.mktemp("svm") / "run"), **FAST).path


def _copy(run: str, tmp_path) -> str:
    out = str(tmp_path / "copy")
    shutil.copytree(run, out)
    return out


def test_a_stillborn_run_is_replaced_but_the_users_files_are_kept(store, tmp_path, capsys):
    """F1: train --out onto a run killed before its first checkpoint replaces only what spectro wrote."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "spectro-run-1", "status": "running", "process": DEAD}))
    (out / "norm.json").write_text('{"mean": [[0]], "std": [[1]]}')  # spectro's, from the dead run
    (out / ".tmp-x1y2.json").write_text("{")  # a half-written file the kill left
    (out / "NOTES.txt").write_text("x\n")
    (out / "mydata").mkdir()
    (out / "mydata" / "a.txt").write_text("mine")
    run = train(store, "cnn", str(out), epochs=1, batch_size=8, **FAST)
    assert run.status == "done"
    assert (out / "NOTES.txt").read_text() == "x\n" and (out / "mydata" / "a.txt").read_text() == "mine"
    assert not (out / ".tmp-x1y2.json").exists()
    assert json.loads((out / "norm.json").read_text())["mean"] != [[0]]  # rewritten by the new run
    err = capsys.readouterr().err
    assert "afresh" in err and "NOTES.txt" in err  # it says what it kept


@pytest.mark.parametrize("key, token", [("mean", "NaN"), ("std", "Infinity"), ("mean", "1e999")])
def test_a_non_finite_number_in_norm_json_is_refused(svm_run, tmp_path, key, token):
    """F2: NaN, Infinity and an overflowing 1e999 in a run's JSON are one line naming the file."""
    run = _copy(svm_run, tmp_path)
    path = os.path.join(run, "norm.json")
    norm = json.loads(open(path).read())
    norm[key][0][1] = "TOKEN"
    with open(path, "w") as f:
        f.write(json.dumps(norm).replace('"TOKEN"', token))
    with pytest.raises(SpectroError, match=f"norm.json.*{token}.*not a finite number"):
        load_run(run)


def test_read_json_refuses_nan_anywhere(tmp_path):
    from spectro.utils.files import read_json

    path = tmp_path / "x.json"
    path.write_text('{"a": [1, 2, {"b": -Infinity}]}')
    with pytest.raises(SpectroError, match=r"x\.json.*-Infinity.*not a finite number"):
        read_json(str(path))
    path.write_text('{"a": 1.5e3}')
    assert read_json(str(path)) == {"a": 1500.0}


def test_labels_json_in_another_order_than_the_model_is_refused(svm_run, tmp_path, capsys):
    """F6: a reordered labels.json would silently rename every prediction."""
    run = _copy(svm_run, tmp_path)
    labels = json.loads(open(os.path.join(run, "labels.json")).read())
    with open(os.path.join(run, "labels.json"), "w") as f:
        json.dump(labels[1:] + labels[:1], f)
    with pytest.raises(SpectroError, match="labels.json.*model.json"):
        load_run(run)
    assert main(["evaluate", run, "--no-write"]) == 2
    assert "labels.json" in capsys.readouterr().err


# -- F12 ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_to_train_exits_143_and_the_run_resumes(store, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spectro", "train", "--store", store, "--model", "cnn", "--out", str(out),
           "--epochs", "50", "--batch-size", "2", "--device", "cpu", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO},
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as a shell shows it (it was 130, Ctrl-C's)
    assert f"continue with: spectro train --resume {out}" in err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"


def test_an_svm_with_a_one_example_class_names_it_and_leaves_nothing_to_resume(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=10, sr=8000, classes=("low", "mid"))
    os.makedirs(os.path.join(src, "high"))
    sf.write(os.path.join(src, "high", "high_0.wav"), tone(2400, sr=8000, seconds=0.5), 8000)
    st = str(tmp_path / "store")
    preprocess(src, st, config=TINY_CFG, workers=0, progress=False)
    high = open_store(st)
    fold_of_high = int(high.folds[high.y == high.labels.index("high")][0])
    test_fold = next(f for f in high.fold_ids if f != fold_of_high)
    out = tmp_path / "run"
    argv = ["train", st, "--model", "svm", "--out", str(out), "--test-fold", str(test_fold), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'high' has 1 example" in err, err
    assert not out.exists()  # no "running" run left whose --resume would fail the same way
    assert main(argv) == 2  # and the same command is refused the same way, not as "already holds a run"
    assert "'high' has 1 example" in capsys.readouterr().err


def test_train_into_an_unwritable_folder_says_not_writable(store, tmp_path, monkeypatch, capsys):
    def refuse(path, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("spectro.training.train.exclusive", refuse)
    assert main(["train", store, "--model", "svm", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not writable" in err and "free some space" not in err, err


def test_train_onto_a_read_only_file_system_says_not_writable(store, read_only, capsys):
    assert main(["train", store, "--model", "svm", "--out", str(read_only / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "read-only file system" in err and "not writable" in err and "free some space" not in err, err
