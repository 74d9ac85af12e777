"""Faults and bad inputs on the preprocess/store side: each is skipped with its reason or
stopped with one line, and never leaves a half store.

Covers: huge finite samples, non-finite images, truncated WAVs, damaged stores, a full
disk, bad manifests, NaN and out-of-range options, any CLI options (hypothesis), a closed
pipe, SIGTERM/SIGKILL at random points, file modes under the umask, and two writers.
(Config types: tests/test_config.py; a dying pool worker: tests/utils/test_workers.py.)
"""

import contextlib
import errno
import io
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synth import class_folders, tone

from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.signals.features import SpectrogramImage, compute_images
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store
from spectro.utils.files import exclusive

CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=64, n_mels=32)


def run(src, out, cfg=CFG, **kw):
    kw.setdefault("workers", 0)
    return preprocess(str(src), str(out), config=cfg, progress=False, **kw)


def snapshot(folder) -> dict[str, bytes]:
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


def leftovers(parent, name="st") -> list[str]:
    """Temporary or backup directories of store ``name`` still lying in ``parent``."""
    return [p for p in os.listdir(parent) if p.startswith((f".{name}.tmp-", f".{name}.old-"))]


def one_error_line(capsys_or_text) -> str:
    text = capsys_or_text if isinstance(capsys_or_text, str) else capsys_or_text.readouterr().err
    # The line that says which settings were read from the data is information, not an error.
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("spectro: from the data: ")]
    assert len(lines) == 1 and lines[0].startswith("spectro: error: "), text
    return lines[0]


# -- 1. huge samples, non-finite images --------------------------------------------------


def test_huge_finite_samples_give_the_finite_image_of_a_louder_signal(tmp_path):
    y = tone(440, sr=8000, seconds=0.5)
    d = tmp_path / "src" / "a"
    d.mkdir(parents=True)
    sf.write(d / "normal.wav", y, 8000, subtype="FLOAT")
    sf.write(d / "huge.wav", y * np.float32(1e18), 8000, subtype="FLOAT")
    res = run(tmp_path / "src", tmp_path / "st")
    st_ = open_store(str(tmp_path / "st"))
    assert res.written == 2 and sum(res.skipped.values()) == 0
    images = np.asarray(st_.features, dtype=np.float32)
    assert np.isfinite(images).all()
    huge, normal = images[list(st_.paths).index("a/huge.wav")], images[list(st_.paths).index("a/normal.wav")]
    # 1e18 times the amplitude is 360 dB more power, everywhere (float16 steps are 0.25 dB at 400 dB).
    np.testing.assert_allclose(huge - normal, 360.0, atol=0.5)
    assert st_.meta["finite"] is True
    st_.check_finite()


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_stft_of_float32_max_samples_is_finite_in_db(power):
    y = tone(1000, sr=16000) / 0.5 * np.float32(3e38)  # near float32's largest value
    img = compute_images(y[None], SpectrogramImage(FeatureConfig(power=power)), dtype=np.float32)
    assert np.isfinite(img).all()


def test_non_finite_images_are_skipped_with_reason(tmp_path):
    # Linear power of a full-scale tone (2.6e5) is beyond float16's 65504: an inf image.
    cfg = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=2048, hop_length=256, freq_scale="linear", db=False)
    d = tmp_path / "src" / "a"
    d.mkdir(parents=True)
    sf.write(d / "loud.wav", tone(1000, sr=8000, seconds=0.5, amp=1.0), 8000)
    sf.write(d / "quiet.wav", tone(1000, sr=8000, seconds=0.5, amp=0.01), 8000)
    res = run(tmp_path / "src", tmp_path / "st", cfg=cfg)
    st_ = open_store(str(tmp_path / "st"))
    assert res.written == 1 and res.skipped == {"non-finite image": 1}
    assert [r["reason"].split(":")[0] for r in st_.errors()] == ["non-finite image"]
    assert np.isfinite(np.asarray(st_.features, dtype=np.float32)).all()


def test_check_finite_refuses_a_store_with_nan_images(tmp_path):
    run(class_folders(tmp_path / "src", per_class=2, sr=8000), tmp_path / "st")
    feats = np.load(tmp_path / "st" / "features.npy", mmap_mode="r+")
    feats[3, 0, 0, 0] = np.nan  # as stores written before the fix could hold
    feats.flush()
    del feats
    st_ = open_store(str(tmp_path / "st"))
    # Issue 31 F4: the flag written at commit time is no longer trusted; the block checksums find the change.
    with pytest.raises(SpectroError, match=r"1 of 6 images hold NaN or infinite values.*spectro preprocess"):
        st_.check_finite()
    meta = json.loads((tmp_path / "st" / "config.json").read_text())
    del meta["checksums"]  # an older store with the flag but without checksums is scanned
    (tmp_path / "st" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(SpectroError, match=r"1 of 6 images hold NaN or infinite values"):
        open_store(str(tmp_path / "st")).check_finite()
    meta = json.loads((tmp_path / "st" / "config.json").read_text())
    del meta["finite"]  # an older store, without the flag, is scanned
    (tmp_path / "st" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(SpectroError, match="NaN or infinite"):
        open_store(str(tmp_path / "st")).check_finite()


# -- 2. truncated WAV ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", ".wav"), ("WAV", "FLOAT", ".wav"),
                                             ("AIFF", "PCM_16", ".aiff")])
