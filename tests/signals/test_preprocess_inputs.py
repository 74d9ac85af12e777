"""Stores from vibration files (.mat, CSV), from pictures and 2-D arrays; rates, folds by condition, bad inputs."""

import json
import os

import numpy as np
import pytest
from input_files import class_signal, cwru, mat_v5, picture, spectrogram_like
from PIL import Image

from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.signals import matfiles
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store

CLASSES = ("normal", "inner", "outer")
KW = dict(n_fft=128, hop_length=64, n_mels=16)


def bearings(root, *, loads=(0, 1, 2), v73=False):
    """``root/<class>/<class>_<load>HP.mat``: Case Western style files, 2 s at 8 kHz, one per class and load."""
    number = 97
    for c, name in enumerate(CLASSES):
        for load in loads:
            cwru(os.path.join(root, name, f"{name}_{load}HP.mat"), class_signal(c, load), number=number, v73=v73)
            number += 1
    return str(root)


def test_mat_files_with_windows_and_folds_from_the_path(tmp_path, capsys):
    src = bearings(tmp_path / "src", v73=False)
    cwru(tmp_path / "src" / "outer" / "outer_3HP.mat", class_signal(2, 3), number=200, v73=True)  # one v7.3 file
    res = preprocess(src, str(tmp_path / "st"), config={"sample_rate": 8000, "mat_key": "_DE_time$", "window": 0.5,
                                                        "window_hop": 0.25, **KW},
                     fold_regex=r"_(\d)HP", workers=0, progress=False)
    st = open_store(str(tmp_path / "st"))
    assert res.written == len(st) == 10 * 7  # 7 windows of 0.5 s every 0.25 s in 2 s, 10 files
    assert "windows per class: inner 21, normal 21, outer 28" in res.summary_line()
    assert sorted(set(st.folds.tolist())) == [0, 1, 2, 3]
    for path in set(st.paths):  # every window of a recording: one fold, one group
        rows = st.paths == path
        assert len(set(st.folds[rows])) == 1 and len(set(st.groups[rows])) == 1
        assert st.folds[rows][0] == int(path.split("_")[-1][0])
    assert st.meta["folds"]["from_source"] is True and st.config.mat_key == "_DE_time$"


@pytest.mark.parametrize("options", [{}, {"manifest": True}])
def test_files_without_a_rate_need_one_said_in_one_line(tmp_path, options):
    src = bearings(tmp_path / "src")
    kw = {}
    if options.get("manifest"):
        (tmp_path / "m.csv").write_text("path,label\n" + "".join(
            f"{c}/{c}_{k}HP.mat,{c}\n" for c in CLASSES for k in range(3)))
        kw = {"manifest": str(tmp_path / "m.csv")}
    with pytest.raises(SpectroError, match=r"9 file\(s\) of samples carry no sample rate \(inner/inner_0HP.mat, "
                                           r"inner/inner_1HP.mat and 7 more\): give --sample-rate HZ"):
        preprocess(src, str(tmp_path / "st"), config={"mat_key": "DE"}, workers=0, progress=False, **kw)
    assert not os.path.exists(tmp_path / "st")


def test_npy_signals_are_not_silently_16k(tmp_path, capsys):
    for c, name in enumerate(CLASSES):
        os.makedirs(tmp_path / "src" / name)
        for k in range(2):
            np.save(tmp_path / "src" / name / f"{k}.npy", class_signal(c, k))
    with pytest.raises(SpectroError, match="carry no sample rate .*give --sample-rate HZ"):
        preprocess(str(tmp_path / "src"), str(tmp_path / "st"), workers=0, progress=False)
    res = preprocess(str(tmp_path / "src"), str(tmp_path / "st"), config={"sample_rate": 8000, "window": 0.5},
                     workers=0, progress=False)
    assert res.written == 6 * 4  # 2 s at 8 kHz in 0.5 s windows; at a silent 16 kHz it would be 6 x 2
    assert "at 8000 Hz" in capsys.readouterr().err  # the inferred-settings line names the rate


def test_a_manifest_rate_column_and_fold_column(tmp_path):
    src = tmp_path / "src"
    rows = []
    for c, name in enumerate(CLASSES):
        for k, rate in enumerate((8000, 4000)):
            y = class_signal(c, k, sr=rate)
            mat_v5(src / f"{name}{k}.mat", {"acc": y[:, None]})
            rows.append(f"{name}{k}.mat,{name},{rate},{k + 1}")
    (tmp_path / "m.csv").write_text("path,label,rate,fold\n" + "\n".join(rows) + "\n")
    res = preprocess(str(src), str(tmp_path / "st"), config={"window": 0.5, **KW}, manifest=str(tmp_path / "m.csv"),
                     rate_col="rate", fold_col="fold", workers=0, progress=False)
    st = open_store(str(tmp_path / "st"))
    assert st.config.sample_rate == 8000 and res.written == 6 * 4  # the 4 kHz files resampled: 2 s each
    assert sorted(set(st.folds.tolist())) == [1, 2]


