"""Fewer folds than asked are said in preprocess's summary line, not only in config.json (issue 31, R11)."""

from synth import class_folders

from spectro.cli.main import main


def test_the_summary_line_says_the_folds_were_reduced_and_why(tmp_path, capsys):
    src = class_folders(tmp_path / "src", per_class=3, sr=8000)  # 3 files per class: at most 3 folds
    assert main(["preprocess", src, "--out", str(tmp_path / "store"), "--sample-rate", "8000", "--duration", "0.5",
                 "--folds", "5", "--quiet", "--workers", "0"]) == 0
    [summary] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("spectro: wrote")]
    assert "the store has 3 folds instead of --folds 5: the largest class has only 3 file(s)" in summary
