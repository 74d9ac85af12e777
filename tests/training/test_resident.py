"""Device-resident training data (issue 29): the rows on the device once, batches drawn there.

On the CPU the resident path holds the rows in memory as one tensor; these tests check it against the
memory-map loader it replaces: the same batches, the same metrics and weights for one seed (exactly: both feed
the same float16 values in the same order), and exact resume.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from synth import tiny_store

import spectro.training.loop as loop_module
from spectro.dataset.feed import RESIDENT_SHARE, DeviceRows, StoreImages, epoch_batches, feed, plan_residency
from spectro.errors import SpectroError
from spectro.signals.store import open_store
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = dict(progress=False, batch_size=8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("resident"))


def _rows(store):
    st = open_store(store)
    rows = np.random.default_rng(0).permutation(len(st))[:25]
    return StoreImages(st.features, st.y, rows)


def test_device_rows_give_the_loaders_batches_bit_for_bit(store):
    data = _rows(store)
    resident = DeviceRows(data, torch.device("cpu"), chunk_rows=7)  # several chunks
    batches = epoch_batches(len(data), 8, epoch=3, seed=1)
    fed = list(feed(data, batches, device=torch.device("cpu")))
    kept = list(feed(data, batches, device=torch.device("cpu"), resident=resident))
    assert len(fed) == len(kept) == len(batches)
    for (x, y), (xr, yr) in zip(fed, kept):
        assert xr.dtype == x.dtype == torch.float16
        assert torch.equal(x, xr) and torch.equal(y, yr)
    assert DeviceRows.nbytes(data) == len(data) * int(np.prod(data.features.shape[1:])) * 2


def test_plan_residency_says_where_and_why():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert plan_residency(100, cpu, 1000).resident
    assert "resident on cpu" in plan_residency(100, cpu, 1000).reason
    over = plan_residency(int(RESIDENT_SHARE * 1000) + 1, cuda, 1000)
    assert not over.resident and "pinned memory" in over.reason and "exceed half" in over.reason
    assert not plan_residency(1, cpu, 10**9, wanted=False).resident
    assert not plan_residency(1, cpu, None).resident  # unknown free memory: the safe path
    with pytest.raises(SpectroError, match="do not fit"):
        plan_residency(10**6, cuda, 1000, wanted=True)


def _metrics(run_dir):
    import csv
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in csv.DictReader(f)]


def _weights(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoints", "last.pt"), weights_only=True)["model"]


def test_resident_and_memory_map_runs_are_identical(store, tmp_path, monkeypatch):
    kw = dict(epochs=2, seed=3, specaugment=True, mixup=0.2, time_shift=0.1, **FAST)
    a = train(store, "resnet20", str(tmp_path / "resident"), **kw)
    monkeypatch.setattr(loop_module, "free_memory", lambda device: 1)  # a store too large for the device
    b = train(store, "resnet20", str(tmp_path / "memmap"), **kw)
    assert _metrics(a.path) == _metrics(b.path)
    wa, wb = _weights(a.path), _weights(b.path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    preds = [open(os.path.join(r.path, "eval", "test_predictions.csv")).read() for r in (a, b)]
    assert preds[0] == preds[1] and preds[0].count("\n") > 1


def test_the_first_line_names_the_data_path(store, tmp_path, monkeypatch, capsys):
    from spectro.cli.main import main
    assert main(["train", store, "--model", "cnn", "--epochs", "1", "--batch-size", "8",
                 "--out", str(tmp_path / "r1")]) == 0
    assert "data resident on cpu (" in capsys.readouterr().err
    monkeypatch.setattr(loop_module, "free_memory", lambda device: 1000)
    assert main(["train", store, "--model", "cnn", "--epochs", "1", "--batch-size", "8",
                 "--out", str(tmp_path / "r2")]) == 0
    assert "data memory-map loader: " in capsys.readouterr().err


def test_out_of_memory_is_one_line_and_keeps_the_last_good_checkpoint(store, tmp_path, monkeypatch):
    real = loop_module.Trainer.train_epoch

    def epoch(self, state, stop):
        if state.epoch == 1:  # the second epoch asks for more than the device has
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, state, stop)

    monkeypatch.setattr(loop_module.Trainer, "train_epoch", epoch)
    run = str(tmp_path / "oom")
    with pytest.raises(SpectroError) as err:
        train(store, "cnn", run, epochs=3, **FAST)
    line = str(err.value)
    assert "\n" not in line
    assert "out of memory on cpu at batch size 8: train again with --batch-size 4" in line
    assert "last good checkpoint (epoch 1) is kept" in line
    assert os.path.isfile(os.path.join(run, "checkpoints", "last.pt"))
    info = json.load(open(os.path.join(run, "run.json")))
    assert info["status"] == "failed" and "out of memory" in info["error"]
