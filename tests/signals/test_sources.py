"""Discovery of examples in every source layout spectro understands."""

import csv
import os

import numpy as np
import pytest
import soundfile as sf
from synth import class_folders, tone

from spectro.errors import SpectroError
from spectro.signals.sources import array_keys, discover, key_suffix


def wav(path, seconds=0.2, sr=8000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, tone(440, sr=sr, seconds=seconds), sr)


def test_class_folders_recursive(tmp_path):
    class_folders(tmp_path, per_class=2)
    wav(tmp_path / "low" / "deeper" / "x.wav")
    (tmp_path / "low" / "notes.txt").write_text("hi")
    src = discover(str(tmp_path))
    assert src.kind == "folders"
    labels = sorted(it.label for it in src.items)
    assert labels == ["high"] * 2 + ["low"] * 3 + ["mid"] * 2
    assert src.ignored[".txt"] == 1
    assert not src.has_folds


def test_file_outside_class_folder_is_an_error_row(tmp_path):
    class_folders(tmp_path, per_class=1)
    wav(tmp_path / "stray.wav")
    src = discover(str(tmp_path))
    assert [rel for rel, _ in src.errors] == ["stray.wav"]


def test_label_and_group_regex_fsdd_names(tmp_path):
    for name in ["7_jackson_32.wav", "7_nicolas_1.wav", "3_jackson_0.wav", "readme_x.wav"]:
        wav(tmp_path / name)
    src = discover(str(tmp_path), label_regex=r"^(\d)_", group_regex=r"^\d_([a-z]+)_")
    got = sorted((it.label, it.group) for it in src.items)
    assert got == [("3", "jackson"), ("7", "jackson"), ("7", "nicolas")]
    assert [r for r, why in src.errors] == ["readme_x.wav"]


def test_bad_regex_is_one_clear_error(tmp_path):
    class_folders(tmp_path, per_class=1)
    with pytest.raises(SpectroError, match="--label-regex"):
        discover(str(tmp_path), label_regex="(unclosed")


def test_manifest_with_folds_groups_and_bad_rows(tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "sub" / "b.wav")
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "cls", "split", "who"])
        w.writerow(["a.wav", "dog", "train", "s1"])
        w.writerow([str(tmp_path / "sub" / "b.wav"), "cat", "test", "s2"])
        w.writerow(["missing.wav", "cat", "test", "s2"])
        w.writerow(["a.wav", "", "train", "s1"])
    src = discover(str(tmp_path), manifest=str(tmp_path / "m.csv"), path_col="file", label_col="cls",
                   fold_col="split", group_col="who")
    assert [(it.label, it.fold, it.group) for it in src.items] == [("dog", 2, "s1"), ("cat", 1, "s2")]
    assert src.fold_names == {1: "test", 2: "train"}
    assert sorted(why.split(" (")[0] for _, why in src.errors) == ["file not found", "no label"]


def test_manifest_without_named_column(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\na.wav,x\n")
    with pytest.raises(SpectroError, match="no column 'category'"):
        discover(str(tmp_path), manifest=str(tmp_path / "m.csv"), label_col="category")


def test_esc50_layout_is_recognised(tmp_path):
    os.makedirs(tmp_path / "meta")
    rows = [("1-100-A-0.wav", 1, 0, "dog", "True", 100, "A"), ("2-200-A-1.wav", 2, 1, "rooster", "True", 200, "A")]
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    for r in rows:
        wav(tmp_path / "audio" / r[0])
    src = discover(str(tmp_path))
    assert src.kind == "esc50" and src.has_folds
    assert [(it.label, it.fold, it.group) for it in src.items] == [("dog", 1, "100"), ("rooster", 2, "200")]


def test_urbansound8k_layout_is_recognised(tmp_path):
    os.makedirs(tmp_path / "metadata")
    with open(tmp_path / "metadata" / "UrbanSound8K.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"])
        w.writerow(["100032-3-0-0.wav", 100032, 0, 0.3, 1, 5, 3, "dog_bark"])
        w.writerow(["100263-2-0-117.wav", 100263, 58.5, 62.5, 1, 10, 2, "children_playing"])
    wav(tmp_path / "audio" / "fold5" / "100032-3-0-0.wav")
    wav(tmp_path / "audio" / "fold10" / "100263-2-0-117.wav")
    src = discover(str(tmp_path))
    assert src.kind == "urbansound8k"
    assert [(it.label, it.fold, it.group) for it in src.items] == [("dog_bark", 5, "100032"),
                                                                    ("children_playing", 10, "100263")]


