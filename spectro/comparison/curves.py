"""Learning curves: would the ranking change with more or less data?

``spectro.compare(..., train_sizes=[...])`` (:func:`learning_curve`) runs the comparison once per training size on
nested, seeded, class-stratified shares of the training *groups*
(``TrainConfig.train_fraction``, :func:`spectro.dataset.splits.nested_groups`):
every smaller share lies inside the larger one, the validation hold-out is
drawn inside each, and every size is tested on the same test fold(s). Each
size is an ordinary compare folder (``OUT/size-F/``), so finished runs are
reused as compare reuses them, and a stopped curve resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from spectro.comparison.defaults import COMPARE_OUT
from spectro.errors import SpectroError
from spectro.plots.curves import plot_learning_curve
from spectro.training.run import read_run_info
from spectro.utils.console import printer
from spectro.utils.files import write_csv, write_text

__all__ = ["learning_curve", "LearningCurve", "parse_train_sizes", "CURVE_COLUMNS"]

CURVE_COLUMNS = ["model", "train_fraction", "train_examples", "status", "accuracy", "accuracy_std", "accuracy_low",
                 "accuracy_high", "macro_f1", "macro_f1_std"]
_OWN = ("curve.csv", "curve.md", "curve.png")


@dataclass
class LearningCurve:
    """What :func:`learning_curve` returns (and writes into ``out``: ``curve.csv``, ``curve.md``, ``curve.png``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model and size (:data:`CURVE_COLUMNS`); ``train_examples``
        is the mean over folds of the clips the run learned from (its training
        rows and its hold-out).
    comparisons : dict of float to spectro.Comparison
        The comparison at each training fraction.
    out : str
    """

    table: pd.DataFrame
    comparisons: dict[float, Any] = field(default_factory=dict)
    out: str = COMPARE_OUT

    def figure(self, path: Optional[str] = None) -> Any:
        """Accuracy against training examples (a matplotlib Figure), saved to ``path`` if given."""
        return plot_learning_curve(self.table, path=path)

    def markdown(self) -> str:
        """The curve as a Markdown table, one row per model and size."""
        head = ["model", "share of training groups", "training examples", "accuracy", "macro-F1"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.table.itertuples():
            if pd.isna(r.accuracy):
                acc = f1 = r.status
            elif not pd.isna(r.accuracy_std):
                acc, f1 = f"{r.accuracy:.3f} ± {r.accuracy_std:.3f}", f"{r.macro_f1:.3f} ± {r.macro_f1_std:.3f}"
            else:
                acc, f1 = f"{r.accuracy:.3f} [{r.accuracy_low:.3f}, {r.accuracy_high:.3f}]", f"{r.macro_f1:.3f}"
            lines.append(f"| {r.model} | {r.train_fraction:g} | {r.train_examples:.0f} | {acc} | {f1} |")
        return "\n".join(lines)


def parse_train_sizes(sizes: Union[str, Sequence[float]]) -> list[float]:
    """``"0.1,0.25,1"`` or a list -> sorted distinct fractions in (0, 1]; anything else is one SpectroError."""
    items = sizes.split(",") if isinstance(sizes, str) else list(sizes)
    try:
        values = sorted({float(v) for v in items if str(v).strip()})
    except ValueError:
        raise SpectroError(f"--train-sizes takes fractions of the training groups such as 0.1,0.25,0.5,1; "
                           f"got {sizes!r}") from None
    if not values or not all(0 < v <= 1 for v in values):  # also refuses NaN
        raise SpectroError(f"--train-sizes must be fractions in (0, 1] such as 0.1,0.25,0.5,1; got {sizes!r}")
    return values


def learning_curve(run_compare: Callable[..., Any], store: Any, models: Union[str, list[str]],
                   out: str = COMPARE_OUT, *, train_sizes: Union[str, Sequence[float]], cv: bool = False,
                   progress: bool = True, **compare_options: Any) -> LearningCurve:
    """Compare ``models`` at each training size: ``OUT/size-F/`` per fraction ``F``, the curve in ``OUT``.

    Parameters
    ----------
    run_compare : callable
        :func:`spectro.compare` (which calls this with itself when given
        ``train_sizes``).
    store, models
        As :func:`spectro.compare`.
    out : str
        A new or empty folder, or one a learning curve wrote before (its
        finished runs are reused).
    train_sizes : str or sequence of float
        Fractions of the training groups, e.g. ``[0.1, 0.25, 0.5, 1]``.
    cv : bool
        Every fold the test fold once at every size; the curve is the mean
        over folds (band: one standard deviation).
    **compare_options
        Anything :func:`spectro.compare` takes (epochs, jobs, seed, ...), but
        not ``train_fraction``, which the curve sets.
    """
    sizes = parse_train_sizes(train_sizes)
    if "train_fraction" in compare_options:
        raise SpectroError("a learning curve sets the training fraction itself; give --train-sizes, "
                           "not --train-fraction")
    _check_out(out, sizes)
    say = printer(progress, "compare: ")
    comparisons: dict[float, Any] = {}
    for f in sizes:
        say(f"learning curve: {f:g} of the training groups")
        comparisons[f] = run_compare(store, models, os.path.join(out, f"size-{f:g}"), cv=cv, progress=progress,
                                 train_fraction=f, **compare_options)
    rows = [_row(c, r, f) for f, c in comparisons.items() for r in c.table.to_dict("records")]
    table = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    # The ensemble has no runs of its own: it learned from its members' examples.
    members = table.groupby("train_fraction")["train_examples"].transform("max")
    table["train_examples"] = table["train_examples"].fillna(members)
    curve = LearningCurve(table, comparisons, out)
    write_csv(os.path.join(out, "curve.csv"), CURVE_COLUMNS,
              [{k: ("" if pd.isna(v) else v) for k, v in r.items()} for r in rows])
    write_text(os.path.join(out, "curve.md"), curve.markdown() + "\n")
    curve.figure(os.path.join(out, "curve.png"))
    say(f"learning curve of {len(comparisons[sizes[0]].table)} models at {len(sizes)} sizes in "
        f"{os.path.join(out, 'curve.png')}")
    return curve


def _row(c: Any, r: dict, fraction: float) -> dict:
    examples = []
    for run_dir in c.runs.get(r["model"], []):
        try:
            n = read_run_info(run_dir)["examples"]
            examples.append(int(n["train"]) + int(n["val"]))
        except (SpectroError, KeyError, TypeError, ValueError):
            continue  # a failed run: its row says so through its status
    return {"model": r["model"], "train_fraction": fraction,
            "train_examples": float(np.mean(examples)) if examples else np.nan,
            **{k: r.get(k, np.nan) for k in CURVE_COLUMNS[3:]}}


def _check_out(out: str, sizes: list[float]) -> None:
    """``out`` is new, empty, or a learning curve's own folder (size-*/ and curve.*): nothing else is touched."""
    if not os.path.isdir(out):
        if os.path.exists(out):
            raise SpectroError(f"{out} is a file; a learning curve writes a folder")
        return
    foreign = sorted(e for e in os.listdir(out) if not (e.startswith("size-") or e in _OWN or e.startswith(".")))
    if foreign:
        raise SpectroError(f"{out} holds files a learning curve did not write ({', '.join(foreign[:3])}"
                           f"{', ...' if len(foreign) > 3 else ''}); choose a new --out")
