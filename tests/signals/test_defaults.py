"""Feature defaults read from the data: rate, STFT sizes and duration follow the recordings; explicit wins."""

import json
import os

import numpy as np
import soundfile as sf

from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.signals.defaults import infer_config
from spectro.signals.sources import discover


def _folders(root, *, sr, seconds, n=4):
    for c in ("a", "b"):
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for k in range(n):
            t = np.arange(int(sr * seconds[k % len(seconds)])) / sr
            sf.write(os.path.join(root, c, f"{c}{k}.wav"), 0.3 * np.sin(2 * np.pi * (300 + 200 * (c == "b")) * t), sr)
    return str(root)


def test_rate_and_stft_sizes_follow_the_data_and_never_upsample(tmp_path):
    src = _folders(tmp_path / "s8k", sr=8000, seconds=[1.5, 2.0])
    cfg, why = infer_config(discover(src).items, FeatureConfig(), FeatureConfig.INFERABLE)
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length) == (8000, 256, 80)  # 32 ms, 10 ms at 8 kHz
    assert 1.9 <= cfg.duration <= 2.0 and set(why) == set(FeatureConfig.INFERABLE)
    hi = _folders(tmp_path / "s44k", sr=44100, seconds=[0.5])
    cfg, why = infer_config(discover(hi).items, FeatureConfig(), FeatureConfig.INFERABLE)
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.duration) == (16000, 512, 160, 0.5)
    assert "capped" in why["sample_rate"]


def test_duration_is_capped_and_windows_need_none(tmp_path):
    src = _folders(tmp_path / "long", sr=8000, seconds=[12.0], n=2)
    cfg, why = infer_config(discover(src).items, FeatureConfig(), ["duration"])
    assert cfg.duration == 10.0 and "capped" in why["duration"]
    cfg, why = infer_config(discover(src).items, FeatureConfig(window=1.0), ["duration"])
    assert "duration" not in why


def test_cli_explicit_values_win_and_choices_are_recorded(tmp_path, capsys):
    src = _folders(tmp_path / "src", sr=8000, seconds=[1.0])
    out = tmp_path / "store"
    assert main(["preprocess", src, "--out", str(out), "--sample-rate", "16000", "--duration", "0.5",
                 "--workers", "0", "--quiet"]) == 0
    meta = json.loads((out / "config.json").read_text())
    fc = meta["feature_config"]
    assert (fc["sample_rate"], fc["duration"]) == (16000, 0.5)  # given: kept, even though the data is 8 kHz
    assert (fc["n_fft"], fc["hop_length"]) == (512, 160)  # not given: read from the chosen rate
    assert set(meta["inferred"]) == {"n_fft", "hop_length"}
    assert "from the data" in capsys.readouterr().err
