"""predict on vibration files (.mat, CSV), on pictures and 2-D arrays: the store's images, bit for bit; column
vectors in memory; and the end-to-end command line from .mat files with windows and folds by load to a PNG."""

import os

import numpy as np
import pytest
from input_files import class_signal, cwru, picture, spectrogram_like

import spectro
from spectro.cli.main import main
from spectro.errors import SpectroError
from spectro.inference.predict import load
from spectro.signals.store import open_store
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ("normal", "inner", "outer")
KW = dict(n_fft=128, hop_length=64, n_mels=16)


def _bearings(root, loads=(0, 1, 2, 3)):
    for c, name in enumerate(CLASSES):
        for hp in loads:
            cwru(os.path.join(root, name, f"{name}_{hp}HP.mat"), class_signal(c, hp), number=100 + 10 * c + hp,
                 v73=hp == 3)
    return str(root)


@pytest.fixture(scope="module")
def vibration(tmp_path_factory):
    root = tmp_path_factory.mktemp("vib")
    src = _bearings(root / "src")
    spectro.preprocess(src, str(root / "store"), config={"sample_rate": 8000, "mat_key": "_DE_time$", "window": 0.5,
                                                        "window_hop": 0.5, **KW},
                       fold_regex=r"_(\d)HP", workers=0, progress=False)
    train(str(root / "store"), "svm", str(root / "svm"), progress=False)
    return root


def test_a_mat_file_gives_its_store_rows(vibration):
    store = open_store(str(vibration / "store"))
    predictor = load(str(vibration / "svm"))
    for rel in ("inner/inner_1HP.mat", "outer/outer_3HP.mat"):  # v5 and v7.3
        images, bounds = predictor.images(str(vibration / "src" / rel))
        rows = np.flatnonzero(store.paths == rel)
        np.testing.assert_array_equal(images, np.asarray(store.features[rows]))
        np.testing.assert_allclose(bounds[:, 0], store.starts[rows])
    [r] = predictor.predict_files([str(vibration / "src" / "outer/outer_3HP.mat")], workers=0)
    assert r.windowed and r.window_proba.shape == (4, 3)


def test_column_vectors_in_memory_are_one_signal(vibration):
    predictor = load(str(vibration / "svm"))
    y = class_signal(1, 0)
    a = predictor.predict_proba(y[:, None], sample_rate=8000)  # (n, 1), as loadmat gives it
    np.testing.assert_array_equal(a, predictor.predict_proba(y, sample_rate=8000))
    assert predictor.predict(y[None, :], sample_rate=8000) == predictor.predict(y, sample_rate=8000)
    rows = predictor.predict(np.stack([class_signal(c, 0) for c in range(3)]), sample_rate=8000)  # (3, n): 3 signals
    assert len(rows) == 3
    with pytest.raises(SpectroError, match="an array needs sample_rate="):
        predictor.predict(y[:, None])


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pics")
    for c, name in enumerate(CLASSES):
        for k in range(6):
            picture(root / "src" / name / f"{name}_{k % 2}HP_{k}.png", spectrogram_like(c, k), "inferno")
    spectro.preprocess(str(root / "src"), str(root / "store"), fold_regex=r"_(\d)HP", workers=0, progress=False)
    train(str(root / "store"), "svm", str(root / "svm"), progress=False)
    return root


def test_a_picture_gives_its_store_row_and_arrays_are_images(pictures):
    store = open_store(str(pictures / "store"))
    predictor = load(str(pictures / "svm"))
    assert predictor.feature_config.is_image and predictor.feature_config.colormap == "inferno"
    path = pictures / "src" / "outer" / "outer_1HP_3.png"
    images, _ = predictor.images(str(path))
    np.testing.assert_array_equal(images, np.asarray(store.features[store.paths == "outer/outer_1HP_3.png"]))
    assert predictor.predict(str(path)) == "outer"
    row = np.asarray(store.features[store.paths == "inner/inner_0HP_2.png"][0, 0], np.float32)
    np.testing.assert_array_equal(predictor.predict_proba(row), predictor.predict_proba(str(path).replace(
        "outer/outer_1HP_3", "inner/inner_0HP_2")))
    assert predictor.predict(np.stack([row, row])) == ["inner", "inner"]  # (N, F, T): N images
    with pytest.raises(SpectroError, match="no seconds to slide along"):
        predictor.predict(str(path), window=1.0)


def test_a_picture_of_another_kind_gets_its_reason(pictures, tmp_path):
    predictor = load(str(pictures / "svm"))
    picture(tmp_path / "v.png", spectrogram_like(0, 0), "viridis")
    picture(tmp_path / "big.png", spectrogram_like(0, 0, shape=(20, 20)), "inferno")
    results = {os.path.basename(r.source): r.error for r in predictor.predict_files(
        spectro.find_inputs([str(tmp_path)], images=True), workers=0)}
    assert results["v.png"].endswith("or give the --colormap it was drawn with")
    assert results["big.png"].startswith("other size: 20 x 20 pixels, the store's images are 32 x 40")


def test_end_to_end_command_line(tmp_path, capsys):
    """preprocess .mat files with windows and --fold-regex, train an SVM, predict on a .mat file and on a PNG."""
    src = _bearings(tmp_path / "src")
    assert main(["preprocess", src, "--out", str(tmp_path / "vib"), "--sample-rate", "8000", "--mat-key",
                 "_DE_time$", "--window", "0.5", "--hop", "0.25", "--fold-regex", r"_(\d)HP", "--n-fft", "128",
                 "--hop-length", "64", "--n-mels", "16", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "wrote 84 images from 12 files (3 classes)" in out and "windows per class: inner 28, normal 28, outer 28" in out
    assert main(["train", str(tmp_path / "vib"), "--model", "svm", "--out", str(tmp_path / "svm"), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out  # test fold: load 3
    assert main(["predict", str(tmp_path / "svm"), str(tmp_path / "src" / "inner" / "inner_3HP.mat"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "inner_3HP.mat  inner" in out
    # Pictures: the same recordings drawn as PNGs elsewhere, a store of them, predict on one.
    store = open_store(str(tmp_path / "vib"))
    for r in range(0, len(store), 2):
        name = f"{os.path.basename(store.paths[r])[:-4]}_{r}.png"
        picture(tmp_path / "png" / store.labels[store.y[r]] / name, np.asarray(store.features[r, 0], np.float32),
                "viridis")
    assert main(["preprocess", str(tmp_path / "png"), "--out", str(tmp_path / "pics"), "--fold-regex", r"_(\d)HP",
                 "--quiet"]) == 0
    assert "colormap=viridis" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "pics"), "--model", "svm", "--out", str(tmp_path / "psvm"), "--quiet"]) == 0
    capsys.readouterr()
    png = sorted((tmp_path / "png" / "outer").iterdir())[0]
    assert main(["predict", str(tmp_path / "psvm"), str(png), "--quiet"]) == 0
    assert f"{png}  outer" in capsys.readouterr().out
