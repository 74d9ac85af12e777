"""The layers kept in float32 under CPU autocast (spectro.utils.kernels), and issue 31's R1 run."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import torch

import spectro
from spectro.models.zoo import build
from spectro.utils.kernels import keep_float32, narrow_strided_layers


def _conv_on_one_column(kept: bool) -> tuple[torch.nn.Conv2d, torch.Tensor]:
    conv = torch.nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False)
    if kept:
        keep_float32(conv)
    return conv, torch.randn(8, 64, 4, 1)  # (batch, channels, freq, one time column)


@pytest.mark.parametrize("frames, expected", [
    (11, ["layer3.0.conv1", "layer4.0.conv1"]),  # 11 -> 6 -> 3 -> 2 -> 1 columns: layer3's output is 1 wide
    (21, ["layer4.0.conv1"]),  # 21 -> 11 -> 6 -> 3 -> 2, then 1 column out of layer4's first conv
    (71, []),  # the bundled digits: layer4 is 3 columns wide
])
def test_narrow_strided_layers_of_resnet18_follow_the_width(frames, expected):
    model = build("resnet18", 4)
    before = copy.deepcopy(model.state_dict())
    model.train()
    assert narrow_strided_layers(model, torch.zeros(32, 1, 64, frames)) == expected
    assert model.training  # mode and BatchNorm statistics left as they were
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stride_one_and_one_by_one_kernels_are_not_named():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 1, stride=2),
                                torch.nn.Conv2d(4, 4, 3, stride=2, padding=1))
    assert narrow_strided_layers(model, torch.zeros(2, 1, 8, 2)) == ["2"]


def test_keep_float32_computes_in_float32_inside_autocast():
    conv, x = _conv_on_one_column(kept=True)
    keys = list(conv.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.float32
    y.backward(torch.ones_like(y))
    assert conv.weight.grad.dtype == torch.float32
    assert list(conv.state_dict()) == keys  # same weights under the same names: checkpoints and export unchanged
    twin = copy.deepcopy(conv)  # the copy runs in float32 too, on its own weights
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert twin(x).dtype == torch.float32
    assert twin.weight is not conv.weight


def test_a_kept_layer_gets_the_float32_weight_gradient_every_time():
    # Known answer: the float32 gradient. Unkept, oneDNN's bf16 kernel got this shape wrong in 1 to 10 of
    # 12 calls on the AMD EPYC (AVX-512 BF16) where this was measured.
    for trial in range(12):
        torch.manual_seed(trial)
        conv, x = _conv_on_one_column(kept=True)
        ref = copy.deepcopy(conv)
        g = torch.randn(8, 128, 2, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x).backward(g)
        torch.nn.Conv2d.forward(ref, x).backward(g)
        torch.testing.assert_close(conv.weight.grad, ref.weight.grad)


@pytest.mark.slow
def test_resnet18_under_the_default_bf16_of_an_amx_cpu_trains_on_short_windows(tmp_path, monkeypatch, one_thread):
    """Issue 31 R1: 0.1 s windows (11 frames) diverged under the bf16 that an AMX CPU gets by default."""
    monkeypatch.setattr("spectro.utils.device.cpu_has_fast_bf16", lambda: True)  # this CPU, as if it had AMX
    sr = 12000
    rng = np.random.default_rng(0)
    t = np.arange(2 * sr) / sr
    for c, f0 in enumerate((300, 800, 1500, 3000)):
        os.makedirs(tmp_path / "recs" / f"c{c}")
        for k in range(3):
            y = np.sin(2 * np.pi * f0 * (1 + 0.02 * k) * t) * 0.3 + 0.05 * rng.standard_normal(t.size)
            np.save(tmp_path / "recs" / f"c{c}" / f"r{k}.npy", y.astype(np.float32))
    store = str(tmp_path / "store")
    spectro.preprocess(str(tmp_path / "recs"), store, config={"window": 0.1, "sample_rate": sr, "n_fft": 512, "hop_length": 120}, workers=0,
                       progress=False)
    assert spectro.open_store(store).image_shape[-1] == 11
    run = str(tmp_path / "run")
    spectro.train(store, "resnet18", out=run, epochs=3, batch_size=16, seed=0, progress=False)
    info = json.load(open(os.path.join(run, "run.json")))
    assert info["status"] == "done"
    assert info["precision"].startswith("bf16")  # the default chose bf16, as it does with AMX
    assert "layer4.0.conv1 in fp32" in info["precision"]
