"""preprocess end to end: the store, reuse, bad input, folds, the CLI, and a killed run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from synth import class_folders, tone

from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.signals import images
from spectro.signals.audio import fix_length, load_audio
from spectro.signals.features import SpectrogramImage, compute_images
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store

CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=64, n_mels=32)


def run(src, out, cfg=CFG, **kw):
    kw.setdefault("workers", 0)
    return preprocess(str(src), str(out), config=cfg, progress=False, **kw)


def test_store_layout_and_images_equal_direct_computation(tmp_path):
    src = class_folders(tmp_path / "src", per_class=5, sr=16000)
    res = run(src, tmp_path / "st")
    st = open_store(str(tmp_path / "st"))
    assert res.written == len(st) == 15 and res.classes == 3
    assert st.features.dtype == np.float16 and st.features.shape == (15, 1, 32, 63)
    assert isinstance(st.features, np.memmap)
    assert st.labels == ["high", "low", "mid"]
    assert sorted(os.listdir(tmp_path / "st")) == ["config.json", "errors.csv", "features.npy", "index.csv",
                                                   "labels.json"]
    assert st.meta["fingerprint"] == CFG.fingerprint() and FeatureConfig.from_dict(st.meta["feature_config"]) == CFG
    # Row 0 is the first file in sorted order; recompute its image by hand.
    path = os.path.join(src, st.paths[0])
    y = fix_length(load_audio(path, sample_rate=8000), length=4000)
    ref = compute_images(y[None], SpectrogramImage(CFG))
    np.testing.assert_array_equal(st.features[0], ref[0])
    assert set(st.fold_ids) == {1, 2, 3, 4, 5}


def test_pcen_store_keeps_its_config(tmp_path):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    cfg = CFG.replace(compression="pcen")
    run(src, tmp_path / "st", cfg=cfg)
    st = open_store(str(tmp_path / "st"))
    assert st.config == cfg and st.meta["fingerprint"] == cfg.fingerprint() != CFG.fingerprint()
    y = fix_length(load_audio(os.path.join(src, st.paths[0]), sample_rate=8000), length=4000)
    np.testing.assert_array_equal(st.features[0], compute_images(y[None], SpectrogramImage(cfg))[0])
    assert np.all(st.features[:] >= 0)  # PCEN levels, not decibels


def test_two_workers_write_the_same_store_as_one(tmp_path):
    src = class_folders(tmp_path / "src", per_class=10)
    run(src, tmp_path / "a", workers=0)
    run(src, tmp_path / "b", workers=2, chunk_size=3)
    a, b = open_store(str(tmp_path / "a")), open_store(str(tmp_path / "b"))
    np.testing.assert_array_equal(a.features, b.features)
    assert list(a.ids) == list(b.ids) and list(a.folds) == list(b.folds)


def test_device_path_stft_in_main_process_gives_the_same_store(tmp_path, monkeypatch):
    # The --device cuda path (workers decode, the main process runs the STFTs)
    # exercised on the CPU: the store must be identical.
    import spectro.signals.preprocess as ingest

    src = class_folders(tmp_path / "src", per_class=6)
    run(src, tmp_path / "a", workers=2, chunk_size=4)
    asked = []

    def stft_here(*args, stft_device, **kw):
        asked.append(stft_device)
        return images.map_chunks(*args, stft_device="cpu", **kw)

    monkeypatch.setattr(ingest, "map_chunks", stft_here)
    run(src, tmp_path / "b", workers=2, chunk_size=4)
    assert asked == [None]  # device="cpu": the workers compute the STFTs
    np.testing.assert_array_equal(open_store(str(tmp_path / "a")).features, open_store(str(tmp_path / "b")).features)


def test_cuda_device_without_gpu_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    src = class_folders(tmp_path / "src", per_class=1)
    with pytest.raises(SpectroError, match="no CUDA device"):
        run(src, tmp_path / "st", device="cuda")


def test_rerun_reuses_unchanged_files_and_rebuilds_on_new_config(tmp_path):
    src = class_folders(tmp_path / "src", per_class=4)
    run(src, tmp_path / "st")
    before = np.array(open_store(str(tmp_path / "st")).features)
    again = run(src, tmp_path / "st")
    assert again.reused_files == 12
    np.testing.assert_array_equal(open_store(str(tmp_path / "st")).features, before)
    # Change one file: only it is recomputed, and its image changes.
    changed = os.path.join(src, "low", "low_0.wav")
    sf.write(changed, tone(3000, sr=16000, seconds=0.5), 16000)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = run(src, tmp_path / "st")
    st = open_store(str(tmp_path / "st"))
    assert third.reused_files == 11
    row = list(st.ids).index(os.path.join("low", "low_0.wav") + "@0")
    assert not np.array_equal(st.features[row], before[row])
    fresh = run(src, tmp_path / "st", cfg=CFG.replace(n_mels=24))
    assert fresh.reused_files == 0 and open_store(str(tmp_path / "st")).image_shape == (1, 24, 63)


def bad_inputs(root):
    """A class folder with one good file and every kind of bad one."""
    d = root / "a"
    d.mkdir(parents=True)
    sf.write(d / "good.wav", tone(440, sr=8000, seconds=0.5), 8000)
    sf.write(d / "good2.wav", tone(880, sr=8000, seconds=0.5), 8000)
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "trunc.wav", tone(440, sr=8000), 8000)
    (d / "trunc.wav").write_bytes((d / "trunc.wav").read_bytes()[:40])
    (d / "text.wav").write_text("definitely not a RIFF file\n" * 20)
    nan = tone(440, sr=8000, seconds=0.5)
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, 8000, subtype="FLOAT")
    sf.write(d / "short.wav", tone(440, sr=8000, seconds=0.01), 8000)
    sf.write(d / "silent.wav", np.zeros(4000, dtype=np.float32), 8000)
    e = root / "b"
    e.mkdir()
    sf.write(e / "good.wav", tone(1500, sr=8000, seconds=0.5), 8000)
    return root


def test_bad_files_are_skipped_and_reported(tmp_path):
    src = bad_inputs(tmp_path / "src")
    res = run(src, tmp_path / "st")
    st = open_store(str(tmp_path / "st"))
    assert len(st) == 3
    reasons = {os.path.basename(r["path"]): r["reason"] for r in st.errors()}
    assert set(reasons) == {"empty.wav", "trunc.wav", "text.wav", "nan.wav", "short.wav", "silent.wav"}
    assert reasons["empty.wav"].startswith("empty file")
    assert reasons["text.wav"].startswith("cannot decode")
    assert reasons["nan.wav"] == "NaN or Inf samples"
    assert reasons["short.wav"].startswith("too short")
    assert reasons["silent.wav"].startswith("silent")
    assert sum(res.skipped.values()) == 6
    line = res.summary_line()
    assert "skipped 6" in line and "errors.csv" in line


def test_all_bad_input_fails_and_keeps_the_previous_store(tmp_path):
    src = class_folders(tmp_path / "src", per_class=2)
    run(src, tmp_path / "st")
    before = open(tmp_path / "st" / "index.csv").read()
    bad = tmp_path / "bad" / "x"
    bad.mkdir(parents=True)
    (bad / "a.wav").write_bytes(b"")
    with pytest.raises(SpectroError, match="no usable signals"):
        run(tmp_path / "bad", tmp_path / "st")
    assert open(tmp_path / "st" / "index.csv").read() == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".st") and p != ".st.lock"] == []


def test_windows_inherit_file_fold_and_label(tmp_path):
    d = tmp_path / "src"
    for c, f in (("x", 500), ("y", 1500)):
        (d / c).mkdir(parents=True)
        for k in range(5):
            sf.write(d / c / f"{k}.wav", tone(f + 10 * k, sr=8000, seconds=3.6), 8000)
    run(d, tmp_path / "st", cfg=CFG.replace(window=1.0))
    st = open_store(str(tmp_path / "st"))
    assert len(st) == 10 * 4
    by_file = {}
    for path, fold, label, rid in zip(st.paths, st.folds, st.y, st.ids):
        by_file.setdefault(path, set()).add((fold, label))
        assert rid.startswith(path + "@")
    assert all(len(v) == 1 for v in by_file.values())
    np.testing.assert_allclose(st.ends[:4] - st.starts[:4], [1, 1, 1, 0.6], atol=1e-3)


def test_groups_never_cross_folds(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    for digit in range(3):
        for voice in ("ann", "bob", "cy", "dee", "eve", "fay"):
            for take in range(2):
                sf.write(d / f"{digit}_{voice}_{take}.wav", tone(300 + 200 * digit + take, sr=8000, seconds=0.4), 8000)
    run(d, tmp_path / "st", label_regex=r"^(\d)_", group_regex=r"^\d_([a-z]+)_", k_folds=3, seed=1)
    st = open_store(str(tmp_path / "st"))
    folds_of = {}
    for g, f in zip(st.groups, st.folds):
        folds_of.setdefault(g, set()).add(int(f))
    assert all(len(f) == 1 for f in folds_of.values())
    assert st.fold_ids == [1, 2, 3] and st.meta["folds"]["group_aware"] is True
    # Seeded: the same seed gives the same folds, another seed may differ.
    run(d, tmp_path / "st2", label_regex=r"^(\d)_", group_regex=r"^\d_([a-z]+)_", k_folds=3, seed=1)
    assert list(open_store(str(tmp_path / "st2")).folds) == list(st.folds)


def test_source_folds_win(tmp_path):
    np.savez(tmp_path / "s.npz", X=np.stack([tone(300 + 100 * i, sr=8000, seconds=0.5) for i in range(6)]),
             y=np.array(["a", "b"] * 3), folds=np.array([1, 1, 2, 2, 3, 3]))
    run(tmp_path / "s.npz", tmp_path / "st")
    st = open_store(str(tmp_path / "st"))
    assert list(st.folds) == [1, 1, 2, 2, 3, 3] and st.meta["folds"]["from_source"] is True


def test_cli_preprocess_info_and_show(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=3)
    rc = main(["preprocess", src, "--out", str(tmp_path / "st"), "--sample-rate", "8000", "--n-mels", "32",
               "--duration", "0.5", "--workers", "0", "--quiet", "--png", str(tmp_path / "png")])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote 9 images from 9 files (3 classes)" in out
    assert sorted(os.listdir(tmp_path / "png")) == ["high.png", "low.png", "mid.png"]
    assert main(["info", str(tmp_path / "st"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["examples"] == 9 and info["image_shape"] == [1, 32, 1 + 4000 // 80]  # hop: 10 ms at 8 kHz
    assert sum(info["counts"]["low"].values()) == 3
    assert info["feature_config"]["n_mels"] == 32
    assert main(["info", str(tmp_path / "st")]) == 0
    assert "total" in capsys.readouterr().out


@pytest.mark.parametrize("args,match", [
    (["preprocess", "{tmp}/nowhere", "--out", "{tmp}/st"], "source not found"),
    (["preprocess", "{tmp}/empty", "--out", "{tmp}/st"], "no signal files"),
    (["preprocess", "{tmp}/src", "--out", "{tmp}/st", "--manifest", "{tmp}/m.csv", "--label-col", "kind"],
     "no column 'kind'"),
    (["preprocess", "{tmp}/src", "--out", "{tmp}/st", "--n-fft", "4"], "--n-fft"),
    (["info", "{tmp}/nowhere"], "store not found"),
])
def test_cli_errors_are_one_line_without_traceback(tmp_path, args, match, capsys):
    (tmp_path / "empty").mkdir()
    class_folders(tmp_path / "src", per_class=1)
    (tmp_path / "m.csv").write_text("path,label\nlow/low_0.wav,low\n")
    rc = main([a.format(tmp=tmp_path) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and match in lines[0]


def test_python_m_spectro_error_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spectro", "preprocess", str(tmp_path / "nowhere"), "--out",
                           str(tmp_path / "st")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"spectro: error: source not found: {tmp_path / 'nowhere'}"


def test_out_that_is_not_a_store_is_refused(tmp_path):
    src = class_folders(tmp_path / "src", per_class=1)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(SpectroError, match="not a spectro store"):
        run(src, tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def _kill_midway(cmd, tmp_path, name):
    """Start ``cmd``, SIGKILL it once it has written images to its temporary store."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    killed = False
    while time.time() < deadline and proc.poll() is None:
        tmps = [p for p in os.listdir(tmp_path) if p.startswith(f".{name}.tmp-")]
        try:  # the temporary store exists a moment before its images file does
            written = os.path.getsize(tmp_path / tmps[0] / "features.npy") if tmps else 0
        except FileNotFoundError:
            written = 0
        if written > 100_000:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    proc.wait()
    assert killed, "preprocess finished before it could be killed; make the test corpus bigger"