def test_truncated_file_is_skipped_as_truncated(tmp_path, fmt, subtype, ext):
    d = tmp_path / "src" / "a"
    d.mkdir(parents=True)
    sf.write(d / f"whole{ext}", tone(440, sr=8000, seconds=1.0), 8000, format=fmt, subtype=subtype)
    sf.write(d / f"half{ext}", tone(440, sr=8000, seconds=1.0), 8000, format=fmt, subtype=subtype)
    data = (d / f"half{ext}").read_bytes()
    (d / f"half{ext}").write_bytes(data[: len(data) // 2])  # header says 1 s, the file holds 0.5 s
    res = run(tmp_path / "src", tmp_path / "st", cfg=CFG.replace(duration=1.0))
    reasons = {r["path"]: r["reason"] for r in open_store(str(tmp_path / "st")).errors()}
    assert res.written == 1 and res.skipped == {"truncated": 1}
    assert reasons[f"a/half{ext}"].startswith("truncated: the header announces 8000 frames, the file holds ")


# -- 3. damaged stores -----------------------------------------------------------------------


def _truncate_features(store):
    path = os.path.join(store, "features.npy")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _unknown_label(store):
    path = os.path.join(store, "index.csv")
    text = open(path).read().splitlines()
    head, first = text[0].split(","), text[1].split(",")
    first[head.index("label")] = "nosuchlabel"
    text[1] = ",".join(first)
    open(path, "w").write("\n".join(text) + "\n")


def _drop_row(store):
    path = os.path.join(store, "index.csv")
    lines = open(path).read().splitlines()
    open(path, "w").write("\n".join(lines[:-1]) + "\n")


def _no_labels(store):
    os.remove(os.path.join(store, "labels.json"))


def _bad_type(store):
    path = os.path.join(store, "config.json")
    meta = json.load(open(path))
    meta["feature_config"]["n_fft"] = "big"
    json.dump(meta, open(path, "w"))


@pytest.mark.parametrize("damage,match", [
    (_truncate_features, r"features.npy is \d+ bytes, its header \(6, 1, 32, 63\) needs \d+"),
    (_unknown_label, r"index.csv has labels that labels.json lacks: \['nosuchlabel'\]"),
    (_drop_row, "5 index rows but 6 images"),
    (_no_labels, "labels.json missing"),
    (_bad_type, r"config.json: invalid feature setting: field 'n_fft' must be an integer, got 'big'"),
])
def test_damaged_store_is_one_line_and_preprocess_rebuilds_it(tmp_path, capsys, damage, match):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    run(src, tmp_path / "st")
    good = snapshot(tmp_path / "st")
    damage(str(tmp_path / "st"))
    with pytest.raises(SpectroError, match=match) as err:
        open_store(str(tmp_path / "st"))
    assert f"rebuild it with `spectro preprocess {src} --out {tmp_path / 'st'}`" in str(err.value)
    assert main(["info", str(tmp_path / "st")]) == 2
    assert "is damaged" in one_error_line(capsys)
    # preprocess --out onto it: rebuilt from scratch (nothing reused), and says so.
    res = run(src, tmp_path / "st")
    assert res.reused_files == 0 and res.summary_line().startswith("rebuilt damaged store (")
    rebuilt = snapshot(tmp_path / "st")
    assert {k: v for k, v in rebuilt.items() if k != "config.json"} == {
        k: v for k, v in good.items() if k != "config.json"}


# -- 7. full disk ----------------------------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("point", ["spectro.signals.store.make_temp_dir", "spectro.signals.store.StoreWriter.append",
                                   "spectro.signals.store.write_csv", "spectro.signals.store.write_json"])
def test_full_disk_is_one_line_and_keeps_the_old_store(tmp_path, monkeypatch, capsys, point):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    run(src, tmp_path / "st")
    before = snapshot(tmp_path / "st")
    monkeypatch.setattr(point, _enospc)
    rc = main(["preprocess", src, "--out", str(tmp_path / "st"), "--workers", "0", "--quiet",
               "--sample-rate", "8000", "--n-mels", "24"])  # another config: nothing reusable
    line = one_error_line(capsys)
    assert rc == 2
    assert line.startswith("spectro: error: no space left on /") and line.endswith(
        f"while writing {tmp_path / 'st'}; nothing was changed")
    assert snapshot(tmp_path / "st") == before and leftovers(tmp_path) == []


