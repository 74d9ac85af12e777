"""Re-execute the notebooks at full size and save them with their outputs (never edit outputs by hand).

    python notebooks/render.py                       # all of them, at the sizes in their parameters cells
    python notebooks/render.py degradation --set EPOCHS=20 --set 'MODELS=["plain20","resnet20"]'

Runs each notebook in a fresh Jupyter kernel (papermill) from inside notebooks/, so the relative paths of the
parameters cells (``../data/digits``, ``runs_*``) resolve, and writes it back in place. Training runs land in
``notebooks/runs_*`` (ignored by git) and are reused by a second render with the same settings.

Each rendered notebook is stamped (``metadata["spectro"]``) with the spectro version and
:func:`spectro.training.defaults.defaults_stamp`, the hash of every default that changes a result;
tests/test_notebooks.py fails when a stamp no longer matches the code. Its last cell (tagged
``render-cost``) says how long the render took and on what machine.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import nbformat
import papermill
import torch

import spectro
from spectro.training.defaults import defaults_stamp, stamp_kinds

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ("compare_baselines", "degradation", "vibration")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS),
                        help=f"which notebooks (default: {', '.join(NOTEBOOKS)})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a parameter, e.g. EPOCHS=20 (value parsed as JSON, else a string)")
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    params = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    for name in args.names:
        if name not in NOTEBOOKS:
            parser.error(f"unknown notebook {name!r}; choose from {NOTEBOOKS}")
        path = os.path.join(HERE, f"{name}.ipynb")
        t0 = time.perf_counter()
        papermill.execute_notebook(path, path, parameters=params, cwd=HERE, kernel_name=args.kernel,
                                   progress_bar=False)
        seconds = time.perf_counter() - t0
        stamp(path, seconds, params)
        print(f"rendered {path} in {seconds:.0f} s", file=sys.stderr)
    return 0


def machine() -> str:
    """The machine in words: CPU model and cores, and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu} ({os.cpu_count()} cores{gpu})"


def notebook_models(nb: nbformat.NotebookNode, params: dict) -> list[str]:
    """The models a notebook trains: ``MODELS`` of its parameters cell, or as ``params`` overrides it.

    A notebook with no ``MODELS`` parameter counts as training every kind (see ``stamp_kinds``).
    """
    if "MODELS" in params:
        return list(params["MODELS"])
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MODELS" for t in node.targets):
                    return list(ast.literal_eval(node.value))
    return ["?"]


def stamp(path: str, seconds: float, params: dict) -> None:
    """Record what produced the outputs (metadata) and what the render cost (the last cell)."""
    nb = nbformat.read(path, as_version=4)
    seconds = round(seconds)  # the metadata and the cell say the same
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    kinds = stamp_kinds(notebook_models(nb, params))
    nb.metadata["spectro"] = {"version": spectro.__version__, "defaults": defaults_stamp(kinds), "kinds": list(kinds),
                              "rendered": when, "seconds": seconds, "machine": machine(), "parameters": params}
    text = (f"*Rendered on {when} by `python notebooks/render.py` in {seconds / 60:.1f} min on {machine()}, "
            f"spectro {spectro.__version__}, defaults stamp `{defaults_stamp(kinds)}` ({' and '.join(kinds)})"
            + (f", with {json.dumps(params)}" if params else "") + ".*")
    cell = next((c for c in nb.cells if "render-cost" in c.metadata.get("tags", [])), None)
    if cell is None:
        cell = nbformat.v4.new_markdown_cell(metadata={"tags": ["render-cost"]})
        nb.cells.append(cell)
    cell.source = text
    nbformat.write(nb, path)


if __name__ == "__main__":
    sys.exit(main())
