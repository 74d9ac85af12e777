"""STFT images: known answers and agreement with librosa on the same signal."""

import librosa
import numpy as np
import pytest
import torch
from synth import chirp, tone

from spectro.config import FeatureConfig
from spectro.signals.features import SpectrogramImage, compute_images, filterbank, frequencies, pcen, power_to_db

SR = 16000
# Tolerance against librosa, in dB: both compute in float32; differences come
# from FFT rounding, largest in the quietest cells. Measured here: <= 3.3e-4 dB.
DB_TOL = 1e-2
# Tolerance of PCEN against librosa.pcen on a float64 mel spectrogram, absolute (PCEN levels span about
# 1e-3..7 here): ours is float32 throughout. Measured here: <= 2.6e-5. Checked by breaking it: a smoother
# started from the first frame (scipy's usual zi * x[0]) is off by 2.4-6.1, one started from 0 by 3e-3 on
# the onset, b = 1 / t_frames instead of librosa's by 0.05-0.08.
PCEN_TOL = 1e-4


def image(y, **kw):
    cfg = FeatureConfig(**kw)
    return compute_images(y[None], SpectrogramImage(cfg), dtype=np.float32)[0, 0], cfg


@pytest.fixture(scope="module")
def signal():
    return tone(440, sr=SR, noise=0.1) + chirp(200, 5000, sr=SR, amp=0.2)


@pytest.mark.parametrize("window_fn", ["hann", "hamming", "blackman"])
@pytest.mark.parametrize("win_length", [None, 400])
def test_power_spectrogram_matches_librosa_stft(signal, window_fn, win_length):
    ours, cfg = image(signal, freq_scale="linear", db=False, window_fn=window_fn, win_length=win_length)
    ref = np.abs(librosa.stft(signal, n_fft=512, hop_length=160, win_length=win_length, window=window_fn)) ** 2
    assert ours.shape == ref.shape == cfg.image_shape[1:]
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * ref.max())


def test_magnitude_db_matches_librosa_amplitude_to_db(signal):
    ours, _ = image(signal, freq_scale="linear", power=1.0, top_db=60.0)
    ref = librosa.amplitude_to_db(np.abs(librosa.stft(signal, n_fft=512, hop_length=160)), ref=1.0, top_db=60.0)
    np.testing.assert_allclose(ours, ref, atol=DB_TOL)


@pytest.mark.parametrize("fmin,fmax,n_mels", [(None, None, 64), (50.0, 7000.0, 40)])
def test_mel_db_matches_librosa_melspectrogram(signal, fmin, fmax, n_mels):
    ours, cfg = image(signal, n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel = librosa.feature.melspectrogram(
        y=signal, sr=SR, n_fft=512, hop_length=160, n_mels=n_mels, fmin=fmin or 0.0, fmax=fmax
    )
    ref = librosa.power_to_db(mel, ref=1.0, top_db=80.0)
    assert ours.shape == (n_mels, cfg.n_frames)
    np.testing.assert_allclose(ours, ref, atol=DB_TOL)


def test_mel_filterbank_equals_librosa():
    cfg = FeatureConfig(n_mels=48, fmin=30.0, fmax=7600.0)
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=48, fmin=30.0, fmax=7600.0)
    np.testing.assert_allclose(filterbank(cfg).numpy().T, ref, rtol=1e-4, atol=1e-7)


def test_tone_peaks_in_its_bin():
    # Energy at exactly bin 40 (40 * SR / n_fft Hz) peaks in row 40 of the linear image.
    ours, _ = image(tone(40 * SR / 512, sr=SR), freq_scale="linear")
    assert np.all(np.argmax(ours[:, 2:-2], axis=0) == 40)


@pytest.mark.parametrize("scale", ["mel", "log"])
def test_tone_peaks_in_the_band_centred_on_it(scale):
    cfg = FeatureConfig(freq_scale=scale)
    centres = frequencies(cfg)
    f = 1000.0
    ours, _ = image(tone(f, sr=SR), freq_scale=scale)
    peak = int(np.median(np.argmax(ours, axis=0)))
    assert abs(peak - int(np.argmin(np.abs(centres - f)))) <= 1


def test_log_filterbank_has_no_empty_band():
    fb = filterbank(FeatureConfig(freq_scale="log", n_mels=96))
    assert fb.shape == (257, 96)
    assert torch.all(fb.max(dim=0).values > 0)
    assert np.all(np.diff(frequencies(FeatureConfig(freq_scale="log", n_mels=96))) > 0)


