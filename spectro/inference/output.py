"""Predictions written for people and programs: a table, CSV or JSON, and what went wrong, counted.

``spectro predict`` is :func:`spectro.load` + :meth:`Predictor.predict_files`
+ :func:`write_predictions`: this module is the part that used to be the
command line's own loop.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, TextIO

from spectro.inference.defaults import TOP_K
from spectro.errors import SpectroError
from spectro.inference.predict import CSV_COLUMNS, FilePrediction
from spectro.utils.files import unique_name

__all__ = ["write_predictions", "PredictionSummary", "FORMATS"]

#: Output formats of :func:`write_predictions`.
FORMATS = ("table", "csv", "json")


@dataclass
class PredictionSummary:
    """What :func:`write_predictions` wrote: counts, the files that failed, and notes for the user."""

    files: int = 0
    failed: int = 0
    cropped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    messages: list[str] = field(default_factory=list)


def write_predictions(results: Iterable[FilePrediction], out: TextIO, *, fmt: str = "table", top_k: int = TOP_K,
                      png: Optional[str] = None, predictor: Any = None) -> PredictionSummary:
    """Write ``results`` to ``out`` as they come, in ``fmt``; with ``png``, each file's timeline figure too.

    Parameters
    ----------
    results : iterable of FilePrediction
        From :meth:`spectro.inference.predict.Predictor.predict_files`.
    out : text stream
        Where the table, CSV rows or JSON list go (errors are not written there).
    fmt : {"table", "csv", "json"}
        ``table``: a header, then one line per file (and per window); ``csv``:
        :data:`~spectro.inference.predict.CSV_COLUMNS`; ``json``: one list.
    top_k : int
        Probabilities shown per file (at least 1).
    png : str, optional
        A folder for each file's spectrogram with its labels over time
        (needs ``predictor``).

    Returns
    -------
    PredictionSummary
        ``messages`` hold one line per failed file and the notes (cropped
        files, how many failed) for the caller to show.
    """
    if fmt not in FORMATS:
        raise SpectroError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise SpectroError(f"--top-k must be a whole number of at least 1, got {top_k!r}")
    if png is not None and predictor is None:
        raise SpectroError("writing figures (png=) needs the predictor")
    if png is not None:
        _check_writable(png)  # before any prediction, not after the first file's line
    summary = PredictionSummary()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, restval="") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    done, header = [], fmt == "table"
    cfg = None
    figures: set[str] = set()  # names given so far: x/a.wav and y/a.wav get two figures, not one
    for r in results:
        summary.files += 1
        summary.cropped += r.cropped
        if not r.ok:
            summary.failed += 1
            summary.errors.append((r.source, r.error))
            summary.messages.append(f"error: {r.source}: {r.error}")
        if fmt == "table":
            if r.ok:
                if header:
                    out.write(f"file  label  [top {top_k}: class probability]\n")
                    header = False
                out.write("\n".join(r.table_lines(top_k)) + "\n")
        elif writer:
            writer.writerows(r.csv_rows(top_k))
        else:
            done.append(r.to_dict(top_k))
        if png and r.ok:
            name = unique_name(predictor.figure_name(r), figures, os.path.basename(os.path.dirname(r.source)))
            predictor.plot(r, png, file_name=name)
        out.flush()
    if fmt == "json":
        json.dump(done, out, allow_nan=False)
        out.write("\n")
    if predictor is not None:
        cfg = predictor.feature_config
    if summary.cropped and cfg is not None:
        summary.messages.append(
            f"{summary.cropped} file(s) longer than the run's {cfg.duration:g} s were cropped to their {cfg.crop} "
            f"{cfg.duration:g} s, as in training; --window {cfg.duration:g} predicts over the whole recording")
    if summary.failed:
        summary.messages.append(f"{summary.failed} of {summary.files} files could not be used")
    if png and summary.files > summary.failed:
        summary.messages.append(f"figures in {os.path.abspath(png)}")
    return summary


def _check_writable(folder: str) -> None:
    """Make ``folder`` and write a scratch file in it; a read-only or full one is one SpectroError line."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SpectroError(f"cannot write figures to {folder}: {err.strerror or err}; give --png a folder you can "
                           "write to") from None