def test_csv_sensor_files(tmp_path):
    for c, name in enumerate(CLASSES):
        for k in range(2):
            y = class_signal(c, k, seconds=1.0)
            os.makedirs(tmp_path / "src" / name, exist_ok=True)
            (tmp_path / "src" / name / f"{k}.csv").write_text(
                "time,ax,ay\n" + "".join(f"{i / 8000:.5f},{v:.6f},{v:.6f}\n" for i, v in enumerate(y)))
    (tmp_path / "src" / "outer" / "bad.csv").write_text("time,ax,ay\n0,0.1,0.1\n0.1,0.2,text\n")
    res = preprocess(str(tmp_path / "src"), str(tmp_path / "st"), config={"sample_rate": 8000, "duration": 1.0,
                                                                          "channels": "ay", **KW},
                     workers=0, progress=False)
    assert res.written == 6
    [err] = open_store(str(tmp_path / "st")).errors()
    assert err["path"] == os.path.join("outer", "bad.csv")
    assert err["reason"] == "text in the column of samples 'ay': 'text' at line 3 (1 such cells)"


def test_bad_signal_files_are_rows_of_errors_csv_and_the_run_goes_on(tmp_path, monkeypatch):
    src = bearings(tmp_path / "src")
    bad = tmp_path / "src" / "normal"
    mat_v5(bad / "rpm_only.mat", {"X1RPM": np.array([[1797.0]])})
    mat_v5(bad / "matrix.mat", {"X2_DE_time": np.ones((64, 600))})
    cwru(bad / "v73.mat", class_signal(0, 9), number=300, v73=True)
    (bad / "text.csv").write_text("acc\n0.1\nhello\n")
    (bad / "junk.mat").write_bytes(b"\x01" * 200)
    monkeypatch.setattr(matfiles, "h5py", None)  # v7.3 without h5py
    preprocess(src, str(tmp_path / "st"), config={"sample_rate": 8000, "mat_key": "_DE_time$", "duration": 1.0,
                                                  **KW}, workers=0, progress=False)
    st = open_store(str(tmp_path / "st"))
    reasons = {os.path.basename(r["path"]): r["reason"] for r in st.errors()}
    assert reasons["rpm_only.mat"].startswith("no variable matches --mat-key '_DE_time$' (variables: X1RPM 1x1)")
    assert reasons["matrix.mat"].startswith("--mat-key '_DE_time$' matches no numeric 1-D array, only "
                                            "X2_DE_time 64x600 (wrong rank")
    assert "h5py is not installed" in reasons["v73.mat"]
    assert reasons["text.csv"].startswith("text in the column of samples 'acc': 'hello' at line 3")
    assert reasons["junk.mat"].startswith("cannot read .mat file")
    assert len(st) == 9 and not any("rpm_only" in p or "matrix" in p for p in st.paths)


def test_column_vectors_are_one_signal_and_split_rows_are_said(tmp_path, capsys):
    src = tmp_path / "src"
    for c, name in enumerate(CLASSES):
        os.makedirs(src / name)
        for k in range(2):
            np.save(src / name / f"col{k}.npy", class_signal(c, k)[:, None])  # (16000, 1): what loadmat gives
    np.save(src / "outer" / "rows.npy", np.stack([class_signal(2, k, seconds=0.075) for k in range(4)]))  # (4, 600)
    res = preprocess(str(src), str(tmp_path / "st"), config={"sample_rate": 8000, "duration": 2.0, **KW},
                     workers=0, progress=False)
    assert res.written == 6 + 4
    err = capsys.readouterr().err
    assert "outer/rows.npy: a 4 x 600 array is read as 4 signals of 600 samples, one per row" in err


def test_all_inputs_skipped_is_a_readable_count(tmp_path):
    os.makedirs(tmp_path / "src" / "a")
    np.save(tmp_path / "src" / "a" / "short.npy", np.ones((64, 100)))
    with pytest.raises(SpectroError) as err:
        preprocess(str(tmp_path / "src"), str(tmp_path / "st"), config={"sample_rate": 8000, **KW},
                   workers=0, progress=False)
    text = str(err.value)
    assert "all 64 inputs were skipped (too short: 64); the first, a/short.npy[0]: too short: 100 samples" in text
    assert "[(" not in text


def test_a_source_mixing_signals_and_images_stops_at_once(tmp_path):
    src = bearings(tmp_path / "src")
    picture(tmp_path / "src" / "normal" / "x.png", spectrogram_like(0, 0))
    with pytest.raises(SpectroError, match=r"mixes signals \(9 \.mat\) and images \(1 \.png\): one store holds "
                                           r"one kind"):
        preprocess(src, str(tmp_path / "st"), config={"sample_rate": 8000}, workers=0, progress=False)


