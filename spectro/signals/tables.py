"""CSV and TSV files of samples as signals: a sensor's channels exported as columns.

A file is one recording: one row per sample, one column per channel, with or
without a header row (recognised: a first row holding a cell that is not a
number). The signal is the one numeric column, or ``column`` (a header name,
or a 0-based index) of several; without ``column``, ``channels`` says what
several become: ``"mean"`` (averaged, as audio channels are), ``"first"``,
or a column's name. A column named like a time axis (``time``, ``t``,
``timestamp``, ``seconds``) is never averaged in. The separator is a comma
for ``.csv`` (or a semicolon when the header row holds one and no comma),
a tab for ``.tsv``.

A CSV file carries no sample rate: its samples are at the rate the user
gives (``--sample-rate``, or a manifest's rate column).
"""

from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np
import pandas as pd

from spectro.errors import BadInput, first_line

__all__ = ["TABLE_EXTENSIONS", "read_table"]

TABLE_EXTENSIONS = frozenset({".csv", ".tsv"})
_TIME = re.compile(r"(time|t|timestamp|seconds|time_s|sec|s)", re.IGNORECASE)


def read_table(path: str, *, column: Optional[str] = None, channels: str = "mean") -> np.ndarray:
    """The signal of a CSV/TSV file of samples [shape=(n,), dtype=float32] (not yet checked).

    Raises
    ------
    BadInput
        An unreadable or empty file, a column that is not there, or text in
        a column of samples (its row and text named).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = f.readline()
    except UnicodeDecodeError:
        raise BadInput("not a text file of samples (not UTF-8)") from None
    except OSError as err:
        raise BadInput(f"cannot read: {err.strerror or first_line(err)}") from None
    if not first.strip():
        raise BadInput("no samples (the file's first line is empty)")
    sep = "\t" if os.path.splitext(path)[1].lower() == ".tsv" else ";" if ";" in first and "," not in first else ","
    cells = [c.strip().strip('"') for c in first.rstrip("\r\n").split(sep)]
    header = any(not _number(c) for c in cells if c)
    try:
        table = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, skip_blank_lines=True,
                            encoding="utf-8-sig", keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise BadInput(f"not a table of samples: {first_line(err)[:200]}") from None
    if table.empty:
        raise BadInput("no samples (a header row only)" if header else "no samples")
    names = [str(c).strip() for c in table.columns] if header else [str(i) for i in range(table.shape[1])]
    table.columns = names
    picked = _columns(names, column, channels, header)
    data = np.stack([_numeric(table[name], name, header) for name in picked], axis=1)  # (n, channels)
    return (data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]).astype(np.float32)


def _columns(names: list[str], column: Optional[str], channels: str, header: bool) -> list[str]:
    """The columns that make the signal."""
    choose = column if column is not None else channels if channels not in ("mean", "first") else None
    if choose is not None:
        if choose in names:
            return [choose]
        if re.fullmatch(r"\d+", choose) and int(choose) < len(names):
            return [names[int(choose)]]
        shown = ", ".join(names) if header else f"{len(names)} columns without a header (indices 0-{len(names) - 1})"
        raise BadInput(f"no column {choose!r} (columns: {shown})")
    samples = [n for n in names if not (header and _TIME.fullmatch(n))] or names
    return samples[:1] if channels == "first" else samples


def _numeric(values: pd.Series, name: str, header: bool) -> np.ndarray:
    out = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(out) & (values.str.strip().str.lower() != "nan").to_numpy())
    if bad.size:
        row = int(bad[0]) + (2 if header else 1)
        raise BadInput(f"text in the column of samples {name!r}: {values.iloc[bad[0]]!r} at line {row} "
                       f"({bad.size} such cells)")
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
