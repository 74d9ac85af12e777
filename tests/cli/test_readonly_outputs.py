"""predict --png and show --out into a folder that cannot be written: one line, exit 2, no traceback,
no half-written PNG (issue 22 D16).

Two ways to get there: a read-only tmpfs (needs mount, so root; skipped otherwise) and a
monkeypatched ``Figure.savefig`` raising EROFS, which runs anywhere and fails after the folder
check passed.
"""

import errno
import os

import pytest
from matplotlib.figure import Figure
from synth import tiny_store

from spectro.cli.main import main
from spectro.training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def svm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ro")
    store = tiny_store(root)
    train(store, "svm", str(root / "svm"), progress=False)
    return root


@pytest.fixture
def savefig_fails(monkeypatch, tmp_path):
    def refuse(self, fname, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Figure, "savefig", refuse)
    (tmp_path / "rw").mkdir()
    return tmp_path / "rw"


def _commands(svm_run, folder):
    src = svm_run / "src" / "low"
    return {"predict": ["predict", str(svm_run / "svm"), str(src), "--png", str(folder / "p"), "--workers", "0",
                        "--quiet"],
            "show": ["show", str(svm_run / "store"), "--out", str(folder / "p")]}


@pytest.mark.parametrize("how", ["read_only", "savefig_fails"])
@pytest.mark.parametrize("command, option", [("predict", "--png"), ("show", "--out")])
def test_an_unwritable_figure_folder_is_one_line(svm_run, request, capsys, how, command, option):
    folder = request.getfixturevalue(how)
    capsys.readouterr()
    assert main(_commands(svm_run, folder)[command]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    target = folder / "p"
    assert line.startswith("spectro: error: cannot write ") and str(target) in line, line
    assert line.endswith(f"Read-only file system; give {option} a folder you can write to"), line
    if how == "savefig_fails":
        assert os.listdir(target) == []  # no PNG, whole or half
