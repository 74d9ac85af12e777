"""The notebooks run headless in a real Jupyter kernel on a tiny setting, figures inline, no error."""

import os
import subprocess
import sys

import pytest

papermill = pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notebooks")
DATA = os.path.abspath(os.path.join(NOTEBOOKS, "..", "data", "digits"))
SUBSET = {"VOICES": 6, "DIGITS": "01234", "TAKES": 2, "BATCH_SIZE": 8, "EPOCHS": 1, "DATA": DATA}
SMALL = {
    "compare_baselines": {**SUBSET, "MODELS": ["svm", "cnn"], "TRAIN_SIZES": [0.5, 1], "HARD": False},
    "degradation": {**SUBSET, "MODELS": ["plain20", "resnet20"], "N_MELS": 16},
    "vibration": {"SECONDS": 1.0, "WINDOW": 0.25, "EPOCHS": 1, "MODELS": ["svm", "cnn"], "BATCH_SIZE": 16,
                  "GENERATOR": os.path.abspath(os.path.join(NOTEBOOKS, "..", "data", "make_bearings.py"))},
}


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", "python3"], check=True,
                       capture_output=True)
    return "python3"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_with_figures_inline(name, kernel, tmp_path, monkeypatch):
    # One thread per kernel: tiny models gain nothing from more, and contended OpenMP threads crawl.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.path.abspath(os.path.join(NOTEBOOKS, "..")),
                                                                   os.environ.get("PYTHONPATH")])))
    src = os.path.join(NOTEBOOKS, f"{name}.ipynb")
    with open(src) as f:
        source = nbformat.read(f, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(src, str(out), parameters={**SMALL[name], "WORK": str(tmp_path / "work")},
                               cwd=str(tmp_path), kernel_name=kernel, progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pngs, "no inline figure"
    # A Figure returned by the package renders inline as a PNG (not just its text repr).
    assert [o for o in pngs if o.output_type == "execute_result"], "the package's Figure did not render inline"



def _render_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render", os.path.join(NOTEBOOKS, "render.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SMALL))
def test_stored_outputs_were_made_with_todays_defaults(name):
    from spectro.training.defaults import defaults_stamp, stamp_kinds

    with open(os.path.join(NOTEBOOKS, f"{name}.ipynb")) as f:
        nb = nbformat.read(f, as_version=4)
    meta = nb.metadata.get("spectro", {})
    # The kinds come from what the notebook trains (its MODELS as rendered), not from what the stamp claims.
    kinds = stamp_kinds(_render_module().notebook_models(nb, meta.get("parameters") or {}))
    assert meta.get("kinds") == list(kinds)
    assert meta.get("defaults") == defaults_stamp(kinds), (
        f"notebooks/{name}.ipynb holds outputs made with other defaults (stamp {meta.get('defaults')}, "
        f"the code's {defaults_stamp(kinds)}): run `python notebooks/render.py {name}`")
    cost = [c for c in nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4).cells
            if "render-cost" in c.metadata.get("tags", [])]
    assert len(cost) == 1 and f"{meta['seconds'] / 60:.1f} min" in cost[0].source  # what the render cost, last cell


def _outputs_text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            parts.append(o.get("text", ""))
            for kind in ("text/plain", "text/markdown", "text/html"):
                parts.append(str(o.get("data", {}).get(kind, "")))
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_number_the_reading_quotes_is_in_an_output(name):
    import re

    nb = nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)
    reading = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Reading"))
    assert reading, f"notebooks/{name}.ipynb has no Reading cell"
    shown = _outputs_text(nb)
    decimals = set(re.findall(r"(?<![\w.])0?(\.\d{3})(?!\d)", reading))  # .983 or 0.983
    percents = set(re.findall(r"(?<![\w.])(\d+\.\d %)", reading))  # 69.0 %
    missing = sorted([d for d in decimals if d not in shown.replace("0.", ".")] + [p for p in percents if p not in shown])
    assert not missing, (f"notebooks/{name}.ipynb's Reading quotes {missing}, which no output shows: "
                         f"re-read it after `python notebooks/render.py {name}`")
