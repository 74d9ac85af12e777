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

