"""What ``preprocess`` may replace, and inputs that must not crash it.

``--out`` is replaced only when it is absent, empty or a store holding only
its own files (issue 22 D10); a non-UTF-8 file name is reported, not a crash
(D14); a source whose group rule gives one group is named at once (D11).
"""

import os

import numpy as np
import pytest
from synth import class_folders

from spectro.cli.main import main
from spectro.config import FeatureConfig
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store

CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=64, n_mels=32)
CLI_CFG = ["--sample-rate", "8000", "--duration", "0.5", "--n-fft", "256", "--hop-length", "64", "--n-mels", "32", "--workers", "0",
           "--quiet"]


def run(src, out, cfg=CFG, **kw):
    kw.setdefault("workers", 0)
    return preprocess(str(src), str(out), config=cfg, progress=False, **kw)


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    return [ln for ln in err.strip().splitlines() if not ln.startswith("spectro: from the data: ")]


# -- D10: never delete what spectro did not write ------------------------------------------


@pytest.fixture
def store_and_source(tmp_path):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    assert main(["preprocess", src, "--out", str(tmp_path / "st"), *CLI_CFG]) == 0
    return src, tmp_path / "st"


def _compare_outputs(store):
    """What ``spectro compare --out STORE`` leaves in a store (issue 22 B27)."""
    (store / "svm-0a1b2c3d" / "model").mkdir(parents=True)
    (store / "svm-0a1b2c3d" / "run.json").write_text('{"status": "done"}')
    for name in ("results.csv", "results.md", "report.md", "compare.json", "comparison.png"):
        (store / name).write_text(name)


@pytest.mark.parametrize("foreign", ["notes", "compare"])
def test_preprocess_out_keeps_a_store_holding_foreign_files(store_and_source, capsys, foreign):
    src, store = store_and_source
    if foreign == "notes":
        (store / "NOTES.txt").write_text("my notes")
    else:
        _compare_outputs(store)
    before = tree(store)
    capsys.readouterr()
    rc = main(["preprocess", src, "--out", str(store), *CLI_CFG, "--n-mels", "16"])
    lines = error_lines(capsys)
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("spectro: error: --out "), lines
    assert "spectro did not write" in lines[0]
    assert ("NOTES.txt" in lines[0]) if foreign == "notes" else ("comparison.png" in lines[0])
    assert tree(store) == before  # nothing deleted, nothing rewritten
    assert open_store(str(store)).config.n_mels == 32
    assert not [p for p in os.listdir(store.parent) if ".tmp-" in p or ".old-" in p]


def test_preprocess_out_replaces_its_own_store_and_an_empty_folder(store_and_source, tmp_path):
    src, store = store_and_source
    assert main(["preprocess", src, "--out", str(store), *CLI_CFG, "--n-mels", "16"]) == 0
    assert open_store(str(store)).config.n_mels == 16
    (tmp_path / "empty").mkdir()
    run(src, tmp_path / "empty")
    assert open_store(str(tmp_path / "empty")).config.n_mels == 32


def test_preprocess_out_that_is_a_file_is_refused(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=1, sr=8000)
    (tmp_path / "out").write_text("mine")
    assert main(["preprocess", src, "--out", str(tmp_path / "out"), *CLI_CFG]) == 2
    assert len(error_lines(capsys)) == 1
    assert (tmp_path / "out").read_text() == "mine"


# -- D14: a file name that is not UTF-8 ------------------------------------------------------

BAD_NAME = b"bad\xffname.wav"


def test_a_file_name_that_is_not_utf8_is_kept_under_its_own_bytes(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    with open(os.path.join(os.fsencode(src), b"low", BAD_NAME), "wb") as f, \
            open(os.path.join(src, "low", "low_0.wav"), "rb") as g:
        f.write(g.read())
    out = str(tmp_path / "st")
    assert main(["preprocess", src, "--out", out, *CLI_CFG]) == 0
    st = open_store(out)
    assert len(st) == 7 and st.errors() == []
    bad = os.path.join("low", os.fsdecode(BAD_NAME))
    assert bad in list(st.paths)
    with open(os.path.join(out, "index.csv"), "rb") as f:
        assert b"low/" + BAD_NAME in f.read()  # the OS's bytes, so the name still opens
    np.testing.assert_array_equal(st.features[list(st.paths).index(bad)],
                                  st.features[list(st.paths).index(os.path.join("low", "low_0.wav"))])
    capsys.readouterr()
    assert main(["preprocess", src, "--out", out, *CLI_CFG]) == 0
    assert "7 files reused unchanged" in capsys.readouterr().out


def test_a_file_name_that_is_not_utf8_and_not_audio_is_named_in_errors_csv(tmp_path):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    with open(os.path.join(os.fsencode(src), b"low", BAD_NAME), "wb") as f:
        f.write(b"not audio at all")
    res = run(src, tmp_path / "st")
    assert res.written == 6 and sum(res.skipped.values()) == 1
    (row,) = open_store(str(tmp_path / "st")).errors()
    assert os.fsencode(row["path"]) == b"low/" + BAD_NAME and row["reason"].startswith("cannot decode")


# -- D11: a group rule that gives one group ---------------------------------------------------


def test_one_group_is_named_at_once_and_the_advice_given_works(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=4, sr=8000)
    one = str(tmp_path / "one")
    assert main(["preprocess", src, "--out", one, "--group-regex", r"(wav)$", "--folds", "5", *CLI_CFG]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("spectro: note:")]
    assert notes == [("spectro: note: the store has a single fold instead of --folds 5: --group-regex puts every "
                      "file in one group; give a --group-regex that tells two groups or more apart (a speaker, a "
                      "session), or leave it out (each file is then its own group)")]
    assert open_store(one).fold_ids == [1]
    assert main(["train", one, "--model", "svm", "--out", str(tmp_path / "run1"), "--quiet"]) == 2
    [err] = error_lines(capsys)
    assert "--folds" not in err  # the old advice, which changes nothing here
    assert err.endswith("--group-regex puts every file in one group; give a --group-regex that tells two groups or "
                        "more apart (a speaker, a session), or leave it out (each file is then its own group)")
    # Either way the advice offers gives a store that trains.
    for name, rule in (("split", ["--group-regex", r"_(\d+)\.wav$"]), ("none", [])):
        out = str(tmp_path / name)
        assert main(["preprocess", src, "--out", out, "--folds", "3", *rule, *CLI_CFG]) == 0
        assert "note:" not in capsys.readouterr().err
        assert open_store(out).fold_ids == [1, 2, 3]
        assert main(["train", out, "--model", "svm", "--out", str(tmp_path / f"run-{name}"), "--quiet"]) == 0


def test_fewer_folds_than_asked_is_recorded_and_a_note_when_the_group_rule_caused_it(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=2, sr=8000)
    res = run(src, tmp_path / "st", k_folds=5)  # a small source: recorded, no note
    assert res.written == 6 and "note:" not in capsys.readouterr().err
    meta = open_store(str(tmp_path / "st")).meta["folds"]
    assert meta["k"] == 2 and "advice" not in meta
    assert meta["fewer"] == "the store has 2 folds instead of --folds 5: the largest class has only 2 file(s)"
    run(src, tmp_path / "g", k_folds=5, group_regex=r"_(\d)\.wav$")  # 2 groups: the rule undoes --folds
    assert ("note: the store has 2 folds instead of --folds 5: --group-regex gives only 2 groups"
            in capsys.readouterr().err)
