"""In a real Jupyter kernel, ``import spectro`` keeps inline figures: a plot function shows its Figure."""

import os

import pytest

nbformat = pytest.importorskip("nbformat", reason="the dev extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
pytest.importorskip("ipykernel", reason="the dev extra installs ipykernel")

CURVES = ("[{'epoch': e, 'train_loss': 1 / e, 'train_accuracy': 0.5, 'val_loss': 1 / e, "
          "'val_accuracy': 0.5, 'val_macro_f1': 0.5} for e in (1, 2, 3)]")


@pytest.mark.slow
def test_plot_function_shows_inline_after_import(monkeypatch):
    # A user's kernel has no MPLBACKEND=Agg (CI scripts sometimes set it); the kernel picks inline.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import spectro"),
                nbformat.v4.new_code_cell(f"spectro.plot_curves({CURVES}, title='inline')")]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": os.getcwd()}})
    client.execute()
    outputs = nb.cells[1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs
