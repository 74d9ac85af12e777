"""predict: raw signals (audio at any rate, .npy/.npz arrays) give exactly the store's images and probabilities, and
bad ones the reason the store gives them; windows; the CLI and its bad inputs."""

import csv
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from synth import DIGITS, REPO, process_alive

import spectro
from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.inference.predict import load, windowed_config
from spectro.signals import images as images_mod
from spectro.signals.store import open_store
from spectro.training.run import load_run
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

# Digits are ~0.6 s at 8 kHz; 1 x 32 x 51 images keep the tiny models fast.
CFG = FeatureConfig(sample_rate=8000, duration=1.0, n_fft=256, hop_length=160, n_mels=32)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """5 clips of each of the 10 digits (5 folds), their store, and a CNN and an SVM run on it."""
    root = tmp_path_factory.mktemp("predict")
    src = root / "src"
    src.mkdir()
    for d in range(10):
        for path in sorted(glob.glob(os.path.join(DIGITS, f"{d}_*.flac")))[:5]:
            shutil.copy(path, src)
    spectro.preprocess(str(src), str(root / "store"), config=CFG, label_regex=r"^(\d)_", workers=0, progress=False)
    train(str(root / "store"), "cnn", str(root / "cnn"), epochs=1, batch_size=8, device="cpu", progress=False)
    train(str(root / "store"), "svm", str(root / "svm"), progress=False)
    return root


def _source_files(root):
    store = open_store(str(root / "store"))
    return store, [str(root / "src" / p) for p in store.paths]


@pytest.mark.parametrize("model, workers", [("cnn", 0), ("svm", 2)])
def test_raw_files_give_the_probabilities_of_their_store_rows(digits, model, workers):
    store, paths = _source_files(digits)
    predictor = load(str(digits / model))
    before = predictor.run.classifier.get_params()
    results = list(predictor.predict_files(paths, workers=workers, batch_size=7, chunk_size=4))
    assert [r.source for r in results] == paths and all(r.ok for r in results)
    assert predictor.run.classifier.get_params() == before  # the batch size asked for is used, not stored
    got = np.stack([r.proba for r in results])
    expected = load_run(str(digits / model)).predict_proba(store.features[:])
    # The images are rounded through float16 as the store keeps them, so they are the same images.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    image, bounds = predictor.images(paths[0])
    np.testing.assert_array_equal(image, store.features[:1])
    np.testing.assert_allclose(bounds[0], [store.starts[0], store.ends[0]], atol=1e-4)


def _clip(d, k=5, length=None):
    """The ``k``-th bundled clip of digit ``d`` (one the runs never saw), 8 kHz, zero-padded to ``length``."""
    y = sf.read(sorted(glob.glob(os.path.join(DIGITS, f"{d}_*.flac")))[k], dtype="float32")[0]
    return y if length is None else np.pad(y, (0, length - len(y)))


@pytest.fixture(scope="module")
def array_sources(tmp_path_factory):
    """Signals as preprocess also reads them, each source with its store (same FeatureConfig as the runs).

    ``set.npz``: a single-file source (signals ``X``, labels ``y``, folds). ``mixed/``: class
    folders holding a 16 kHz WAV, a 2-D .npy and a .npz of a 1-D and a 2-D array.
    """
    root = tmp_path_factory.mktemp("arrays")
    n = 6000
    np.savez(root / "set.npz", X=np.stack([_clip(d, k, n) for d in (1, 2, 3) for k in (5, 6)]),
             y=np.array(["1", "1", "2", "2", "3", "3"]), folds=np.array([1, 2] * 3))
    mixed = root / "mixed"
    for d in ("3", "5", "7"):
        (mixed / d).mkdir(parents=True)
    sf.write(mixed / "3" / "three16k.wav", spectro.signals.audio.resample(_clip(3), orig_sr=8000, target_sr=16000),
             16000, subtype="FLOAT")
    np.save(mixed / "5" / "rows.npy", np.stack([_clip(5, k, n) for k in (5, 6)]))
    np.savez(mixed / "7" / "set.npz", a=_clip(7, 5), b=np.stack([_clip(7, k, n) for k in (6, 7)]))
    for source in ("set.npz", "mixed"):
        spectro.preprocess(str(root / source), str(root / f"{source}.store"), config=CFG, k_folds=2, workers=0,
                           progress=False)
    return root


@pytest.mark.parametrize("model, workers", [("cnn", 0), ("svm", 2)])
def test_npz_signals_and_a_file_at_another_rate_give_the_probabilities_of_their_store_rows(
        digits, array_sources, model, workers):
    predictor = load(str(digits / model))
    run = load_run(str(digits / model))
    for source, root in (("set.npz", array_sources), ("mixed", array_sources / "mixed")):
        store = open_store(str(array_sources / f"{source}.store"))
        # Each signal is named as its store names it (store ids are "<name>@<image>").
        names = spectro.find_inputs([str(array_sources / source)])
        assert names == [str(root / rid.rsplit("@", 1)[0]) for rid in store.ids]
        results = list(predictor.predict_files(names, workers=workers, batch_size=5, chunk_size=2))
        assert [r.source for r in results] == names and all(r.ok for r in results)
        np.testing.assert_allclose(np.stack([r.proba for r in results]), run.predict_proba(store.features[:]),
                                   rtol=0, atol=1e-6)
        for name, row, start, end in zip(names, store.features, store.starts, store.ends):
            image, bounds = predictor.images(name)
            np.testing.assert_array_equal(image[0], row)  # bit-equal, the 16 kHz WAV included
            np.testing.assert_allclose(bounds[0], [start, end], atol=1e-4)
    assert names[0].endswith(os.path.join("mixed", "3", "three16k.wav"))
    # A .npz path is its signals: predict_files yields one result each, predict_proba one row each.
    bundle = str(array_sources / "set.npz")
    assert [r.source for r in predictor.predict_files([bundle], workers=0)] == [f"{bundle}#X[{i}]" for i in range(6)]
    proba = predictor.predict_proba(bundle)
    assert proba.shape == (6, 10)
    np.testing.assert_allclose(predictor.predict_proba(f"{bundle}#X[2]"), proba[2], atol=1e-7)
    with pytest.raises(SpectroError, match=r"set.npz holds 6 signals; images\(\) takes one, named as .*#X\[0\]"):
        predictor.images(bundle)


