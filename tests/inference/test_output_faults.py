"""Issue 31 F10 and F12: unwritable outputs are one line, figures never overwrite each other, the CSV's
``top`` column survives any class name, and temporary files of killed commands are cleaned later."""

import csv
import errno
import io
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
from synth import TINY_CFG, tiny_store, tone

from spectro.cli.main import main
from spectro.signals.preprocess import preprocess
from spectro.training.train import train

DEAD_PID = 2**22 + 12345  # above the default pid_max: no process has it


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    tiny_store(root)
    train(str(root / "store"), "svm", str(root / "svm"), device="cpu", progress=False)
    return root


@pytest.mark.parametrize("command", ["export", "preprocess", "compare"])
def test_a_read_only_output_is_one_line(root, read_only, capsys, command):
    """F10: export (its clean-up suppressed only FileNotFoundError), preprocess (the lock file), compare."""
    argv = {"export": ["export", str(root / "svm"), "--out", str(read_only / "x.onnx")],
            "preprocess": ["preprocess", str(root / "src"), "--out", str(read_only / "st"), "--quiet"],
            "compare": ["compare", str(root / "store"), "--models", "svm", "--out", str(read_only / "cmp"),
                        "--quiet"]}[command]
    if command == "export":
        pytest.importorskip("onnxruntime")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    [line] = [line for line in err.splitlines() if line.startswith("spectro: error:")]
    assert "read-only file system" in line.lower(), err


def test_a_full_disk_at_compares_figure_still_writes_the_report(root, tmp_path, monkeypatch, capsys):
    """F10: compare onto a nearly full disk wrote its runs, then died on comparison.png with no report.md."""
    def no_space(*args, path=None, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr("spectro.comparison.compare.plot_comparison", no_space)
    out = tmp_path / "cmp"
    assert main(["compare", str(root / "store"), "--models", "svm", "--out", str(out), "--quiet"]) == 0
    assert (out / "report.md").is_file() and (out / "results.csv").is_file()
    err = capsys.readouterr().err
    assert "comparison.png: no space left on the device" in err and "report.md" in err


def test_predict_png_of_two_files_with_one_name_writes_two_figures(root, tmp_path, capsys):
    """F12: x/a.wav and y/a.wav wrote one a.png."""
    for folder, freq in (("x", 300), ("y", 2400)):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "a.wav", tone(freq, sr=8000, seconds=0.5), 8000)
    figs = tmp_path / "figs"
    assert main(["predict", str(root / "svm"), str(tmp_path / "x" / "a.wav"), str(tmp_path / "y" / "a.wav"),
                 "--png", str(figs), "--workers", "0", "--quiet"]) == 0
    assert sorted(os.listdir(figs)) == ["a.png", "y_a.png"]


def test_show_with_classes_of_one_safe_name_writes_one_figure_each(tmp_path, capsys):
    """F12: labels "a,b" and "a b" both became a_b.png."""
    src = tmp_path / "src"
    for label, freq in (("a,b", 300), ("a b", 2400)):
        (src / label).mkdir(parents=True)
        for k in range(3):
            sf.write(src / label / f"{k}.wav", tone(freq * (1 + 0.05 * k), sr=8000, seconds=0.5), 8000)
    preprocess(str(src), str(tmp_path / "store"), config=TINY_CFG, workers=0, progress=False)
    assert main(["show", str(tmp_path / "store"), "--out", str(tmp_path / "figs")]) == 0
    assert sorted(os.listdir(tmp_path / "figs")) == ["a_b-2.png", "a_b.png"]


def test_the_csv_top_column_escapes_its_separators(tmp_path):
    """F12: a class named ``a;b:1.0`` made ``top`` unreadable."""
    from spectro.inference.predict import FilePrediction

    labels = ["a;b:1.0", "c\\d", "plain"]
    r = FilePrediction(source="x.wav", labels=labels, proba=np.array([0.7, 0.2, 0.1]))
    top = r.csv_rows(3)[0]["top"]
    entries = re.split(r"(?<!\\);", top)
    parsed = [re.split(r"(?<!\\):", e) for e in entries]
    names = [re.sub(r"\\(.)", r"\1", n) for n, _ in parsed]
    assert names == labels and [float(p) for _, p in parsed] == [0.7, 0.2, 0.1]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["top"])
    w.writerow({"top": top})
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [top]


def test_temporary_files_of_a_killed_export_or_evaluate_are_cleaned_later(root, tmp_path, capsys):
    """F12: a SIGKILLed export left .m.onnx.tmp-PID.onnx, evaluate eval/.test_confusion.tmp-*.png, for good."""
    pytest.importorskip("onnxruntime")
    run = tmp_path / "svm"
    shutil.copytree(root / "svm", run)
    out = tmp_path / "onnx"
    out.mkdir()
    dead = [out / f".m.onnx.tmp-{DEAD_PID}.onnx", out / f".m.onnx.tmp-{DEAD_PID}.onnx.data"]
    live = out / ".m.onnx.tmp-1.onnx"  # pid 1 is alive: its file is left alone
    (run / "eval").mkdir(exist_ok=True)
    dead.append(run / "eval" / f".test_confusion.tmp-{DEAD_PID}-k2j4.png")
    for f in [*dead, live]:
        f.write_bytes(b"half")
    assert main(["export", str(run), "--out", str(out / "m.onnx")]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert [f for f in dead if f.exists()] == [] and live.exists()


def test_figure_temporaries_carry_the_pid_of_their_writer(tmp_path, monkeypatch):
    """What makes the clean-up above possible: a temporary's name says which process writes it."""
    from matplotlib.figure import Figure

    from spectro.plots.figures import save_figure

    seen = []

    def record(self, f, *args, **kwargs):
        seen.extend(os.listdir(tmp_path))  # the temporary, open while it is drawn

    monkeypatch.setattr(Figure, "savefig", record)
    save_figure(Figure(), str(tmp_path / "x.png"))
    assert seen and seen[0].startswith(f".x.tmp-{os.getpid()}-")
