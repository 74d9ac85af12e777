"""The command line: starts without torch, holds no defaults of its own, builds what the API builds."""

import inspect
import json
import os
import subprocess
import sys

import pytest
from synth import REPO, class_folders

import spectro
from spectro import config as C
from spectro.cli.main import main, with_flags
from spectro.cli.options import TRAINING_HELP
from spectro.cli.parsers import TRAINING_OPTIONS, build_parser
from spectro.config import TrainConfig
from spectro.errors import SpectroError
from spectro.inference.defaults import ONNX_OPSET, PREDICT_BATCH_SIZE
from spectro.models.catalog import DESCRIBE_CLASSES, DESCRIBE_SHAPE

HEAVY = ("torch", "torchaudio", "librosa", "pandas", "matplotlib", "sklearn")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    return out.stderr.splitlines()[-1].split() if out.stderr.strip() else []


def test_parsing_and_help_import_nothing_heavy():
    assert _loaded_after("import spectro.cli.main; from spectro.cli.parsers import build_parser; build_parser()") == []
    assert _loaded_after("from spectro.cli.main import main\ntry:\n    main(['train', '--help'])\n"
                         "except SystemExit:\n    pass") == []
    assert _loaded_after("from spectro.cli.main import main; main(['models'])") == []


def _parser_default(command: str, dest: str):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return next(a.default for a in sub._actions if a.dest == dest)


def test_cli_defaults_are_the_api_defaults():
    # Every default the help shows is the one the API applies (one home: spectro.config).
    sig = lambda fn, name: inspect.signature(fn).parameters[name].default  # noqa: E731
    assert sig(spectro.preprocess, "k_folds") == C.FOLDS and sig(spectro.preprocess, "seed") == C.SEED
    assert sig(spectro.preprocess, "device") == C.STFT_DEVICE
    assert _parser_default("show", "per_class") == sig(spectro.show_examples, "per_class")
    assert _parser_default("show", "seed") == sig(spectro.show_examples, "seed")
    assert _parser_default("evaluate", "split") == sig(spectro.evaluate, "split")
    assert _parser_default("predict", "top_k") == sig(spectro.FilePrediction.to_dict, "top_k")
    assert sig(spectro.Predictor.predict_files, "batch_size") == PREDICT_BATCH_SIZE
    assert sig(spectro.export_onnx, "opset") == ONNX_OPSET
    assert _parser_default("compare", "out") == sig(spectro.compare, "out")
    assert _parser_default("compare", "jobs") == sig(spectro.compare, "jobs")
    assert sig(spectro.describe_models, "num_classes") == DESCRIBE_CLASSES
    assert sig(spectro.describe_models, "input_shape") == DESCRIBE_SHAPE
    # Training options are TrainConfig's fields, left to TrainConfig (None) unless given.
    args = build_parser().parse_args(["train", "st"])
    assert all(getattr(args, name) is None for name in TRAINING_OPTIONS if name != "model_options")


def test_configs_hold_no_command_line_presentation():
    # config.py holds the settings; their help, groups and metavars are the command line's (spectro.cli.options).
    import dataclasses

    assert all(not f.metadata for f in dataclasses.fields(TrainConfig))
    assert set(TRAINING_HELP) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert not any(hasattr(C, name) for name in ("TOP_K", "ONNX_OPSET", "COMPARE_OUT", "DESCRIBE_SHAPE"))
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "x0.1 at 50% and 75% of training" in " ".join(help_text.split())


def test_api_errors_name_fields_and_the_cli_shows_flags(tmp_path, capsys):
    with pytest.raises(SpectroError) as err:
        TrainConfig(gain_eq=50.0)
    assert "gain_eq must be in [0, 40] dB" in str(err.value) and "--" not in str(err.value)
    parser = build_parser()
    assert with_flags(str(err.value), parser).endswith("--gain-eq must be in [0, 40] dB, got 50.0")
    assert with_flags("min_holdout and window_hop; not 'batch_size', num_classes or a/b_c", parser) == \
        "--min-holdout and --hop; not 'batch_size', num_classes or a/b_c"
    assert main(["train", str(tmp_path / "none"), "--gain-eq", "50", "--quiet"]) == 2
    assert "invalid training setting: --gain-eq must be in [0, 40] dB" in capsys.readouterr().err


def test_every_training_setting_is_an_option_of_train_and_compare():
    parser = build_parser()
    train = parser.parse_args(["train", "st", "--epochs", "3", "--no-specaugment", "--time-shift", "--lr", "0.01"])
    assert (train.epochs, train.specaugment, train.time_shift, train.lr) == (3, False,
                                                                             TrainConfig.TIME_SHIFT_FRACTION, 0.01)
    comp = parser.parse_args(["compare", "st", "--models", "svm", "--val-fraction", "0.2", "--label-smoothing", "0.1"])
    assert (comp.val_fraction, comp.label_smoothing) == (0.2, 0.1)
    with pytest.raises(SystemExit):  # every model of a comparison gets the same split
        parser.parse_args(["compare", "st", "--models", "svm", "--val-fold", "2"])


def test_store_is_positional_with_store_kept_as_an_alias(tmp_path, capsys):
    args = build_parser().parse_args(["train", "st1", "--model", "svm"])
    assert (args.store, args.store_option) == ("st1", None)
    args = build_parser().parse_args(["compare", "--store", "st2", "--models", "svm"])
    assert (args.store, args.store_option) == (None, "st2")
    assert main(["train", "a", "--store", "b", "--model", "svm"]) == 2
    assert "two stores given" in capsys.readouterr().err


def test_cli_and_api_build_the_same_store(tmp_path):
    src = class_folders(tmp_path / "src", per_class=4, sr=8000)
    for settings, extra in (({}, []), ({"n_mels": 32}, ["--n-mels", "32"])):
        cli, api = tmp_path / f"cli{len(extra)}", tmp_path / f"api{len(extra)}"
        assert main(["preprocess", src, "--out", str(cli), "--quiet"] + extra) == 0
        spectro.preprocess(src, str(api), config=settings or None, progress=False)
        for name in ("features.npy", "index.csv", "labels.json", "errors.csv"):
            assert (cli / name).read_bytes() == (api / name).read_bytes(), name
        meta = [json.loads((d / "config.json").read_text()) for d in (cli, api)]
        for m in meta:
            m.pop("created")  # the time it was written: the one field that may differ
        assert meta[0] == meta[1]
        assert meta[0]["feature_config"]["sample_rate"] == 8000  # read from the data by both


def test_models_lists_every_name_without_and_with_sizes(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in rows) == sorted(spectro.list_models() + ["ensemble", "reference"])  # compare only, too
    assert all(r["summary"] and "params" not in r for r in rows)
    assert main(["models", "--size", "--input-shape", "1x32x32", "--json"]) == 0
    sized = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sized["cnn"]["params"] > 0 and sized["svm"]["params"] is None


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["compare", "--help"], ["preprocess", "--help"]])
def test_help_texts_print(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0 and "usage: spectro" in capsys.readouterr().out


def test_a_bad_jobs_value_is_refused_by_the_api():
    with pytest.raises(spectro.SpectroError, match="--jobs must be"):
        spectro.compare(os.devnull, ["svm"], jobs=0)