def test_top_db_floors_each_image_at_its_own_peak():
    quiet = tone(500, sr=SR, amp=1e-3)
    loud = tone(500, sr=SR, amp=1.0)
    ex = SpectrogramImage(FeatureConfig(top_db=50.0))
    images = compute_images(np.stack([quiet, loud]), ex, dtype=np.float32)
    for img in images[:, 0]:
        assert img.max() - img.min() == pytest.approx(50.0, abs=1e-3)
    assert images[1].max() - images[0].max() == pytest.approx(60.0, abs=0.1)  # 1000x amplitude = 60 dB


def test_batch_equals_one_by_one(signal):
    ex = SpectrogramImage(FeatureConfig())
    batch = np.stack([signal, 0.5 * signal, tone(3000, sr=SR)])
    together = compute_images(batch, ex, dtype=np.float32)
    apart = np.concatenate([compute_images(b[None], ex, dtype=np.float32) for b in batch])
    np.testing.assert_allclose(together, apart, atol=1e-4)
    in_pieces = compute_images(batch, ex, dtype=np.float32, batch_size=2)
    np.testing.assert_allclose(together, in_pieces, atol=1e-4)


def test_power_to_db_is_librosa_power_to_db():
    x = np.abs(np.random.default_rng(0).standard_normal((2, 10, 7))).astype(np.float32) ** 4
    ours = power_to_db(torch.from_numpy(x), top_db=40.0).numpy()
    for o, ref in zip(ours, x):
        np.testing.assert_allclose(o, librosa.power_to_db(ref, top_db=40.0), atol=1e-4)


def test_float16_output_is_close_to_float32(signal):
    ex = SpectrogramImage(FeatureConfig())
    half = compute_images(signal[None], ex)
    full = compute_images(signal[None], ex, dtype=np.float32)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), full, atol=0.07)  # float16 step at 100 dB is 0.0625


def _onset(sr):
    """Near-silence (-60 dB noise) for 0.5 s, then a loud noisy tone: the case PCEN's smoother must track."""
    y = 1e-3 * np.random.default_rng(1).standard_normal(2 * sr).astype(np.float32)
    y[sr // 2:] = 0.9 * tone(1000, sr=sr, seconds=1.5, noise=0.1)
    return y


@pytest.mark.parametrize("sr,n_fft,hop", [(16000, 512, 160), (8000, 1024, 256)])
@pytest.mark.parametrize("kind", ["chirp", "onset"])
def test_pcen_image_matches_librosa_pcen(sr, n_fft, hop, kind):
    if kind == "chirp":
        y = tone(440, sr=sr, seconds=2.0, noise=0.05) + chirp(200, 3000, sr=sr, seconds=2.0, amp=0.2)
    else:
        y = _onset(sr)
    ours, cfg = image(y, sample_rate=sr, duration=2.0, n_fft=n_fft, hop_length=hop, n_mels=40, compression="pcen")
    mel = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=sr, n_fft=n_fft, hop_length=hop, n_mels=40)
    ref = librosa.pcen(mel * 2**31, sr=sr, hop_length=hop)  # the scaling librosa recommends for floats in [-1, 1]
    assert ours.shape == ref.shape == cfg.image_shape[1:]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=PCEN_TOL)


@pytest.mark.parametrize("params", [{}, dict(gain=0.8, bias=10.0, power=0.25, time_constant=0.06, eps=1e-4),
                                    dict(bias=0.0), dict(power=0.0)])
def test_pcen_function_matches_librosa_pcen_unscaled(params):
    # Levels of order 1 with scale=1: here librosa's initial state of the smoother (M[-1] = 1) shows.
    rng = np.random.default_rng(0)
    spec = (rng.random((3, 5, 120)) * np.linspace(0.01, 3.0, 120)).astype(np.float32)
    spec[1, :, :10] = 0.0  # a silent start
    ours = pcen(torch.from_numpy(spec), sample_rate=8000, hop_length=100, scale=1.0, **params).numpy()
    for o, ref in zip(ours, spec.astype(np.float64)):
        with np.errstate(divide="ignore"):  # librosa's bias=0 branch takes log(0) = -inf for the silent start
            ref = librosa.pcen(ref, sr=8000, hop_length=100, **params)
        np.testing.assert_allclose(o, ref, rtol=1e-4, atol=1e-5)


def test_pcen_is_nearly_invariant_to_gain(signal):
    # Why PCEN: the same signal recorded 20 dB quieter. The dB image shifts by 20 dB everywhere, 2.7 times
    # its own spread; the PCEN image moves by under 5% of its spread (measured: 0.045).
    shift = {}
    for compression in ("db", "pcen"):
        ex = SpectrogramImage(FeatureConfig(compression=compression))
        loud, quiet = compute_images(np.stack([signal, 0.1 * signal]), ex, dtype=np.float32)[:, 0]
        shift[compression] = np.abs(loud - quiet).mean() / loud.std()
    assert shift["db"] > 2.0
    assert shift["pcen"] < 0.1 and shift["pcen"] < shift["db"] / 20
