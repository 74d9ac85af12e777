"""predict's rough edges (issue 31, R8): decoder errors without libsndfile's bytes repr, a folder without signal
files answered with the extensions looked for, and a comparison directory taken with --model NAME."""

import os

import pytest
from synth import tiny_store

import spectro
from spectro.cli.main import main
from spectro.signals.audio import load_audio
from spectro.signals.sources import SIGNAL_EXTENSIONS


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict-edges")
    store = tiny_store(base)
    out = str(base / "cmp")
    spectro.compare(store, ["svm"], out, progress=False, timing=False)
    return store, out


def test_a_decoder_error_is_the_reason_alone(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(spectro.errors.BadInput) as err:
        load_audio(str(bad), sample_rate=8000)
    assert str(err.value) == "cannot decode: Format not recognised."


def test_predict_on_a_folder_without_signals_lists_what_it_looked_for(compared, tmp_path, capsys):
    _, out = compared
    (tmp_path / "notes").mkdir()
    for name in ("a.txt", "b.txt", "c.doc"):
        (tmp_path / "notes" / name).write_text("x")
    assert main(["predict", out, str(tmp_path / "notes"), "--model", "svm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no signal files" in err
    assert all(ext in err for ext in SIGNAL_EXTENSIONS) and "found 2 .txt, 1 .doc" in err


def test_predict_on_a_comparison_lists_its_runs_or_takes_model(compared, capsys):
    store, out = compared
    wav = os.path.join(os.path.dirname(store), "src", "low", "low_0.wav")
    assert main(["predict", out, wav]) == 2
    err = capsys.readouterr().err
    assert "is a comparison, not a run: give --model NAME (svm)" in err and "fold5" in err
    assert "run.json" not in err
    assert main(["predict", out, wav, "--model", "svm", "--format", "csv"]) == 0
    assert "low_0.wav" in capsys.readouterr().out
    assert main(["predict", out, wav, "--model", "cnn"]) == 2
    assert "compared no model 'cnn'; it holds svm" in capsys.readouterr().err
