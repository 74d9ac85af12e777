"""signals.images: every kind of input read one way, a chunk's images in one batch, the GPU path on the CPU."""

import numpy as np
import pytest
import soundfile as sf
from synth import TINY_CFG, tone

from spectro.errors import BadInput
from spectro.signals.audio import load_audio, resample, segments
from spectro.signals.features import SpectrogramImage, compute_images
from spectro.signals.images import (
    NON_FINITE,
    SignalRef,
    chunk_images,
    map_chunks,
    read_signal,
    recording_image,
    signal_images,
    signals_in,
    to_images,
)

CFG = TINY_CFG  # 8 kHz, 0.5 s, images 1 x 32 x 32


@pytest.fixture
def files(tmp_path):
    """The same tones as a 16 kHz WAV, a 1-D .npy, rows of a 2-D .npy and arrays of a .npz (8 kHz)."""
    a, b = tone(440, sr=8000, seconds=0.5), tone(880, sr=8000, seconds=0.5, noise=0.05)
    sf.write(tmp_path / "a16k.wav", resample(a, orig_sr=8000, target_sr=16000), 16000, subtype="FLOAT")
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "rows.npy", np.stack([a, b]))
    np.savez(tmp_path / "set.npz", X=np.stack([a, b]), y=np.array(["a", "b"]))
    np.savez(tmp_path / "mixed.npz", one=b, two=np.stack([b, a]))
    return tmp_path, a, b


def test_names_of_the_signals_in_a_file_are_those_preprocess_gives_them(files):
    d, _, _ = files
    assert [n for n, _ in signals_in(str(d / "a16k.wav"))] == [str(d / "a16k.wav")]
    assert [n for n, _ in signals_in(str(d / "a.npy"))] == [str(d / "a.npy")]
    assert [n for n, _ in signals_in(str(d / "rows.npy"))] == [str(d / "rows.npy[0]"), str(d / "rows.npy[1]")]
    assert [n for n, _ in signals_in(str(d / "set.npz"))] == [str(d / "set.npz#X[0]"), str(d / "set.npz#X[1]")]
    named = signals_in(str(d / "mixed.npz"))
    assert [n for n, _ in named] == [str(d / f"mixed.npz{s}") for s in ("#one", "#two[0]", "#two[1]")]
    # A name is read back as the signal it names.
    [(name, ref)] = signals_in(str(d / "mixed.npz#two[1]"))
    assert (name, ref.path, ref.key) == (str(d / "mixed.npz#two[1]"), str(d / "mixed.npz"), ("two", 1))
    [(_, ref)] = signals_in(str(d / "rows.npy[1]"))
    assert (ref.path, ref.key) == (str(d / "rows.npy"), ("", 1))
    [(_, ref)] = signals_in(str(d / "missing.npz#X[0]"))  # no such file: read (and refused) as a file
    assert ref.key is None and ref.path.endswith("missing.npz#X[0]")


def test_every_kind_of_input_reads_to_the_same_signal(files):
    d, a, b = files
    wav = read_signal(SignalRef(str(d / "a16k.wav")), CFG)
    np.testing.assert_array_equal(wav, load_audio(str(d / "a16k.wav"), sample_rate=8000))
    np.testing.assert_allclose(wav[50:-50], a[50:-50], atol=2e-3)  # resampled twice: the same sound (but the ends)
    opened = {}
    for name in ("a.npy", "rows.npy[0]", "set.npz#X[0]", "mixed.npz#two[1]"):
        [(_, ref)] = signals_in(str(d / name))
        y = read_signal(ref, CFG, opened)
        assert y.dtype == np.float32 and y.shape == a.shape
        np.testing.assert_array_equal(y, a)
    [(_, ref)] = signals_in(str(d / "mixed.npz#one"))
    np.testing.assert_array_equal(read_signal(ref, CFG, opened), b)
    mem = read_signal(SignalRef(array=resample(a, orig_sr=8000, target_sr=16000), sample_rate=16000), CFG)
    np.testing.assert_allclose(mem[50:-50], a[50:-50], atol=2e-3)