def _bad_inputs(root):
    """Class folders holding two good clips and every kind of bad input."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    bad = root / "a"
    sf.write(root / "a" / "good.wav", _clip(1), 8000)
    sf.write(root / "b" / "good.flac", _clip(2), 8000)
    (bad / "empty.wav").write_bytes(b"")
    sf.write(bad / "trunc.wav", _clip(3), 8000)
    (bad / "trunc.wav").write_bytes((bad / "trunc.wav").read_bytes()[:1000])  # the header announces more
    (bad / "text.wav").write_text("definitely not a RIFF file\n" * 20)
    nan = _clip(4, length=6000)
    nan[100] = np.nan
    sf.write(bad / "nan.wav", nan, 8000, subtype="FLOAT")
    sf.write(bad / "short.wav", _clip(5)[:100], 8000)
    sf.write(bad / "silent.wav", np.zeros(8000, dtype=np.float32), 8000)
    (bad / "text.npy").write_text("not an array")
    np.savez(bad / "arrays.npz", nan=np.stack([_clip(6, 5, 6000), nan]), names=np.array(["x", "y"]),
             flat=np.zeros((2, 3, 4)))
    return root


def test_bad_inputs_get_the_reason_preprocess_gives_them(digits, tmp_path):
    src = _bad_inputs(tmp_path / "src")
    spectro.preprocess(str(src), str(tmp_path / "store"), config=CFG, k_folds=2, workers=0, progress=False)
    in_store = {r["path"]: r["reason"] for r in open_store(str(tmp_path / "store")).errors()}
    results = list(load(str(digits / "svm")).predict_files(spectro.find_inputs([str(src)]), workers=2, chunk_size=3))
    in_predict = {os.path.relpath(r.source, src): r.error for r in results if not r.ok}
    assert in_predict == in_store
    kinds = {os.path.basename(name): reason.split(":")[0].split(" (")[0] for name, reason in in_predict.items()}
    assert kinds == {
        "empty.wav": "empty file", "trunc.wav": "truncated", "text.wav": "cannot decode",
        "nan.wav": "NaN or Inf samples", "short.wav": "too short", "silent.wav": "silent",
        "text.npy": "cannot read array",
        "arrays.npz#nan[1]": "NaN or Inf samples", "arrays.npz#names": "array has non-numeric dtype <U1",
        "arrays.npz#flat[0]": "array is not a 1-D signal", "arrays.npz#flat[1]": "array is not a 1-D signal"}
    assert sum(r.ok for r in results) == 3  # the good WAV, FLAC and .npz row


def test_api_paths_arrays_and_lists(digits):
    store, paths = _source_files(digits)
    predictor = spectro.load(str(digits / "cnn"))
    p = predictor.predict_proba(paths[0])
    assert p.shape == (10,) and p.sum() == pytest.approx(1.0)
    assert predictor.predict(paths[0]) == predictor.labels[int(np.argmax(p))]
    both = predictor.predict_proba(paths[:2])
    assert both.shape == (2, 10)
    np.testing.assert_allclose(both[0], p, atol=1e-7)
    # The same clip as an array at another rate: resampled to the run's rate first.
    y, sr = sf.read(paths[0], dtype="float32")
    y16 = spectro.signals.audio.resample(y, orig_sr=sr, target_sr=16000)
    p16 = predictor.predict_proba(y16, sample_rate=16000)
    assert np.abs(p16 - p).max() < 0.05  # resampling twice is not bit-exact, but the image is the same sound
    assert predictor.predict([y, y], sample_rate=sr) == [predictor.predict(paths[0])] * 2
    with pytest.raises(SpectroError, match="sample_rate"):
        predictor.predict_proba(y)
    with pytest.raises(SpectroError, match="silent"):
        predictor.predict_proba(np.zeros(8000, dtype=np.float32), sample_rate=8000)


def _long_recording(path, sr=16000):
    """Three digit clips (1, 4, 7), 0.4 s of quiet between them, written at ``sr``: 3.0 s."""
    clips = [sf.read(sorted(glob.glob(os.path.join(DIGITS, f"{d}_*.flac")))[0], dtype="float32")[0] for d in (1, 4, 7)]
    y = np.zeros(int(3.0 * 8000), dtype=np.float32)
    at = 1000
    for c in clips:
        y[at:at + len(c)] = c
        at += len(c) + 3200
    y = spectro.signals.audio.resample(y, orig_sr=8000, target_sr=sr)
    sf.write(path, y, sr)
    return path


def test_sliding_windows_and_the_crop_note(digits, tmp_path):
    path = _long_recording(str(tmp_path / "long.wav"))
    predictor = load(str(digits / "cnn"))
    [r] = predictor.predict_files([path], hop=0.5, workers=0)
    assert r.windowed and not r.cropped
    np.testing.assert_allclose(r.starts, [0.0, 0.5, 1.0, 1.5, 2.0])  # 2.5 s would be only half full
    np.testing.assert_allclose(r.ends, r.starts + 1.0)
    np.testing.assert_allclose(r.proba, r.window_proba.mean(axis=0))
    w = r.windows()[2]
    assert w["label"] == predictor.labels[int(np.argmax(r.window_proba[2]))]
    # Each window is the image of that stretch of the signal, as a store with --window would hold it.
    y = spectro.signals.audio.load_audio(path, sample_rate=8000)
    crop = predictor.predict_proba(y[8000:16000], sample_rate=8000)
    np.testing.assert_allclose(r.window_proba[2], crop, atol=1e-6)
    [plain] = predictor.predict_files([path], workers=0)
    assert plain.cropped and not plain.windowed and len(plain.starts) == 1
    with pytest.raises(SpectroError, match="trained on 1 s images"):
        predictor.predict_proba(path, window=0.5)


def test_cli_table_json_csv_and_png(digits, tmp_path, capsys):
    _, paths = _source_files(digits)
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    for p in paths[:3]:
        shutil.copy(p, folder)
    (tmp_path / "in" / "notes.txt").write_text("not a signal")  # ignored in a folder walk
    long = _long_recording(str(tmp_path / "long.wav"))
    run = str(digits / "cnn")
    assert main(["predict", run, str(tmp_path / "in"), "--top-k", "2", "--quiet", "--workers", "0"]) == 0
    head, *lines = capsys.readouterr().out.strip().splitlines()
    assert head == "file  label  [top 2: class probability]"  # the table says what its columns are
    assert len(lines) == 3 and all(line.count(",") == 1 for line in lines)  # two probabilities each

    assert main(["predict", run, long, "--format", "json", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    [item] = json.loads(captured.out)
    assert item["cropped"] is True and "windows" not in item
    assert "cropped to their loudest 1 s" in captured.err

    assert main(["predict", run, long, "--hop", "0.5", "--format", "csv", "--png", str(tmp_path / "png"),
                 "--workers", "0"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 + 5 and rows[0]["start"] == "" and rows[1]["start"] == "0.0000"
    assert os.path.getsize(tmp_path / "png" / "long.png") > 10_000


def test_cli_gives_each_signal_of_a_npz_its_row_and_figure(digits, array_sources, tmp_path, capsys):
    bundle = str(array_sources / "set.npz")
    assert main(["predict", str(digits / "cnn"), bundle, "--format", "csv", "--png", str(tmp_path / "png"),
                 "--workers", "0", "--quiet"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["path"] for r in rows] == [f"{bundle}#X[{i}]" for i in range(6)]
    assert sorted(os.listdir(tmp_path / "png")) == [f"set_X_{i}_.png" for i in range(6)]  # not one set.png six times


def test_cli_bad_files_fail_alone_and_bad_runs_stop(digits, tmp_path, capsys):
    _, paths = _source_files(digits)
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(paths[0], bad / "good.flac")
    (bad / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(bad / "silent.wav", np.zeros(8000, dtype=np.float32), 8000)
    sf.write(bad / "short.wav", np.full(100, 0.1, dtype=np.float32), 8000)
    assert main(["predict", str(digits / "svm"), str(bad), "--workers", "0", "--quiet"]) == 1
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[1].startswith(str(bad / "good.flac"))  # under the header
    errors = out.err.strip().splitlines()
    assert len(errors) == 4 and errors[-1] == "spectro: 3 of 4 files could not be used"
    assert any("broken.wav: cannot decode" in e for e in errors)
    assert any("silent.wav: silent" in e for e in errors)
    assert any("short.wav: too short" in e for e in errors)

    assert main(["predict", str(tmp_path), str(bad)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"spectro: error: missing {tmp_path}/run.json: "
                                                            "not a complete spectro run"]
    newer = tmp_path / "newer"
    shutil.copytree(digits / "svm", newer)
    info = json.loads((newer / "run.json").read_text())
    (newer / "run.json").write_text(json.dumps({**info, "format": "spectro-run-99"}))
    assert main(["predict", str(newer), str(bad)]) == 2
    assert "is not a spectro run" in capsys.readouterr().err


def test_a_file_name_that_is_not_utf8_is_predicted_and_printed_as_its_bytes(digits, tmp_path):
    _, paths = _source_files(digits)
    name = os.path.join(os.fsencode(tmp_path), b"bad\xffname.flac")
    shutil.copy(paths[0], name)
    # A UTF-8 terminal that refuses what is not UTF-8 (the default outside the C locale).
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "spectro", "predict", str(digits / "svm"), os.fsdecode(name),
                           "--format", "csv", "--workers", "0", "--quiet"], capture_output=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    [row] = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8", "surrogateescape"))))
    assert os.fsencode(row["path"]) == name and row["error"] == ""


# -- option checks (issue 22 D15) and bounded memory (D5) ----------------------------------------


@pytest.mark.parametrize("args, match", [
    (["--top-k", "-1"], "--top-k must be a whole number of at least 1, got -1"),
    (["--top-k", "0"], "--top-k must be a whole number of at least 1, got 0"),
    (["--window", "nan"], "--window must be a positive number of seconds, got nan"),
    (["--window", "inf"], "--window must be a positive number of seconds, got inf"),
    (["--window", "-1"], "--window must be a positive number of seconds, got -1.0"),
    (["--hop", "nan"], "--hop must be a positive number of seconds, got nan"),
    (["--hop", "inf"], "--hop must be a positive number of seconds, got inf"),
    (["--hop", "-0.5"], "--hop must be a positive number of seconds, got -0.5"),
    (["--hop", "0"], "--hop must be a positive number of seconds, got 0.0"),
    # 0.00001 s rounds to 0 samples, 0.0001 s is 6 million windows in 10 minutes: refused before any work.
    (["--hop", "0.00001"], "--hop 1e-05 s is finer than the images' time step (160 samples = 0.02 s at 8000 Hz)"),
    (["--hop", "0.0001"], "--hop 0.0001 s is finer than the images' time step"),
])
def test_bad_predict_options_are_one_line_before_any_decoding(digits, capsys, monkeypatch, args, match):
    _, paths = _source_files(digits)
    capsys.readouterr()

    def no_decoding(*a, **k):
        raise AssertionError("decoded before the options were checked")

    monkeypatch.setattr("spectro.signals.images.read_signal", no_decoding)
    assert main(["predict", str(digits / "svm"), paths[0], "--workers", "0", *args]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    [line] = out.err.strip().splitlines()
    assert line.startswith(f"spectro: error: {match}"), line


def test_the_smallest_hop_allowed_is_one_stft_frame(digits):
    [r] = load(str(digits / "svm")).predict_files([_clip(3, length=16000)], sample_rate=8000, hop=0.02, workers=0)
    assert r.ok and len(r.starts) == 51  # 2 s: a window every 0.02 s while one fits whole


def _tone_file(path, minutes, sr=8000):
    t = np.arange(int(sr * 60 * minutes)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 1200 * t)).astype(np.float32), sr, subtype="PCM_16")
    return str(path)


def test_a_long_recording_is_scored_in_blocks_with_the_probabilities_of_all_at_once(digits, tmp_path):
    path = _tone_file(tmp_path / "long.wav", 1.5)  # 357 windows at --hop 0.25: more than one block
    predictor = load(str(digits / "cnn"))
    cfg = windowed_config(predictor.feature_config, hop=0.25)
    [whole] = images_mod.chunk_images([images_mod.SignalRef(path)], cfg)  # every image at once
    assert len(whole.images) > images_mod.WINDOW_BLOCK
    [r] = predictor.predict_files([path], hop=0.25, workers=0, batch_size=50)
    np.testing.assert_allclose(r.window_proba, predictor.run.predict_proba(whole.images), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.stack([r.starts, r.ends], axis=1), whole.bounds)


def test_predict_memory_does_not_grow_with_the_number_of_windows(digits, tmp_path):
    predictor = load(str(digits / "svm"))
    peaks = {}
    for minutes in (2, 6):
        path = _tone_file(tmp_path / f"{minutes}.wav", minutes)
        tracemalloc.start()
        [r] = predictor.predict_files([path], hop=0.1, workers=0)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert r.ok and len(r.starts) == int(minutes * 600) - 9
    # 4 more minutes are 1,920,000 samples: 7.7 MB as float32, 2400 more windows (77 MB of them as
    # 1 s float32 segments before). Allowed: the signal held a few times over, not the windows.
    signal = 4 * 60 * 8000 * 4
    assert peaks[6] - peaks[2] < 3 * signal, peaks


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")
def test_predict_workers_die_with_a_parent_killed_by_sigkill(digits, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    first = _tone_file(folder / "t00.wav", 1 / 3)  # 20 s: 951 windows at --hop 0.02, so the run lasts
    for k in range(1, 40):
        shutil.copy(first, folder / f"t{k:02d}.wav")  # 40 files: 3 chunks of 16, so 2 workers start
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spectro", "predict", str(digits / "svm"), str(folder),
                             "--hop", "0.02", "--workers", "2", "--format", "csv", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        workers = []
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(workers) == 2, "the two decoding workers never started"
        proc.send_signal(signal.SIGKILL)  # no clean-up runs in the parent
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in workers if process_alive(pid)]
    for pid in alive:  # never leave an orphan behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "a predict worker outlived its killed parent"