def pictures(root, cmap="magma", per_class=4, loads=(0, 1)):
    for c, name in enumerate(CLASSES):
        for load in loads:
            for k in range(per_class):
                picture(os.path.join(root, name, f"{name}_{load}HP_{k}.png"), spectrogram_like(c, 10 * load + k),
                        cmap)
    return str(root)


def test_a_store_of_pictures(tmp_path, capsys):
    src = pictures(tmp_path / "src")
    bad = tmp_path / "src" / "inner"
    (bad / "trunc_0HP.png").write_bytes((bad / "inner_0HP_0.png").read_bytes()[:300])
    Image.new("CMYK", (40, 32)).save(bad / "cmyk_0HP.tiff")
    picture(bad / "big_0HP.png", spectrogram_like(1, 99, shape=(40, 50)), "magma")
    picture(bad / "nofold.png", spectrogram_like(1, 98), "magma")
    res = preprocess(src, str(tmp_path / "st"), fold_regex=r"_(\d)HP", workers=0, progress=False)
    err = capsys.readouterr().err
    assert "colormap=magma (0.0 % of the pixels of 7 sampled colour pictures are off its colours" in err
    assert "note" not in err, err
    assert "image_size=32x40 (26 of 27 sampled images" in err
    st = open_store(str(tmp_path / "st"))
    assert res.written == len(st) == 24 and st.image_shape == (1, 32, 40)
    reasons = {os.path.basename(r["path"]): r["reason"] for r in st.errors()}
    assert reasons["trunc_0HP.png"].startswith("truncated")
    assert reasons["cmyk_0HP.tiff"].startswith("unreadable mode 'CMYK'")
    assert reasons["big_0HP.png"].startswith("other size: 40 x 50 pixels, the store's images are 32 x 40")
    assert reasons["nofold.png"] == "path does not match --fold-regex"
    with open(tmp_path / "st" / "config.json") as f:
        fc = json.load(f)["feature_config"]
    assert fc == {"input": "image", "colormap": "magma", "crop_box": None, "image_size": [32, 40], "resize": False}
    # The images are the inverted intensities, row 0 the lowest frequency: class c's band sits at row 6 + 10 c.
    for c, name in enumerate(st.labels):
        profile = np.asarray(st.features[st.y == c], np.float32).mean(axis=(0, 1, 3))
        assert abs(int(np.argmax(profile)) - (6 + 10 * CLASSES.index(name))) <= 1
    assert sorted(set(st.folds.tolist())) == [0, 1]


def test_pictures_resized_to_one_size(tmp_path, capsys):
    src = pictures(tmp_path / "src", cmap="gray", per_class=2, loads=(0,))
    picture(tmp_path / "src" / "inner" / "big.png", spectrogram_like(1, 99, shape=(40, 50)), "gray")
    res = preprocess(src, str(tmp_path / "st"), config={"image_size": (16, 20)}, workers=0, progress=False)
    st = open_store(str(tmp_path / "st"))
    assert res.written == 7 and st.image_shape == (1, 16, 20) and st.config.resize is True


def test_arrays_of_images_with_input_image(tmp_path):
    for c, name in enumerate(CLASSES):
        os.makedirs(tmp_path / "src" / name)
        np.save(tmp_path / "src" / name / "many.npy", np.stack([spectrogram_like(c, k) for k in range(3)]))  # N F T
        np.save(tmp_path / "src" / name / "one.npy", spectrogram_like(c, 9))  # F x T
    np.save(tmp_path / "src" / "outer" / "flat.npy", np.ones(40))  # wrong rank
    res = preprocess(str(tmp_path / "src"), str(tmp_path / "st"), config={"input": "image"}, workers=0,
                     progress=False)
    st = open_store(str(tmp_path / "st"))
    assert res.written == 12 and st.image_shape == (1, 32, 40)
    row = list(st.ids).index(os.path.join("normal", "many.npy[2]") + "@0")
    np.testing.assert_allclose(np.asarray(st.features[row, 0], np.float32), spectrogram_like(0, 2), atol=1e-3)
    [err] = st.errors()
    assert err["reason"].startswith("array is not a 2-D image (shape 40")


def test_info_shows_classes_per_fold_and_an_empty_one(tmp_path, capsys):
    src = bearings(tmp_path / "src")
    os.remove(tmp_path / "src" / "outer" / "outer_2HP.mat")
    preprocess(src, str(tmp_path / "st"), config={"sample_rate": 8000, "mat_key": "DE", "window": 0.5, **KW},
               fold_regex=r"_(\d)HP", workers=0, progress=False)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "fold 0  fold 1  fold 2" in out
    assert "WARNING: class 'outer' has no examples in fold 2" in out