def test_speech_commands_lists_become_folds(tmp_path):
    for rel in ["yes/aa_nohash_0.wav", "yes/bb_nohash_0.wav", "no/aa_nohash_1.wav", "no/cc_nohash_0.wav",
                "_background_noise_/white.wav"]:
        wav(tmp_path / rel)
    (tmp_path / "validation_list.txt").write_text("yes/bb_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("no/cc_nohash_0.wav\n")
    src = discover(str(tmp_path))
    assert src.kind == "speech_commands"
    got = {it.rel: (it.label, it.fold, it.group) for it in src.items}
    assert got == {
        os.path.join("no", "aa_nohash_1.wav"): ("no", 1, "aa"),
        os.path.join("no", "cc_nohash_0.wav"): ("no", 3, "cc"),
        os.path.join("yes", "aa_nohash_0.wav"): ("yes", 1, "aa"),
        os.path.join("yes", "bb_nohash_0.wav"): ("yes", 2, "bb"),
    }
    assert src.fold_names[3] == "test"


def test_npz_bundle_and_npy_in_class_folders(tmp_path):
    np.savez(tmp_path / "set.npz", X=np.zeros((4, 100)), y=np.array(["a", "b", "a", "b"]), folds=[1, 1, 2, 2])
    src = discover(str(tmp_path / "set.npz"))
    assert [(it.label, it.fold, it.key) for it in src.items] == [("a", 1, ("X", 0)), ("b", 1, ("X", 1)),
                                                                  ("a", 2, ("X", 2)), ("b", 2, ("X", 3))]
    os.makedirs(tmp_path / "f" / "pump")
    np.save(tmp_path / "f" / "pump" / "run1.npy", np.zeros((3, 50)))
    np.save(tmp_path / "f" / "pump" / "run2.npy", np.zeros(50))
    src = discover(str(tmp_path / "f"))
    assert [it.rel.replace(os.sep, "/") for it in src.items] == [
        "pump/run1.npy[0]", "pump/run1.npy[1]", "pump/run1.npy[2]", "pump/run2.npy"]


def test_signals_inside_array_files_and_their_names(tmp_path):
    # Every array of a .npz is a signal (a 2-D one, one per row); a .npz of signals and labels,
    # wherever it lies, gives the rows of its signals only: its labels are not a signal.
    np.savez(tmp_path / "mixed.npz", a=np.zeros(50), b=np.zeros((2, 50)))
    np.savez(tmp_path / "set.npz", X=np.zeros((2, 50)), y=np.array([1, 2]))
    np.save(tmp_path / "rows.npy", np.zeros((2, 50)))
    assert array_keys(str(tmp_path / "mixed.npz")) == [("a", None), ("b", 0), ("b", 1)]
    assert array_keys(str(tmp_path / "set.npz")) == [("X", 0), ("X", 1)]
    assert array_keys(str(tmp_path / "rows.npy")) == [("", 0), ("", 1)]
    keys = [("a", None), ("b", 1), ("", 1), ("", None), None]
    assert [key_suffix(k) for k in keys] == ["#a", "#b[1]", "[1]", "", ""]
    (tmp_path / "f" / "c").mkdir(parents=True)
    os.replace(tmp_path / "set.npz", tmp_path / "f" / "c" / "set.npz")
    rels = [it.rel.replace(os.sep, "/") for it in discover(str(tmp_path / "f")).items]
    assert rels == ["c/set.npz#X[0]", "c/set.npz#X[1]"]


def test_npz_without_labels_is_refused(tmp_path):
    np.savez(tmp_path / "set.npz", X=np.zeros((4, 100)))
    with pytest.raises(SpectroError, match="'y'"):
        discover(str(tmp_path / "set.npz"))


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "source not found"),
    (lambda p: os.makedirs(p), "no signal files"),
])
def test_unusable_sources(tmp_path, make, match):
    p = tmp_path / "src"
    make(p)
    with pytest.raises(SpectroError, match=match):
        discover(str(p))
