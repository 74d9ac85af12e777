"""Files of stores and runs: JSON and CSV with atomic writes and one-line errors on read, modes that
follow the umask, directory swaps, and an exclusive lock on an output path."""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import re
import shutil
import tempfile
from typing import Any, Iterable, Iterator

import numpy as np
from filelock import FileLock, Timeout

from spectro.errors import SpectroError, cannot_write, write_advice

__all__ = ["read_json", "write_json", "read_csv", "write_csv", "write_text", "write_bytes", "write_npy", "swap_dir", "recover_dir", "umask_mode",
           "make_temp_dir", "exclusive", "lock_path", "temp_prefix", "clean_stale_temps",
           "unique_name"]


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename); numpy values become plain ones."""
    with _atomic(path, ".json") as f:
        json.dump(obj, f, indent=2, allow_nan=False, default=_json_default)
        f.write("\n")


def read_json(path: str, *, what: str = "spectro directory") -> Any:
    """Parse a JSON file; a missing or broken one raises :class:`SpectroError` naming ``what``.

    Strict JSON: every number is finite. Python's parser takes ``NaN``,
    ``Infinity`` and an overflowing ``1e999`` (as inf) by default; spectro
    never writes them (:func:`write_json` refuses them), so one found in a
    store or a run was put there by hand or by damage, and is refused here
    rather than turning into "high nan" or a wrong score later.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, parse_constant=_refuse_constant, parse_float=_finite_float)
    except FileNotFoundError:
        raise SpectroError(f"missing {path}: not a complete {what}") from None
    except json.JSONDecodeError as err:
        raise SpectroError(f"{path} is not valid JSON: {err}") from None
    except _NonFinite as err:
        raise SpectroError(f"{path}: {err} is not a finite number (strict JSON); restore or rebuild the {what}") \
            from None


class _NonFinite(ValueError):
    """A JSON number that is not finite; ``str()`` is its text as written."""


def _refuse_constant(token: str) -> float:
    raise _NonFinite(token)


def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise _NonFinite(text)
    return value


def write_csv(path: str, columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` under the header ``columns`` atomically; extra keys are ignored.

    UTF-8 with ``surrogateescape``: a file name that is not UTF-8 (Python
    holds its bytes as lone surrogates) is written as its own bytes, and
    :func:`read_csv` gives back the same string, so the name still opens.
    """
    with _atomic(path, ".csv", newline="") as f:
        f.reconfigure(errors="surrogateescape")
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) atomically: a reader sees the old file or the new one, never half of it."""
    suffix = os.path.splitext(path)[1] or ".txt"
    with _atomic(path, suffix) as f:
        f.write(text)


def write_bytes(path: str, data: Any) -> None:
    """Write ``data`` (bytes or a buffer) atomically: a reader sees the old file or the new one, never half of it."""
    suffix = os.path.splitext(path)[1] or ".bin"
    with _atomic(path, suffix, binary=True) as f:
        f.write(data)


def write_npy(path: str, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` atomically: a reader (a cache check) sees the whole array or no file."""
    with _atomic(path, ".npy", binary=True) as f:
        np.save(f, array)


def read_csv(path: str, *, what: str = "spectro directory") -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; a missing one raises :class:`SpectroError` naming ``what``.

    Bytes that are not UTF-8 come back as lone surrogates (see :func:`write_csv`).
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise SpectroError(f"missing {path}: not a complete {what}") from None


class _atomic:
    """Open a temporary file beside ``path`` for writing; rename it over ``path`` on success.

    On any failure (a full disk often shows only when the buffer is flushed at close) the temporary
    file is removed, and an OSError names ``path`` (a failed write on an open file names no file).
    """

    def __init__(self, path: str, suffix: str, newline: str | None = None, binary: bool = False) -> None:
        self.path, self.suffix, self.newline, self.binary = path, suffix, newline, binary

    def __enter__(self):
        fd, self.tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=self.suffix, dir=os.path.dirname(self.path) or ".")
        os.fchmod(fd, umask_mode(0o666))  # mkstemp makes 0600; a written file should read like any other
        if self.binary:
            self.f = os.fdopen(fd, "wb")
        else:
            self.f = os.fdopen(fd, "w", encoding="utf-8", newline=self.newline)
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        failure = exc
        try:
            self.f.close()
            if exc is None:
                os.replace(self.tmp, self.path)
                return
        except OSError as err:
            failure = failure or err
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        if isinstance(failure, OSError) and failure.filename is None:
            raise OSError(failure.errno, failure.strerror, self.path) from failure
        if failure is not exc:
            raise failure


def umask_mode(mode: int) -> int:
    """``mode`` with the process umask applied, as ``open``/``mkdir`` would (0o666 -> 0o644 under 022)."""
    return mode & ~_umask()


def _umask() -> int:
    # Linux shows the umask without changing it; elsewhere set and restore it.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_dir(*, prefix: str, dir: str) -> str:
    """A new temporary directory like :func:`tempfile.mkdtemp`, with the umask's mode instead of 0700.

    For directories renamed into place (a store, a run): once renamed, they
    should be as readable as any directory the user creates.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir=dir)
    os.chmod(path, umask_mode(0o777))
    return path


