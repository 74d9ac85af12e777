"""Re-execute the notebooks at full size and save them with their outputs (never edit outputs by hand).

    python notebooks/render.py                       # both, at the sizes in their parameters cells
    python notebooks/render.py degradation --set EPOCHS=20 --set 'MODELS=["plain20","resnet20"]'

Runs each notebook in a fresh Jupyter kernel (papermill) from inside notebooks/, so the relative paths of the
parameters cells (``../data/digits``, ``runs_*``) resolve, and writes it back in place. Training runs land in
``notebooks/runs_*`` (ignored by git) and are reused by a second render with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import papermill

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = ("compare_baselines", "degradation")


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
        print(f"rendered {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
