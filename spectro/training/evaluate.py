"""``evaluate``: score a trained run on one side of its split, and write the report.

It works on every model kind unchanged, through :class:`spectro.training.run.Run`;
the numbers are :mod:`spectro.metrics`'.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from spectro.config import EVAL_SPLITS
from spectro.dataset.splits import rows_of_ids
from spectro.errors import SpectroError, cannot_write
from spectro.metrics.scores import compute_metrics
from spectro.plots.figures import plot_confusion
from spectro.signals.store import open_store
from spectro.training.run import Run, load_run, read_split
from spectro.utils.files import clean_stale_temps, write_csv, write_json

__all__ = ["evaluate", "finite_or_null"]


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite number replaced by None, so it is valid JSON (which has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_or_null(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def evaluate(run: Any, split: str = EVAL_SPLITS[0], store: Any = None, *, write: bool = True,
             chunk: int = 2048) -> dict[str, Any]:
    """Score a trained run on one side of its split.

    Parameters
    ----------
    run : str or Run
        A run directory or a loaded :class:`spectro.training.run.Run`.
    split : {"test", "val", "train", "all"}
        Which of the run's examples (by id, as recorded in its split.csv);
        ``all`` takes every row of the store, e.g. a new store of held-out
        recordings made with the same FeatureConfig.
    store : str or Store, optional
        Default: the store the run was trained on.
    write : bool
        Write ``RUN/eval/<split>.json``, ``<split>_per_class.csv``,
        ``<split>_confusion.csv``, ``<split>_confusion.png`` and
        ``<split>_predictions.csv``.

    Returns
    -------
    dict
        :func:`compute_metrics` plus ``split``, ``run``, ``store``; a value
        that is not a finite number is None (null in the JSON report).

    Raises
    ------
    SpectroError
        Unknown split, a store made with another FeatureConfig, labels the run
        does not know, or a split with no examples in the store.
    """
    split = {"validation": "val"}.get(split, split)
    if split not in EVAL_SPLITS:
        raise SpectroError(f"unknown split {split!r}; valid: {', '.join(EVAL_SPLITS)}")
    r = run if isinstance(run, Run) else load_run(str(run))
    if store is None:
        store = r.info["store"]["path"]
    st = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    st.check_finite()  # a changed or non-finite image is one line, not a traceback or a wrong score
    if st.config.fingerprint() != r.feature_config.fingerprint():
        raise SpectroError(f"store {st.path} was built with another FeatureConfig than run {r.path} "
                           f"(fingerprint {st.config.fingerprint()} vs {r.feature_config.fingerprint()})")
    if split == "all":
        rows = np.arange(len(st))
    else:
        wanted = read_split(r.path)[split]
        if not wanted:
            raise SpectroError(f"run {r.path} has no {split} examples")
        try:
            rows = rows_of_ids(st, wanted, what=f"run's {split} examples")
        except SpectroError as err:
            raise SpectroError(f"{err}; use --split all to score every row of it") from None
    if write:
        _check_writable(r.path)
    label_id = {name: i for i, name in enumerate(r.labels)}
    unknown = sorted({st.labels[c] for c in np.unique(st.y[rows])} - set(label_id))
    if unknown:
        raise SpectroError(f"the store has classes the run was not trained on: {unknown[:5]}")
    y = np.array([label_id[st.labels[c]] for c in st.y[rows]], dtype=np.int64)
    proba = np.concatenate([r.predict_proba(st.features[rows[s:s + chunk]]) for s in range(0, rows.size, chunk)])
    out = finite_or_null(compute_metrics(y, proba, r.labels))
    out.update(split=split, run=r.path, store=st.path)
    if write:
        with _report_errors(r.path):
            _write_report(r, st, split, rows, y, proba, out)
    return out


@contextlib.contextmanager
def _report_errors(run_path: str) -> Iterator[None]:
    """A report that cannot be written (read-only run, full disk) is one line saying where and what to do."""
    try:
        yield
    except OSError as err:
        failure = cannot_write(err, f"the report goes into {os.path.join(run_path, 'eval')}: make it writable, "
                                    "or score without a report (spectro evaluate --no-write)")
        if failure is None:
            raise
        raise failure from None


def _check_writable(run_path: str) -> None:
    """``RUN/eval`` can take the report: checked before the scoring, which may take a while."""
    d = os.path.join(run_path, "eval")
    with _report_errors(run_path):
        os.makedirs(d, exist_ok=True)
        try:
            with tempfile.TemporaryFile(dir=d):
                pass
        except OSError as err:  # named by the folder, not by the probe's random name
            raise OSError(err.errno, err.strerror, d) from err


def _write_report(r: Run, st: Any, split: str, rows: np.ndarray, y: np.ndarray, proba: np.ndarray,
                  out: dict[str, Any]) -> None:
    """``RUN/eval/<split>.*``: metrics JSON, per-class and confusion CSVs, the predictions, the figure."""
    d = os.path.join(r.path, "eval")
    os.makedirs(d, exist_ok=True)
    clean_stale_temps(d)  # what an evaluate killed with SIGKILL left
    write_json(os.path.join(d, f"{split}.json"), out)
    write_csv(os.path.join(d, f"{split}_per_class.csv"), ["class", "precision", "recall", "f1", "support"],
              [{"class": k, **v} for k, v in out["per_class"].items()])
    write_csv(os.path.join(d, f"{split}_confusion.csv"), ["true \\ predicted", *r.labels],
              [{"true \\ predicted": name, **dict(zip(r.labels, row))}
               for name, row in zip(r.labels, out["confusion_matrix"])])
    pred = proba.argmax(axis=1)
    write_csv(os.path.join(d, f"{split}_predictions.csv"), ["id", "label", "predicted", "probability"],
              [{"id": st.ids[i], "label": r.labels[t], "predicted": r.labels[p],
                "probability": f"{proba[j, p]:.6f}"} for j, (i, t, p) in enumerate(zip(rows, y, pred))])
    plot_confusion(np.asarray(out["confusion_matrix"]), r.labels, os.path.join(d, f"{split}_confusion.png"),
                   title=f"{os.path.basename(os.path.normpath(r.path))}: {split} "
                         f"(accuracy {out['accuracy']:.3f}, macro-F1 {out['macro_f1']:.3f})")