# -- 8. bad manifests ------------------------------------------------------------------------


def test_manifest_row_without_path_is_skipped_with_reason(tmp_path):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    (tmp_path / "m.csv").write_text("label,path\nlow,low/low_0.wav\nmid\nhigh,high/high_1.wav\n")
    res = run(src, tmp_path / "st", manifest=str(tmp_path / "m.csv"))
    reasons = [r["reason"] for r in open_store(str(tmp_path / "st")).errors()]
    assert res.written == 2 and reasons == ["no path (manifest row 3)"]


def test_manifest_not_utf8_is_one_line(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=1, sr=8000)
    (tmp_path / "m.csv").write_bytes("path,label\nlow/low_0.wav,bas caf\u00e9\n".encode("latin-1"))
    rc = main(["preprocess", src, "--out", str(tmp_path / "st"), "--manifest", str(tmp_path / "m.csv")])
    assert rc == 2 and "is not UTF-8 text (it holds the byte 0xe9); save it as UTF-8" in one_error_line(capsys)


# -- 9. NaN and out-of-range options, wrong types -----------------------------------------


@pytest.mark.parametrize("args,match", [
    (["--duration", "nan"], "field 'duration' must be a finite number, got nan"),
    (["--window", "nan"], "field 'window' must be a finite number or null, got nan"),
    (["--fmax", "nan"], "field 'fmax' must be a finite number or null, got nan"),
    (["--top-db", "nan"], "field 'top_db' must be a finite number or null, got nan"),
    (["--duration", "inf"], "field 'duration' must be a finite number, got inf"),
    (["--n-mels", "1000", "--n-fft", "256", "--sample-rate", "16000"], "746 of 1000 mel bands are empty (bands 0-18, 21-39, "),
    (["--sample-rate", "10000000"], "--sample-rate 10000000 Hz is above 384000 Hz"),
    (["--duration", "100000"], "one image would be 64 x 10000001 pixels"),
    (["--workers", "-3"], "--workers must be 0 or more, got -3"),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, match):
    src = class_folders(tmp_path / "src", per_class=1, sr=8000)
    rc = main(["preprocess", src, "--out", str(tmp_path / "st"), "--quiet"] + args)
    assert rc == 2 and match in one_error_line(capsys)
    assert not os.path.exists(tmp_path / "st")


_OPTION_VALUES = {
    "--sample-rate": ["8000", "16000", "0", "-5", "10000000", "nan", "8k"],
    "--duration": ["0.25", "0.5", "nan", "inf", "-1", "0", "1e-5", "x"],
    "--window": ["0.25", "nan", "0", "-0.1"],
    "--hop": ["0.1", "nan", "0"],
    "--n-fft": ["128", "256", "4", "0", "100000", "1.5"],
    "--hop-length": ["64", "0", "-1", "100000"],
    "--n-mels": ["16", "1", "0", "1000"],
    "--fmin": ["0", "50", "-1", "nan", "5000"],
    "--fmax": ["3000", "nan", "0", "9000"],
    "--top-db": ["60", "nan", "0", "-3", "inf"],
    "--power": ["magnitude", "power", "3", "nan"],
    "--workers": ["0", "-3"],
}


_RUNS = itertools.count()  # not random: hypothesis seeds the random module the same for every example


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("hyp") / "src", per_class=2, sr=8000, seconds=0.3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _OPTION_VALUES.items()}))
def test_any_cli_options_give_a_store_or_one_line(tiny_source, changes):
    out = os.path.join(os.path.dirname(tiny_source), f"st-{next(_RUNS)}")
    args = ["preprocess", tiny_source, "--out", out, "--quiet", "--workers", "0"]
    for k, v in changes.items():
        args += [k, v]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(args)
        except SystemExit as exit_:  # argparse: a value of the wrong type ("8k"), usage and one line
            assert exit_.code == 2 and "error: argument" in err.getvalue()
            return
    if rc == 0:
        st_ = open_store(out)
        st_.check_finite(scan=True)
        # One image per file; with --window, at least one (a final partial window more when half full).
        assert len(st_) == 6 if "--window" not in changes else len(st_) >= 6 and len(set(st_.paths)) == 6
    else:
        assert rc == 2
        one_error_line(err.getvalue())
        assert not os.path.exists(out)