@pytest.mark.slow
def test_sigkill_leaves_previous_store_or_none(tmp_path):
    src = tmp_path / "src"
    for c in ("a", "b"):
        (src / c).mkdir(parents=True)
        for k in range(300):
            sf.write(src / c / f"{k}.wav", tone(200 + k, sr=8000, seconds=1.0, noise=0.01, seed=k), 8000)
    heavy = ["--sample-rate", "8000", "--freq-scale", "linear", "--n-fft", "2048", "--hop-length", "16",
             "--workers", "0", "--quiet"]
    base = [sys.executable, "-m", "spectro", "preprocess", str(src)]
    # No previous store: the kill leaves none.
    _kill_midway(base + ["--out", str(tmp_path / "fresh")] + heavy, tmp_path, "fresh")
    assert not os.path.exists(tmp_path / "fresh")
    # A previous store: the kill leaves it exactly as it was.
    run(src, tmp_path / "st")
    before = {f: open(tmp_path / "st" / f, "rb").read() for f in os.listdir(tmp_path / "st")}
    _kill_midway(base + ["--out", str(tmp_path / "st")] + heavy, tmp_path, "st")
    after = {f: open(tmp_path / "st" / f, "rb").read() for f in os.listdir(tmp_path / "st")}
    assert after == before
    assert len(open_store(str(tmp_path / "st"))) == 600
    # The next run cleans the dead run's temporary directory.
    run(src, tmp_path / "st")
    assert [p for p in os.listdir(tmp_path) if p.startswith(".st.tmp-")] == []
