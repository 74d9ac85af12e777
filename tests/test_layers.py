"""The package's shape: one-way layers, no imports hidden in functions, a static public API."""

import ast
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

import spectro
from spectro.config import TrainConfig
from spectro.errors import SpectroError
from spectro.training.classifier import NetClassifier, make_classifier

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spectro"


def _lint_imports(cwd: pathlib.Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([exe], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_linter_layers_contract_is_kept():
    res = _lint_imports(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    # A copy of the package in which a base module imports a pipeline: lint-imports must fail.
    shutil.copytree(PACKAGE, tmp_path / "spectro", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    feed = tmp_path / "spectro" / "dataset" / "feed.py"
    feed.write_text(feed.read_text() + "\nfrom spectro.training.train import train  # noqa: E402,F401\n")
    res = _lint_imports(tmp_path)
    assert res.returncode != 0 and "BROKEN" in res.stdout.upper()
    assert "spectro.dataset.feed -> spectro.training.train" in res.stdout


def _local_imports(path: pathlib.Path) -> list[str]:
    """Imports of spectro modules inside functions or methods of ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("spectro")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("spectro") for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_function_local_imports_of_spectro_modules():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _local_imports(path)]
    assert found == []


def test_public_api_is_static_and_complete():
    # __all__ is a literal list the facade resolves name by name; every name is importable.
    assert set(spectro.__all__) - {"__version__"} == set(spectro._API)
    for name in spectro.__all__:
        assert getattr(spectro, name) is not None
    src = (PACKAGE / "__init__.py").read_text()
    tree = ast.parse(src)
    assigned = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert assigned and isinstance(assigned[0].value, ast.List)  # static: IDEs and type checkers read it
    assert not hasattr(spectro.models, "train_epochs")  # training internals are not model API


def test_importing_spectro_leaves_matplotlib_backend_alone():
    code = ("import matplotlib; b = matplotlib.get_backend(); import spectro, spectro.plots.figures, spectro.training.evaluate; "
            "print(b == matplotlib.get_backend(), matplotlib.rcParams['backend'])")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MPLBACKEND"] = "svg"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "svg"]


def test_plot_functions_return_figures_and_save_when_asked(tmp_path):
    from matplotlib.figure import Figure

    history = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5 + e / 10, "val_loss": 1.2 / e,
                "val_accuracy": 0.4 + e / 10, "val_macro_f1": 0.4 + e / 11} for e in (1, 2, 3)]
    fig = spectro.plot_curves(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    path = tmp_path / "cm.png"
    fig = spectro.plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], str(path))
    assert isinstance(fig, Figure) and path.stat().st_size > 0


def test_net_classifier_follows_the_estimator_contract():
    clf = make_classifier("cnn", epochs=2, stem="small")
    params = clf.get_params()
    assert params["epochs"] == 2 and params["model_options"] == {"stem": "small"}
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == params
    twin.set_params(lr=0.01)
    assert twin.lr == 0.01 and clf.lr is None
    # Defaults are TrainConfig's: one home for every setting.
    default, cfg = NetClassifier(), TrainConfig()
    assert (default.epochs, default.weight_decay, default.optimizer) == (cfg.epochs, cfg.weight_decay, cfg.optimizer)
    assert default.train_config() == cfg


def test_pretrained_has_one_home():
    with pytest.raises(SpectroError, match="the setting pretrained=PATH, not a model option"):
        TrainConfig(model_options={"pretrained": "x.pt"})
    assert NetClassifier("resnet18", pretrained="x.pt").train_config().pretrained == "x.pt"


def test_cli_defaults_are_the_dataclass_defaults():
    from spectro.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--store", "s", "--time-shift"])
    assert args.time_shift == TrainConfig.TIME_SHIFT_FRACTION
    assert args.epochs is None and args.device is None  # left to TrainConfig
    sub = parser._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in sub._actions if a.choices}
    assert tuple(choices["optimizer"]) == TrainConfig.CHOICES["optimizer"]
    pre = parser.parse_args(["preprocess", "src", "--out", "o"])
    assert pre.folds is None and pre.seed is None and pre.device is None  # left to preprocess()


def test_every_module_and_subpackage_has_a_layer():
    import tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    named = {m.strip() for layer in contract["layers"] for m in layer.split("|")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert (modules | packages) - named == set()
    assert named - (modules | packages) == set()  # no layer names a module that is gone
