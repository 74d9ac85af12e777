"""Which run a path names: a run directory itself, or one model's run inside a comparison directory.

``spectro predict COMPARE_DIR FILE`` and ``spectro.load(COMPARE_DIR, model=NAME)`` read the
comparison's ``compare.json`` (its models and the directory of each one's runs) rather than
failing on a missing ``run.json``.
"""

from __future__ import annotations

import os
from typing import Optional

from spectro.errors import SpectroError
from spectro.utils.files import read_json

__all__ = ["resolve_run", "comparison_runs"]


def comparison_runs(path: str) -> Optional[dict[str, list[str]]]:
    """``{model: [run directory, ...]}`` of the comparison at ``path`` (one per test fold and seed), in the
    order compare.json lists them; None when ``path`` is not a comparison. Runs not (yet) written are left out."""
    meta = os.path.join(path, "compare.json")
    if not os.path.isfile(meta):
        return None
    info = read_json(meta, what="comparison directory")
    runs: dict[str, list[str]] = {}
    for model, dirs in (info.get("runs") or {}).items():
        names = list(dirs.values()) if isinstance(dirs, dict) else [dirs]  # {seed: dir} under --seeds
        found = [os.path.join(path, d, f"fold{k}") for d in dict.fromkeys(names) for k in info.get("folds") or []]
        runs[model] = [r for r in found if os.path.isfile(os.path.join(r, "run.json"))]
    return runs


def resolve_run(path: str, model: Optional[str] = None) -> str:
    """The run directory ``path`` names: ``path`` itself, or ``model``'s run in the comparison ``path``.

    Raises
    ------
    SpectroError
        A comparison without ``model`` (the line lists its runs), a model it did not train, a model with
        several runs (cross-validation or seeds: the line lists them, give one), or ``model`` given for a run.
    """
    runs = comparison_runs(path)
    if runs is None:
        if model is not None and os.path.isfile(os.path.join(path, "run.json")):
            raise SpectroError(f"{path} is a run of its own; --model picks a run inside a comparison directory")
        return path
    listed = "; ".join(f"{m}: {', '.join(dirs) or 'no finished run'}" for m, dirs in runs.items())
    if model is None:
        raise SpectroError(f"{path} is a comparison, not a run: give --model NAME ({', '.join(runs)}) or one of "
                           f"its runs ({listed})")
    if model not in runs:
        raise SpectroError(f"{path} compared no model {model!r}; it holds {', '.join(runs) or 'none'}")
    if len(runs[model]) != 1:
        what = "no finished run" if not runs[model] else f"{len(runs[model])} runs (one per test fold and seed)"
        raise SpectroError(f"{model} has {what} in {path}" + (f"; give one: {', '.join(runs[model])}"
                                                              if runs[model] else ""))
    return runs[model][0]
