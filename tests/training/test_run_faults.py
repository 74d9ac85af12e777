"""Runs that can always be continued: nothing dead left behind, no broken checkpoint, no eternal "running"."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from synth import REPO, class_folders, tiny_store

from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.training.run import live_status, load_run, run_status
from spectro.training.train import train

FAST = dict(device="cpu", progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("faults"))


def test_default_batch_size_larger_than_the_training_set_is_lowered_with_a_note(store, tmp_path, capsys):
    run = train(store, "cnn", str(tmp_path / "run"), epochs=1, **FAST)  # default batch 32 > 25 examples
    assert run.status == "done" and run.train_config.batch_size == run.info["examples"]["train"]
    assert "batch size" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--option", "nonsense=3"], ["--pretrained", "missing.pt"],
                                  ["--batch-size", "64"]])
def test_refused_runs_leave_no_folder(store, tmp_path, capsys, args):
    out = tmp_path / "run"
    assert main(["train", "--store", store, "--model", "cnn", "--out", str(out), "--quiet", "--epochs", "1",
                 "--device", "cpu", *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
    # The next try into the same folder is not blocked.
    assert main(["train", "--store", store, "--model", "cnn", "--out", str(out), "--quiet", "--epochs", "1",
                 "--device", "cpu", "--batch-size", "8"]) == 0


def test_a_run_that_died_before_its_first_checkpoint_is_overwritten(store, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"format": "spectro-run-1", "status": "running",
                                              "process": {"pid": 2**22 + 12345, "host": os.uname().nodename}}))
    assert run_status(str(out)) == "interrupted"  # its process is gone
    run = train(store, "cnn", str(out), epochs=1, batch_size=8, **FAST)
    assert run.status == "done" and "afresh" in capsys.readouterr().err


def test_killed_run_reads_interrupted_not_running():
    alive = {"status": "running", "process": {"pid": os.getpid(), "host": os.uname().nodename}}
    dead = {"status": "running", "process": {"pid": 2**22 + 12345, "host": os.uname().nodename}}
    elsewhere = {"status": "running", "process": {"pid": 1, "host": "another-machine"}}
    assert (live_status(alive), live_status(dead), live_status(elsewhere)) == ("running", "interrupted", "running")


def test_divergence_never_writes_non_finite_weights(store, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SpectroError, match="diverged"):
        train(store, "cnn", str(out), epochs=4, batch_size=8, lr=1e4, optimizer="sgd", **FAST)
    ckpt = out / "checkpoints" / "last.pt"
    if ckpt.exists():  # an epoch may have finished before the weights broke: that checkpoint is finite
        state = torch.load(ckpt, weights_only=True)["model"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"
    if (out / "model").exists():  # the best model saved before divergence is usable
        module = load_run(str(out)).classifier.module_
        assert all(torch.isfinite(p).all() for p in module.parameters())


def test_a_second_train_into_a_locked_run_folder_is_refused(store, tmp_path):
    from spectro.utils.files import exclusive

    out = tmp_path / "run"
    with exclusive(str(out), what="run"):  # another process holds it (flock is per open file)
        with pytest.raises(SpectroError, match="another process is writing run"):
            train(store, "cnn", str(out), epochs=1, batch_size=8, **FAST)
    assert not (out / "run.json").exists()


def test_train_refuses_a_store_with_non_finite_images(store, tmp_path):
    import shutil

    import numpy as np

    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    meta = json.loads((bad / "config.json").read_text())
    meta.pop("finite", None)  # as a store written before the flag existed: scanned
    (bad / "config.json").write_text(json.dumps(meta))
    feats = np.load(bad / "features.npy", mmap_mode="r+")
    feats[3, 0, 0, 0] = np.nan
    feats.flush()
    del feats
    with pytest.raises(SpectroError, match="(?i)non-finite|nan"):
        train(str(bad), "cnn", str(tmp_path / "run"), epochs=1, batch_size=8, **FAST)
    assert not (tmp_path / "run").exists()


def test_a_killed_run_is_shown_as_interrupted_by_every_command(store, tmp_path, capsys):
    """Issue 22 D3: SIGKILL a training process; predict and evaluate say interrupted, never running."""
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "spectro", "train", "--store", store, "--model", "cnn",
                             "--epochs", "200", "--batch-size", "8", "--device", "cpu", "--out", str(out), "--quiet"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # as the killed process left it
    assert run_status(str(out)) == "interrupted"
    wav = os.path.join(class_folders(tmp_path / "audio", per_class=1, sr=8000), "low", "low_0.wav")
    capsys.readouterr()
    if (out / "model").exists():  # it lived long enough to save a model: the run itself says interrupted
        assert load_run(str(out)).status == "interrupted"
    else:
        for argv in (["predict", str(out), wav], ["evaluate", str(out)]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert "status: interrupted" in err and "running" not in err, err
