"""Issue 31 F9: only regular files are read; a FIFO (or another special file) is skipped and named."""

import os
import subprocess
import sys

import pytest
from synth import REPO, class_folders

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def _spectro(*args, timeout=60):
    """The CLI in a child process: a hang is a timeout here, not a hung test session."""
    return subprocess.run([sys.executable, "-m", "spectro", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}, timeout=timeout)


@pytest.mark.parametrize("name", ["fifo.wav", "fifo.npy"])
def test_a_fifo_in_the_source_is_skipped_not_waited_on(tmp_path, name):
    src = class_folders(tmp_path / "src", per_class=3, sr=8000, classes=("low", "mid"))
    os.mkfifo(os.path.join(src, "mid", name))  # nobody ever writes to it: opening it would wait for ever
    res = _spectro("preprocess", src, "--out", str(tmp_path / "store"), "--quiet", "--workers", "0",
                   "--sample-rate", "8000", "--duration", "0.5", "--n-fft", "256", "--hop-length", "128")
    assert res.returncode == 0, res.stderr
    errors = (tmp_path / "store" / "errors.csv").read_text()
    assert f"mid/{name}" in errors and "not a regular file (a FIFO)" in errors


def test_predict_skips_a_fifo_with_one_line(tmp_path):
    from synth import tiny_store

    from spectro.training.train import train

    run = train(tiny_store(tmp_path), "svm", str(tmp_path / "run"), device="cpu", progress=False).path
    fifo = tmp_path / "in" / "x.wav"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    res = _spectro("predict", run, str(fifo))
    assert res.returncode == 1
    assert "x.wav: not a regular file (a FIFO)" in res.stderr
