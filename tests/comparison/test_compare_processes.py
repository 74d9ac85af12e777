"""compare --jobs N as real processes: a signal to the compare process alone stops its jobs at their next
batch, checkpointed (as --jobs 1 does), and a compare killed by SIGKILL takes its job processes with it."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from synth import REPO, process_alive, tiny_store

pytestmark = pytest.mark.slow  # real spawned processes that import torch: about a minute each

EPOCHS = 400  # far more than the test waits for: a job that is not stopped is still training at the deadline


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("procs"))


def _start(store, out, log):
    """compare in a process of its own; its output goes to ``log`` (a pipe would stay open in an orphan)."""
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "spectro", "compare", "--store", store, "--models", "cnn",
                                 "--cv", "--jobs", "2", "--epochs", str(EPOCHS), "--batch-size", "4", "--out",
                                 str(out)], env=env, stdout=f, stderr=subprocess.STDOUT, text=True)


def _training_runs(out, proc, n=2, timeout=120) -> list[str]:
    """Wait until ``n`` runs have finished an epoch (their loops are running); their directories."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(out, "cnn-*", "fold*", "metrics.csv")))
        if len(runs) >= n:
            return runs
        assert proc.poll() is None, "compare ended before training"
        time.sleep(0.2)
    raise AssertionError("the jobs did not start training")


def _info(run_dir) -> dict:
    with open(os.path.join(run_dir, "run.json")) as f:
        return json.load(f)


def _gone(pids, timeout=30) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if process_alive(p)]
        time.sleep(0.1)
    for p in alive:  # never leave a test's orphans behind
        os.kill(p, signal.SIGKILL)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_compare_alone_stops_its_jobs_at_the_next_batch(store, tmp_path, sig):
    out, log = tmp_path / "cmp", tmp_path / "log"
    proc = _start(store, out, log)
    runs = _training_runs(str(out), proc)
    workers = [_info(r)["process"]["pid"] for r in runs]
    assert all(w != proc.pid for w in workers)  # trained in the spawned processes
    proc.send_signal(sig)  # to the parent alone, not to its process group
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("compare did not stop its jobs (they trained on)") from None
    finally:
        left = _gone(workers)
    err = log.read_text()
    assert proc.returncode == 128 + sig, err  # 143 for SIGTERM, 130 for SIGINT, as a shell shows them
    assert "stopping every training job" in err and "run the same compare again" in err
    assert "Traceback" not in err
    for r in runs:
        info = _info(r)
        assert info["status"] == "interrupted" and info["epochs_done"] < EPOCHS, info
        assert os.path.isfile(os.path.join(r, "checkpoints", "last.pt"))
    # Jobs not yet started were not started.
    assert len(glob.glob(os.path.join(out, "cnn-*", "fold*", "run.json"))) == len(runs)
    assert left == [], "a job process outlived compare"


def test_job_processes_die_with_a_compare_killed_by_sigkill(store, tmp_path):
    out = tmp_path / "cmp"
    proc = _start(store, out, tmp_path / "log")
    runs = _training_runs(str(out), proc)
    workers = [_info(r)["process"]["pid"] for r in runs]
    proc.kill()  # SIGKILL: no clean-up runs in compare
    proc.wait(timeout=30)
    assert _gone(workers) == [], "a job process outlived its killed compare"


def test_a_dead_job_process_fails_its_job_alone_and_the_others_go_on(store, tmp_path):
    """compare --jobs 2 over 5 folds of the cnn, then the svm's: the first cnn job's process is killed (as the
    OOM killer would); that fold alone fails, every other run trains, and the svm, which had not started, is ok."""
    out, log = tmp_path / "cmp", tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "spectro", "compare", "--store", store, "--models",
                                 "cnn,svm", "--cv", "--jobs", "2", "--epochs", "60", "--batch-size", "4", "--out",
                                 str(out), "--quiet"], env=env, stdout=f, stderr=subprocess.STDOUT, text=True)
    try:
        victim = _training_runs(str(out), proc, n=1, timeout=600)[0]
        os.kill(_info(victim)["process"]["pid"], signal.SIGKILL)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    printed = log.read_text()
    assert proc.returncode == 1, printed  # a model failed
    assert "Traceback" not in printed and "BrokenProcessPool" not in printed
    t = pd.read_csv(out / "results.csv").set_index("model")
    assert t.loc["svm", "status"] == "ok", t.loc["svm", "error"]
    assert t.loc["cnn", "status"] == "failed" and "process died" in t.loc["cnn", "error"]
    runs = sorted(glob.glob(os.path.join(out, "cnn-*", "fold*")))
    assert len(runs) == 5
    assert [r for r in runs if _info(r)["status"] != "done"] == [victim]
