"""Issue 31 F3, F4, F8: a store whose images or index changed after it was written is found out, in one line."""

import csv
import json
import shutil
import zlib

import numpy as np
import pytest
from synth import tiny_store

from spectro.cli.main import main
from spectro.errors import SpectroError, StoreDamaged
from spectro.signals.store import BlockChecksums, open_store
from spectro.training.evaluate import evaluate
from spectro.training.train import train

FAST = dict(device="cpu", progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("integrity"))


@pytest.fixture(scope="module")
def svm_run(store, tmp_path_factory):
    return train(store, "svm", str(tmp_path_factory.mktemp("svm") / "run"), **FAST).path


def _copy(store, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(store, out)
    return out


def _overwrite(store_dir, row, values):
    feats = np.load(store_dir / "features.npy", mmap_mode="r+")
    feats[row] = values
    feats.flush()
    del feats


def test_block_checksums_do_not_depend_on_how_rows_were_appended():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((10, 1, 4, 4)).astype(np.float16)  # 32 bytes a row
    one, pieces = BlockChecksums(32), BlockChecksums(32)
    one.block_rows = pieces.block_rows = 4  # blocks of rows 0-3, 4-7, 8-9
    one.update(images)
    for a, b in [(0, 3), (3, 5), (5, 10)]:
        pieces.update(images[a:b])
    assert one.record() == pieces.record()
    assert one.record()["blocks"] == [zlib.crc32(images[i:i + 4].tobytes()) for i in (0, 4, 8)]


def test_finite_noise_in_one_image_is_found_before_training(store, tmp_path, capsys):
    """F3: one image overwritten with N(0, 1000) noise trained silently."""
    bad = _copy(store, tmp_path)
    shape = np.load(bad / "features.npy", mmap_mode="r").shape[1:]
    _overwrite(bad, 5, np.random.default_rng(0).normal(0, 1000, shape).astype(np.float16))
    with pytest.raises(StoreDamaged, match=r"features.npy changed since it was written \(1 of 1 blocks"):
        train(str(bad), "cnn", str(tmp_path / "run"), epochs=1, batch_size=8, **FAST)
    assert not (tmp_path / "run").exists()  # nothing that blocks the next train
    capsys.readouterr()
    assert main(["info", str(bad), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed since it was written" in err and "spectro preprocess" in err
    assert main(["info", store, "--verify"]) == 0
    assert "match their checksums" in capsys.readouterr().out


def test_nan_in_features_is_one_line_in_train_evaluate_and_compare(store, svm_run, tmp_path, capsys):
    """F4: a traceback in train (and a run left that blocked the next), "failed: ValueError" in compare."""
    bad = _copy(store, tmp_path)
    _overwrite(bad, 2, np.nan)
    out = tmp_path / "run"
    for argv in (["train", str(bad), "--model", "cnn", "--epochs", "1", "--out", str(out), "--quiet"],
                 ["evaluate", svm_run, "--split", "all", "--store", str(bad), "--no-write"],
                 ["compare", str(bad), "--models", "svm", "--out", str(tmp_path / "cmp"), "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "1 of 36 images hold NaN or infinite values" in err, (argv, err)
    assert not out.exists() and not (tmp_path / "cmp" / "report.md").exists()
    with pytest.raises(SpectroError, match="NaN"):
        evaluate(svm_run, "all", str(bad), write=False)


def test_an_older_store_without_checksums_still_opens_and_says_so(store, tmp_path, capsys):
    old = _copy(store, tmp_path)
    meta = json.loads((old / "config.json").read_text())
    del meta["checksums"], meta["fold_ids"]
    (old / "config.json").write_text(json.dumps(meta))
    st = open_store(str(old))
    assert not st.has_checksums
    st.check_finite()  # scanned for NaN and Inf
    assert "has no checksums" in capsys.readouterr().err
    assert main(["info", str(old)]) == 0
    assert "checksums  none" in capsys.readouterr().out
    with pytest.raises(StoreDamaged, match="no checksums to verify"):
        st.verify()


def _edit_index(store_dir, edit):
    path = store_dir / "index.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    edit(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[4].update(fold="99"), r"row 6 .* has fold 99, which the store's folds \[1, 2, 3, 4, 5\]"),
    (lambda rows: rows[7].update(id=rows[3]["id"]), r"has the id .* twice \(rows 5 and 9\)"),
    (lambda rows: rows[0].update(end="nan"), r"row 2 .* not a finite number"),
])
def test_an_edited_index_is_refused_on_open(store, tmp_path, capsys, edit, message):
    """F8: fold 99 made a test set of one example; a duplicated id was accepted."""
    bad = _copy(store, tmp_path)
    _edit_index(bad, edit)
    with pytest.raises(StoreDamaged, match=message):
        open_store(str(bad))
    assert main(["info", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_older_store_without_fold_ids_checks_its_folds_against_k(store, tmp_path):
    old = _copy(store, tmp_path)
    meta = json.loads((old / "config.json").read_text())
    del meta["fold_ids"]
    (old / "config.json").write_text(json.dumps(meta))
    _edit_index(old, lambda rows: rows[4].update(fold="6"))
    with pytest.raises(StoreDamaged, match="has fold 6"):
        open_store(str(old))
