"""Decoding, resampling, validation and cutting of signals."""

import numpy as np
import pytest
import soundfile as sf
from synth import tone

from spectro.config import FeatureConfig
from spectro.errors import BadInput, SpectroError
from spectro.signals.audio import check_signal, fix_length, load_audio, segments


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "FLOAT"),
                                         ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_formats_decode_to_mono_float32_at_target_rate(tmp_path, fmt, subtype):
    y = tone(440, sr=22050, seconds=0.5)
    stereo = np.stack([y, 0.5 * y], axis=1)
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}")
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, stereo, 22050, format=fmt, subtype=subtype)
    out = load_audio(str(path), sample_rate=16000)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.shape[0] - 8000) <= (1200 if fmt == "MP3" else 2)  # MP3 frames add encoder padding
    # Downmix is the channel mean: amplitude 0.75 of the 0.5-amplitude tone.
    assert np.max(np.abs(out[1000:-1000])) == pytest.approx(0.375, rel=0.05)


def test_resampled_tone_keeps_its_frequency(tmp_path):
    sf.write(tmp_path / "t.wav", tone(1000, sr=44100), 44100)
    y = load_audio(str(tmp_path / "t.wav"), sample_rate=8000)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 8000 / y.shape[0] == pytest.approx(1000, abs=2)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is not audio at all\n" * 10, "cannot decode"),
])
def test_undecodable_files_raise_badinput(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=reason):
        load_audio(str(path), sample_rate=16000)


def test_truncated_wav_is_bad_or_short(tmp_path):
    path = tmp_path / "t.wav"
    sf.write(path, tone(440), 16000)
    path.write_bytes(path.read_bytes()[:30])  # header cut in the middle
    with pytest.raises(BadInput):
        load_audio(str(path), sample_rate=16000)


@pytest.mark.parametrize("y,reason", [
    (np.array([0.1, np.nan] * 400, dtype=np.float32), "NaN or Inf"),
    (np.array([0.1, np.inf] * 400, dtype=np.float32), "NaN or Inf"),
    (np.ones(100, dtype=np.float32), "too short"),
    (np.zeros(4000, dtype=np.float32), "silent"),
])
def test_check_signal_rejects(y, reason):
    with pytest.raises(BadInput, match=reason):
        check_signal(y, min_samples=512)


def test_fix_length_crops_the_loudest_stretch_and_pads_at_the_end():
    y = np.zeros(1000, dtype=np.float32)
    y[700:750] = 1.0
    kept = fix_length(y, length=100, crop="loudest")
    assert kept.shape == (100,) and kept.sum() == 50
    assert np.array_equal(fix_length(y, length=100, crop="start"), y[:100])
    assert np.array_equal(fix_length(y, length=100, crop="center"), y[450:550])
    short = np.ones(10, dtype=np.float32)
    assert np.array_equal(fix_length(short, length=14, pad="end"), np.r_[np.ones(10), np.zeros(4)])
    assert np.array_equal(fix_length(short, length=14, pad="center"), np.r_[np.zeros(2), np.ones(10), np.zeros(2)])


def test_segments_fixed_duration_records_bounds():
    cfg = FeatureConfig(sample_rate=1000, duration=1.0, crop="center", n_fft=64, hop_length=16)
    segs, bounds = segments(np.ones(3000, dtype=np.float32), cfg)
    assert segs.shape == (1, 1000)
    np.testing.assert_allclose(bounds, [[1.0, 2.0]])


@pytest.mark.parametrize("n,hop,expected", [
    (3000, None, [(0, 1), (1, 2), (2, 3)]),
    (3400, None, [(0, 1), (1, 2), (2, 3)]),        # 0.4 s tail < half a window: dropped
    (3600, None, [(0, 1), (1, 2), (2, 3), (3, 3.6)]),  # 0.6 s tail: kept, zero-padded
    (500, None, [(0, 0.5)]),                        # shorter than a window: one padded window
    (2000, 0.5, [(0, 1), (0.5, 1.5), (1, 2)]),
])
def test_windows(n, hop, expected):
    cfg = FeatureConfig(sample_rate=1000, window=1.0, window_hop=hop, n_fft=64, hop_length=16)
    y = np.arange(1, n + 1, dtype=np.float32)
    segs, bounds = segments(y, cfg)
    np.testing.assert_allclose(bounds, expected)
    assert segs.shape == (len(expected), 1000)
    assert segs[0, 0] == 1.0
    last_len = int(round((expected[-1][1] - expected[-1][0]) * 1000))
    assert np.all(segs[-1, last_len:] == 0)


@pytest.mark.parametrize("kw", [dict(sample_rate=0), dict(n_fft=8), dict(crop="middle"), dict(freq_scale="bark"),
                                dict(fmin=9000.0), dict(power=3.0), dict(duration=0.01),
                                dict(window_hop=0.5), dict(win_length=1024)])
def test_bad_feature_settings_raise_spectroerror(kw):
    with pytest.raises(SpectroError):
        FeatureConfig(**kw)


def test_config_round_trip_and_fingerprint():
    cfg = FeatureConfig(sample_rate=8000, n_mels=40, window=0.5)
    again = FeatureConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.fingerprint() == cfg.fingerprint()
    assert cfg.replace(n_mels=41).fingerprint() != cfg.fingerprint()
    assert cfg.image_shape == (1, 40, 1 + 4000 // 160)