@pytest.mark.parametrize("ref, reason", [
    (SignalRef(array=np.ones(4000)), "an array needs sample_rate="),
    (SignalRef("set.npz", ("X", 9)), "cannot read array: index 9 is out of bounds"),
    (SignalRef("set.npz", ("Z", None)), "cannot read array: 'Z is not a file in the archive'"),
    (SignalRef("set.npz", ("y", None)), "array has non-numeric dtype"),
    (SignalRef("nothing.wav"), "cannot read: No such file or directory"),
])
def test_bad_references_give_their_reason(files, ref, reason, monkeypatch):
    monkeypatch.chdir(files[0])
    with pytest.raises(BadInput, match=reason.replace("[", r"\[")):
        read_signal(ref, CFG)


def test_a_chunk_is_one_batch_equal_to_each_signal_alone_and_bad_ones_do_not_stop_it(files):
    d, a, _ = files
    refs = [ref for name in ("rows.npy", "set.npz", "a16k.wav") for _, ref in signals_in(str(d / name))]
    refs.insert(2, SignalRef(array=np.zeros(4000), sample_rate=8000))
    out = chunk_images(refs, CFG)
    assert [r.error for r in out] == [None, None, "silent (all samples are zero)", None, None, None]
    for ref, r in zip(refs, out):
        if r.ok:
            assert r.images.dtype == np.float16 and r.images.shape == (1, 1, 32, 32) and r.segments is None
            np.testing.assert_array_equal(r.images, signal_images(ref, CFG).images)
    np.testing.assert_array_equal(out[0].images, compute_images(segments(a, CFG)[0], SpectrogramImage(CFG)))
    assert out[0].seconds == 0.5 and out[0].bounds.tolist() == [[0.0, 0.5]]
    with pytest.raises(BadInput, match="silent"):
        signal_images(refs[2], CFG)


def test_windows_of_a_long_signal_and_the_whole_recording_image(tmp_path):
    sf.write(tmp_path / "long.wav", tone(500, sr=8000, seconds=1.6), 8000)
    cfg = CFG.replace(window=0.5, window_hop=0.25)
    r = signal_images(SignalRef(str(tmp_path / "long.wav")), cfg)
    assert r.images.shape == (6, 1, 32, 32) and r.seconds == pytest.approx(1.6)
    np.testing.assert_allclose(r.bounds[:, 0], [0.0, 0.25, 0.5, 0.75, 1.0, 1.25])
    whole = recording_image(SignalRef(str(tmp_path / "long.wav")), cfg)
    assert whole.dtype == np.float32 and whole.shape == (32, 1 + 12800 // CFG.hop_length)


@pytest.mark.parametrize("workers", [0, 2])
def test_stft_in_the_main_process_gives_the_images_of_the_workers(files, workers):
    # The --device cuda path of preprocess (workers decode, the caller's device runs the STFTs),
    # exercised on the CPU.
    d, _, _ = files
    refs = [ref for name in ("rows.npy", "set.npz", "mixed.npz", "a16k.wav") for _, ref in signals_in(str(d / name))]
    chunks = [refs[:3], refs[3:6], refs[6:]]
    with map_chunks(chunks, CFG, workers=workers) as done:
        in_workers = [r for chunk in done for r in chunk]
    with map_chunks(chunks, CFG, workers=workers, stft_device="cpu") as done:
        here = [r for chunk in done for r in chunk]
    assert len(here) == len(in_workers) == len(refs) and all(r.ok for r in here)
    for x, y in zip(in_workers, here):
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.bounds, y.bounds)


def test_an_image_beyond_float16_is_refused_with_one_reason():
    # Linear power of a full-scale tone (2.6e5) is beyond float16's 65504.
    cfg = CFG.replace(n_fft=2048, hop_length=256, freq_scale="linear", db=False)
    loud, quiet = tone(1000, sr=8000, seconds=0.5, amp=1.0), tone(1000, sr=8000, seconds=0.5, amp=0.01)
    out = chunk_images([SignalRef(array=loud, sample_rate=8000), SignalRef(array=quiet, sample_rate=8000)], cfg)
    assert [r.error for r in out] == [NON_FINITE, None] and out[0].images is None
    assert to_images(out, SpectrogramImage(cfg)) is out  # nothing left to compute
