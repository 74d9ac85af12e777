"""The CUDA path (issue 29): written before any GPU was lent, run by benchmarks/gpu_check.sh on one.

Every test is marked ``gpu`` and skipped without CUDA. What the CPU can check about the same code (the
precision policy, the GradScaler path, the OOM line, the resident path against the loader) is tested in
tests/training without a GPU.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from synth import REPO, TINY_CFG, class_folders, tiny_store

import spectro.training.loop as loop_module
from spectro.errors import SpectroError
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store
from spectro.training.train import train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")]
CUDA = dict(device="cuda", progress=False, batch_size=8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("gpu"))


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return [{k: float(v) for k, v in r.items() if k not in ("seconds", "samples_per_s") and v}
                for r in csv.DictReader(f)]


def _weights(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoints", "last.pt"), weights_only=True, map_location="cpu")["model"]


def test_bf16_autocast_trains_with_channels_last(store, tmp_path):
    run = train(store, "resnet18", str(tmp_path / "bf16"), epochs=2, **CUDA)
    info = json.load(open(os.path.join(run.path, "run.json")))
    assert info["status"] == "done"
    assert info["precision"].startswith("bf16" if torch.cuda.is_bf16_supported() else "fp16 + GradScaler")
    assert "channels_last" in info["precision"]
    assert all(np.isfinite(r["train_loss"]) for r in _rows(run.path))


def test_fp16_with_grad_scaler_trains_and_resumes(store, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # an older GPU: fp16 + scaler
    out = str(tmp_path / "fp16")
    train(store, "resnet20", out, epochs=3, seed=1, on_epoch=lambda row, m: row["epoch"] == 1, **CUDA)
    assert "GradScaler" in json.load(open(os.path.join(out, "run.json")))["precision"]
    ckpt = torch.load(os.path.join(out, "checkpoints", "last.pt"), weights_only=True, map_location="cpu")
    assert ckpt["trainer"]["scaler"]["scale"] > 0
    run = train(resume=out, progress=False)
    assert run.status == "done" and len(_rows(out)) == 3
    assert all(np.isfinite(r["train_loss"]) for r in _rows(out))


def test_resident_on_cuda_matches_the_cpu_result(store, tmp_path):
    kw = dict(epochs=2, seed=2, amp=False, batch_size=8, progress=False)
    gpu = train(store, "cnn", str(tmp_path / "gpu"), device="cuda", **kw)
    cpu = train(store, "cnn", str(tmp_path / "cpu"), device="cpu", **kw)
    # float32 on both, different kernels: the same run to a few digits (cuDNN and oneDNN sum in other orders)
    for a, b in zip(_rows(gpu.path), _rows(cpu.path)):
        for k in ("train_loss", "val_loss"):
            if k in a:
                assert a[k] == pytest.approx(b[k], rel=2e-3, abs=1e-4), k


def test_resident_and_memory_map_agree_on_cuda(store, tmp_path, monkeypatch):
    kw = dict(epochs=2, seed=4, amp=False, **CUDA)
    torch.backends.cudnn.deterministic = True
    try:
        a = train(store, "cnn", str(tmp_path / "resident"), **kw)
        monkeypatch.setattr(loop_module, "free_memory", lambda device: 1)
        b = train(store, "cnn", str(tmp_path / "memmap"), **kw)
    finally:
        torch.backends.cudnn.deterministic = False
    for x, y in zip(_rows(a.path), _rows(b.path)):
        assert x == pytest.approx(y, rel=1e-5, abs=1e-6)


def test_resume_on_cuda_is_exact(store, tmp_path):
    torch.backends.cudnn.deterministic = True  # cuDNN's autotuned kernels may sum in another order per run
    try:
        kw = dict(seed=5, amp=False, epochs=3, specaugment=True, mixup=0.2, **CUDA)
        ref = train(store, "cnn", str(tmp_path / "ref"), **kw)
        part = str(tmp_path / "part")
        assert train(store, "cnn", part, on_epoch=lambda row, m: row["epoch"] == 1, **kw).status == "interrupted"
        assert train(resume=part, progress=False).status == "done"
    finally:
        torch.backends.cudnn.deterministic = False
    assert _rows(ref.path) == _rows(part)
    wa, wb = _weights(ref.path), _weights(part)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_preprocess_on_cuda_matches_the_cpu_images(tmp_path):
    src = class_folders(str(tmp_path / "src"), per_class=4, sr=8000)
    preprocess(src, str(tmp_path / "cpu"), config=TINY_CFG, workers=0, progress=False, device="cpu")
    preprocess(src, str(tmp_path / "cuda"), config=TINY_CFG, workers=0, progress=False, device="cuda")
    a = np.asarray(open_store(str(tmp_path / "cpu")).features, np.float32)
    b = np.asarray(open_store(str(tmp_path / "cuda")).features, np.float32)
    np.testing.assert_allclose(a, b, atol=1e-2, rtol=1e-3)  # dB images in float16: librosa's tolerance


def test_torchrun_one_process_with_nccl(store, tmp_path):
    out = str(tmp_path / "ddp")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", "-m", "spectro",
                           "train", store, "--model", "cnn", "--epochs", "1", "--batch-size", "8", "--device",
                           "cuda", "--out", out, "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.load(open(os.path.join(out, "run.json")))["status"] == "done"


def test_out_of_memory_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    # Images of 1 x 128 x 401 and ResNet-152 at a batch of 2048: far beyond any single GPU's memory.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2100, 64000)).astype(np.float32) * 0.1
    np.savez(tmp_path / "big.npz", X=x, y=np.arange(2100) % 3)
    store = str(tmp_path / "store")
    preprocess(str(tmp_path / "big.npz"), store, config=dict(sample_rate=16000, duration=4.0, n_mels=128),
               workers=0, progress=False, device="cuda")
    run = str(tmp_path / "oom")
    with pytest.raises(SpectroError) as err:
        train(store, "resnet152", run, epochs=1, batch_size=2048, val_fraction=0, device="cuda", progress=False)
    assert "out of memory on cuda" in str(err.value) and "--batch-size 1024" in str(err.value)
    assert "\n" not in str(err.value)
    assert json.load(open(os.path.join(run, "run.json")))["status"] == "failed"