def test_python_m_spectro_empty_bands_is_one_line_without_warnings(tmp_path):
    class_folders(tmp_path / "src", per_class=1, sr=8000)
    proc = subprocess.run([sys.executable, "-m", "spectro", "preprocess", str(tmp_path / "src"), "--out",
                           str(tmp_path / "st"), "--n-mels", "1000", "--n-fft", "256"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    one_error_line(proc.stderr)


# -- 11. pipes and signals -------------------------------------------------------------------


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    run(class_folders(tmp_path / "src", per_class=2, sr=8000), tmp_path / "st")
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line, as `| head -0`
    try:
        proc = subprocess.run([sys.executable, "-m", "spectro", "info", str(tmp_path / "st")], stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141 and proc.stderr == ""


@pytest.fixture(scope="module")
def big_source(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("big") / "src"
    for c in ("a", "b"):
        os.makedirs(root / c)
        for k in range(60):
            sf.write(root / c / f"{k}.wav", tone(200 + 7 * k, sr=8000, seconds=1.0, noise=0.01, seed=k), 8000)
    return str(root)


_HEAVY = ["--sample-rate", "8000", "--freq-scale", "linear", "--n-fft", "2048", "--hop-length", "16", "--duration",
          "0.5", "--quiet"]


def _live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies, dead but not yet reaped, are not)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                pids.append(int(entry))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process groups from /proc")
@pytest.mark.parametrize("seed,sig,workers", [(0, signal.SIGTERM, "2"), (1, signal.SIGKILL, "2"),
                                              (2, signal.SIGTERM, "0")])
def test_signal_at_a_random_point_leaves_the_old_store_or_a_whole_new_one(tmp_path, big_source, seed, sig,
                                                                          workers):
    run(big_source, tmp_path / "st")
    before = snapshot(tmp_path / "st")
    proc = subprocess.Popen([sys.executable, "-m", "spectro", "preprocess", big_source, "--out",
                             str(tmp_path / "st"), "--workers", workers] + _HEAVY,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not leftovers(tmp_path):
        time.sleep(0.005)  # wait until it writes, then strike somewhere in the writing
    time.sleep(random.Random(seed).uniform(0, 0.8))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the whole group, workers included, as a service manager would
    _, err = proc.communicate(timeout=120)
    after = snapshot(tmp_path / "st")
    if after != before:  # struck after the commit: then it must be a whole new store
        open_store(str(tmp_path / "st")).check_finite(scan=True)
    if sig == signal.SIGTERM:
        assert "Traceback" not in err
        if proc.returncode == -signal.SIGTERM:
            # Struck after the command returned (its handler is restored then), while the interpreter exits:
            # the new store was already committed whole (checked above).
            assert after != before and leftovers(tmp_path) == []
        elif proc.returncode != 0:
            assert proc.returncode == 143 and err.strip() == "spectro: terminated; nothing already written was changed"
            assert leftovers(tmp_path) == [] and after == before
    for _ in range(200):  # a moment for the last worker to go
        if not _live_group_members(proc.pid):
            break
        time.sleep(0.01)
    assert _live_group_members(proc.pid) == [], "a worker outlived its killed preprocess"


# -- 12. file modes follow the umask ----------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_store_files_and_folder_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    try:
        run(class_folders(tmp_path / "src", per_class=2, sr=8000), tmp_path / "st")
        with exclusive(str(tmp_path / "st"), what="store") as lock_file:  # the lock file exists while held
            lock_mode = mode(lock_file)
    finally:
        os.umask(old)
    assert mode(tmp_path / "st") == 0o777 & ~mask
    for f in os.listdir(tmp_path / "st"):
        assert mode(tmp_path / "st" / f) == 0o666 & ~mask, f
    assert lock_mode == 0o666 & ~mask
    assert not (tmp_path / ".st.lock").exists()  # and is gone once released


# -- 13. two writers ---------------------------------------------------------------------------


def test_second_writer_is_refused_at_once(tmp_path, capsys):
    from spectro.utils.files import exclusive

    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    run(src, tmp_path / "st")
    before = snapshot(tmp_path / "st")
    with exclusive(str(tmp_path / "st"), what="store"):  # as another process writing it would
        rc = main(["preprocess", src, "--out", str(tmp_path / "st"), "--quiet", "--workers", "0"])
        assert rc == 2
        assert one_error_line(capsys) == (f"spectro: error: another process is writing store {tmp_path / 'st'} "
                                          f"(lock {tmp_path / '.st.lock'})")
        assert snapshot(tmp_path / "st") == before
    run(src, tmp_path / "st")  # released: the next run goes ahead


def test_lock_is_held_across_processes(tmp_path):
    from spectro.utils.files import exclusive

    with exclusive(str(tmp_path / "st"), what="store"):
        code = ("import sys; from spectro.utils.files import exclusive; from spectro.errors import SpectroError\n"
                "try:\n    exclusive(sys.argv[1], what='store').__enter__()\n"
                "except SpectroError as e:\n    print(e); sys.exit(2)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "st")], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2 and "another process is writing store" in proc.stdout