def lock_path(path: str) -> str:
    """The lock file of output ``path``: hidden beside it, because ``path`` itself is swapped by a rename."""
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}.lock")


@contextlib.contextmanager
def exclusive(path: str, *, what: str = "output") -> Iterator[str]:
    """Hold an exclusive lock on output ``path`` (a store, a run directory) for the ``with`` block.

    A second process that asks for the same lock fails at once rather than
    racing to write the same output. The lock is an OS lock (``flock``) on
    the file :func:`lock_path`: it goes away with the process, so a killed
    run never leaves a stale lock (only an empty file). On leaving the block
    the file is removed while the lock is still held, so nothing is left
    beside the output: a process that opened the file just before cannot
    lock it while we hold it, and filelock (>= 4.3) refuses an inode that was
    unlinked before its ``flock`` succeeded, so two processes never hold two
    different files.

    Raises
    ------
    SpectroError
        "another process is writing ``what`` ``path`` (lock ``FILE``)".
    """
    lock_file = lock_path(path)
    lock = FileLock(lock_file, timeout=0, mode=umask_mode(0o666))
    try:
        os.makedirs(os.path.dirname(lock_file), exist_ok=True)
        lock.acquire()
    except Timeout:
        raise SpectroError(f"another process is writing {what} {path} (lock {lock_file})") from None
    except OSError as err:  # a read-only or full place: one line before anything is written
        failure = cannot_write(err, write_advice(err))
        if failure is None:
            raise
        raise failure from None
    try:
        yield lock_file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        lock.release()


def temp_prefix(name: str = "") -> str:
    """The start of a temporary file's name beside its target: hidden, with this process's pid.

    ``.tmp-PID-`` (or ``.NAME.tmp-PID-``): the pid lets :func:`clean_stale_temps`
    remove what a process killed with SIGKILL left, and nothing of a live one.
    """
    return f".{name}.tmp-{os.getpid()}-" if name else f".tmp-{os.getpid()}-"


_TEMP_NAME = re.compile(r"^\.(?:.+\.)?tmp-(\d+)[-.]")


def clean_stale_temps(folder: str) -> list[str]:
    """Remove the temporary files in ``folder`` left by processes that are gone; return their names.

    Only regular files named by :func:`temp_prefix` (or an export's
    ``.NAME.tmp-PID.onnx``) whose pid is not running on this host; a file
    that cannot be removed is left alone.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_NAME.match(name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(name)
    return removed


def unique_name(name: str, taken: set[str], hint: str = "") -> str:
    """``name``, or (already in ``taken``) ``HINT_name``, or ``stem-2.ext``, ``stem-3.ext``...; added to ``taken``.

    For files written side by side from sources whose names meet (``x/a.wav``
    and ``y/a.wav`` both draw ``a.png``): the second becomes ``y_a.png`` with
    ``hint="y"``, never a silent overwrite of the first.
    """
    safe_hint = re.sub(r"[^A-Za-z0-9._-]+", "_", hint).strip("._")
    candidates = [name] + ([f"{safe_hint}_{name}"] if safe_hint else [])
    stem, ext = os.path.splitext(name)
    pick = next((c for c in candidates if c not in taken), None)
    k = 2
    while pick is None:
        pick = f"{stem}-{k}{ext}" if f"{stem}-{k}{ext}" not in taken else None
        k += 1
    taken.add(pick)
    return pick


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
