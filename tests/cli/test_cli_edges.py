"""The command line's rough edges (issue 31, R9): compare --option, a visible --store, the ensemble in
spectro models."""

import json
import os

import pytest
from synth import tiny_store

from spectro.cli.commands import parse_model_options
from spectro.cli.main import main
from spectro.errors import SpectroError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("cli-edges"))


def test_compare_takes_model_options_for_one_model_or_every_one(store, tmp_path, one_thread, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", store, "--models", "svm,cnn", "--epochs", "1", "--batch-size", "8", "--out", str(out),
               "--option", "cnn:dropout=0.3", "--option", "cnn:widths=[8, 16]", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    [cnn] = [d for d in os.listdir(out) if d.startswith("cnn-")]
    with open(out / cnn / "fold5" / "train_config.json") as f:
        assert json.load(f)["model_options"] == {"dropout": 0.3, "widths": [8, 16]}
    [svm] = [d for d in os.listdir(out) if d.startswith("svm-")]
    with open(out / svm / "fold5" / "train_config.json") as f:
        assert json.load(f)["model_options"] == {}


def test_option_parsing_is_one_helper_for_train_and_compare():
    assert parse_model_options(["stem=small", "dropout=0.2"]) == {None: {"stem": "small", "dropout": 0.2}}
    assert parse_model_options(["dropout=0.2", "cnn:dropout=0.5"], ["cnn", "resnet18"]) == {
        "cnn": {"dropout": 0.5}, "resnet18": {"dropout": 0.2}}
    with pytest.raises(SpectroError, match="not compared"):
        parse_model_options(["resnet34:stem=small"], ["cnn"])
    with pytest.raises(SpectroError, match=r"takes \[MODEL:\]KEY=VALUE"):
        parse_model_options(["stem"], ["cnn"])


def test_compare_option_errors_are_one_line_of_compare(store, tmp_path, capsys):
    assert main(["compare", store, "--models", "cnn", "--option", "svm:C=1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'svm', which is not compared" in err


def test_store_is_documented_and_the_ensemble_is_listed(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "--store STORE" in capsys.readouterr().out.split("options:")[1]
    assert main(["models"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ensemble")]
    assert len(lines) == 1 and "compare only" in lines[0]
    assert main(["models", "--json"]) == 0
    assert "ensemble" in [r["name"] for r in json.loads(capsys.readouterr().out)]
