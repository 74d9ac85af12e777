"""Files of stores and runs: JSON and CSV with atomic writes and one-line errors on read, and directory swaps."""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import tempfile
from typing import Any, Iterable

import numpy as np

from .errors import SpectroError

__all__ = ["read_json", "write_json", "read_csv", "write_csv", "swap_dir", "recover_dir"]


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename); numpy values become plain ones."""
    with _atomic(path, ".json") as f:
        json.dump(obj, f, indent=2, allow_nan=False, default=_json_default)
        f.write("\n")


def read_json(path: str, *, what: str = "spectro directory") -> Any:
    """Parse a JSON file; a missing or broken one raises :class:`SpectroError` naming ``what``."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SpectroError(f"missing {path}: not a complete {what}") from None
    except json.JSONDecodeError as err:
        raise SpectroError(f"{path} is not valid JSON: {err}") from None


def write_csv(path: str, columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` under the header ``columns`` atomically; extra keys are ignored."""
    with _atomic(path, ".csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def read_csv(path: str, *, what: str = "spectro directory") -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; a missing one raises :class:`SpectroError` naming ``what``."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise SpectroError(f"missing {path}: not a complete {what}") from None


class _atomic:
    """Open a temporary file beside ``path`` for writing; rename it over ``path`` on success."""

    def __init__(self, path: str, suffix: str, newline: str | None = None) -> None:
        self.path, self.suffix, self.newline = path, suffix, newline

    def __enter__(self):
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", suffix=self.suffix, dir=os.path.dirname(self.path) or ".")
        self.f = os.fdopen(fd, "w", encoding="utf-8", newline=self.newline)
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def swap_dir(new: str, path: str) -> str:
    """Put the finished directory ``new`` in place of ``path`` (which may not exist).

    Two renames on one file system: ``path`` -> ``.NAME.old-PID``, then
    ``new`` -> ``path``; the backup is removed last. Readers see the old
    directory or the new one, never a mixture; a crash between the renames
    leaves the old one under its backup name, which :func:`recover_dir`
    puts back. Stores and a run's ``model/`` are swapped in this way.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    backup = os.path.join(parent, f".{name}.old-{os.getpid()}")
    if os.path.exists(path):
        os.rename(path, backup)
    os.rename(new, path)
    if os.path.exists(backup):
        shutil.rmtree(backup)
    return path


def recover_dir(path: str, *, marker: str) -> None:
    """After a crash inside :func:`swap_dir`: restore the backup of ``path`` holding ``marker``."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    if not os.path.exists(path):
        for backup in sorted(glob.glob(os.path.join(parent, f".{glob.escape(name)}.old-*"))):
            if os.path.isfile(os.path.join(backup, marker)):
                os.rename(backup, path)
                return
