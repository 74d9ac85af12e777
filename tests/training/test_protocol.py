"""The accuracy protocol: validation never shares a group, the SVM trains on every non-test row."""

import csv
import os

import pytest
from synth import TINY_CFG, class_folders

from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store
from spectro.training.train import train

FAST = dict(batch_size=4, device="cpu", progress=False)


def _roles(run_dir):
    with open(run_dir / "split.csv", newline="") as f:
        return {r["id"]: r["role"] for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def grouped_store(tmp_path_factory):
    """3 classes x 16 files; file k of every class is "speaker" k (16 groups, all classes each)."""
    root = tmp_path_factory.mktemp("grouped")
    src = class_folders(os.path.join(root, "src"), per_class=16, sr=8000)
    out = os.path.join(root, "store")
    preprocess(src, out, config=TINY_CFG, workers=0, progress=False, group_regex=r"_(\d+)\.wav$")
    return out


def test_validation_never_shares_a_group_with_training_or_test(grouped_store, tmp_path):
    store = grouped_store
    st = open_store(store)
    run = train(store, "cnn", str(tmp_path / "run"), epochs=1, min_holdout=0, **FAST)
    roles = _roles(tmp_path / "run")
    group_of = dict(zip(st.ids.tolist(), st.groups.tolist()))
    by_role = {role: {group_of[i] for i, r in roles.items() if r == role} for role in ("train", "val", "test")}
    assert len(set(st.groups.tolist())) == 16
    assert by_role["val"], "a hold-out validation set is expected with min_holdout=0"
    assert not (by_role["val"] & by_role["train"]) and not (by_role["val"] & by_role["test"])
    assert run.info["folds"]["val"] is None  # no whole fold spent on validation


def test_small_training_sets_train_on_every_row_and_say_why(grouped_store, tmp_path, capsys):
    # 32 training clips: a 12.5 % hold-out would be 4 clips, far below MIN_HOLDOUT: no hold-out.
    run = train(grouped_store, "cnn", str(tmp_path / "run"), epochs=1, **{**FAST, "progress": True})
    roles = _roles(tmp_path / "run")
    assert "val" not in roles.values() and run.info["examples"]["val"] == 0
    assert run.info["examples"]["train"] == sum(r == "train" for r in roles.values()) > 0
    out = capsys.readouterr()
    assert "fewer than 100 (--min-holdout)" in out.out + out.err


def test_svm_sees_every_non_test_row(grouped_store, tmp_path):
    store = grouped_store
    st = open_store(store)
    run = train(store, "svm", str(tmp_path / "svm"), **FAST)
    roles = _roles(tmp_path / "svm")
    test_fold = run.info["folds"]["test"]
    non_test = {i for i, f in zip(st.ids.tolist(), st.folds.tolist()) if f != test_fold}
    assert {i for i, r in roles.items() if r == "train"} == non_test
    assert run.info["examples"]["val"] == 0
