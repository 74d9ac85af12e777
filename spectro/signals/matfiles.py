"""MATLAB ``.mat`` files as signals: v4/v5/v7 through scipy.io, v7.3 (HDF5) through h5py.

A vibration recording such as one of the Case Western bearing set is one
``.mat`` per recording holding a few arrays: ``X097_DE_time`` (drive end,
``(n, 1)``), ``X097_FE_time`` (fan end) and the scalar ``X097RPM``. The
signal is the file's one numeric *vector* (any shape with one dimension
longer than 1: ``(n,)``, ``(n, 1)``, ``(1, n)``); scalars are never signals,
and a matrix is not one. Where a file holds several vectors, ``mat_key`` (a
regular expression searched in the names, ``_DE_time$``) picks one. Every
refusal is a :class:`~spectro.errors.BadInput` that names the keys found,
so errors.csv says what to give.

A ``.mat`` file carries no sample rate: its samples are at the rate the user
gives (``--sample-rate``, or a manifest's rate column).
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import scipy.io

from spectro.errors import BadInput, first_line

try:  # a declared dependency; a broken install still reads v5 files, and says what v7.3 needs
    import h5py
except ImportError:  # pragma: no cover - exercised by monkeypatching ``h5py = None``
    h5py = None

__all__ = ["MAT_EXTENSIONS", "mat_arrays", "read_mat", "is_hdf5"]

MAT_EXTENSIONS = frozenset({".mat"})
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# MATLAB classes of numeric arrays in a v7.3 file (char, cell, struct, logical... are not signals)
_NUMERIC_CLASSES = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}


def is_hdf5(path: str) -> bool:
    """Whether ``path`` is an HDF5 file (a MATLAB v7.3 ``.mat``): its signature at offset 0 or 512."""
    with open(path, "rb") as f:
        head = f.read(520)
    return head[:8] == _HDF5_SIGNATURE or head[512:520] == _HDF5_SIGNATURE


def mat_arrays(path: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """``name -> (shape, dtype kind)`` of every variable of a ``.mat`` file, in file order (no data read for v5).

    Shapes are as MATLAB shows them (a v7.3 file stores them transposed; they are turned back).
    Non-numeric variables have kind ``"O"``.

    Raises
    ------
    BadInput
        Not a .mat file, a damaged one, or a v7.3 file without h5py.
    """
    if _v73(path):
        with _open_h5(path) as f:
            return {name: (tuple(reversed(ds.shape)), ds.dtype.kind if _h5_numeric(ds) else "O")
                    for name, ds in f.items() if isinstance(ds, h5py.Dataset)}
    try:
        info = scipy.io.whosmat(path)
    except Exception as err:  # noqa: BLE001 - scipy raises many kinds for a damaged file
        raise BadInput(f"cannot read .mat file: {first_line(err)[:200]}") from None
    return {name: (tuple(shape), "f" if cls in _NUMERIC_CLASSES else "O") for name, shape, cls in info}


def read_mat(path: str, *, key: Optional[str] = None) -> np.ndarray:
    """The signal of a ``.mat`` file [shape=(n,), dtype=float32] (not yet checked: see ``check_signal``).

    Parameters
    ----------
    path : str
    key : str, optional
        A regular expression searched in the variable names (``_DE_time$``);
        None: the file's one numeric vector.

    Raises
    ------
    BadInput
        No numeric vector, several without ``key``, ``key`` matching none or
        several, or a match that is a matrix or a scalar: the message lists
        the file's variables with their shapes.
    """
    arrays = mat_arrays(path)
    name = pick_key(arrays, key)
    if _v73(path):
        with _open_h5(path) as f:
            data = np.asarray(f[name][()]).T  # MATLAB is column-major: h5py sees the transpose
    else:
        try:
            data = scipy.io.loadmat(path, variable_names=[name])[name]
        except Exception as err:  # noqa: BLE001
            raise BadInput(f"cannot read .mat file: {first_line(err)[:200]}") from None
    return np.asarray(data).reshape(-1).astype(np.float32)


def pick_key(arrays: dict[str, tuple[tuple[int, ...], str]], key: Optional[str]) -> str:
    """The variable that is the signal, among ``arrays`` (see :func:`read_mat`); raises :class:`BadInput`."""
    found = ", ".join(f"{n} {'x'.join(map(str, s)) or 'scalar'}" for n, (s, _) in arrays.items()) or "none"
    vectors = [n for n, (s, kind) in arrays.items() if kind in "fiub" and _is_vector(s)]
    if key is None:
        if len(vectors) == 1:
            return vectors[0]
        if not vectors:
            raise BadInput(f"no numeric 1-D array in the .mat file (variables: {found})")
        raise BadInput(f"{len(vectors)} signals in the .mat file ({', '.join(vectors)}): pick one with "
                       f"--mat-key REGEX (variables: {found})")
    regex = re.compile(key)
    matched = [n for n in arrays if regex.search(n)]
    if not matched:
        raise BadInput(f"no variable matches --mat-key {key!r} (variables: {found})")
    usable = [n for n in matched if n in vectors]
    if len(usable) == 1:
        return usable[0]
    if not usable:
        shapes = ", ".join(f"{n} {'x'.join(map(str, arrays[n][0])) or 'scalar'}" for n in matched)
        raise BadInput(f"--mat-key {key!r} matches no numeric 1-D array, only {shapes} (wrong rank or type; "
                       f"variables: {found})")
    raise BadInput(f"--mat-key {key!r} matches {len(usable)} signals ({', '.join(usable)}): make it match one "
                   f"(variables: {found})")


def _is_vector(shape: tuple[int, ...]) -> bool:
    """One dimension longer than 1, the others 1: ``(n,)``, ``(n, 1)``, ``(1, n)``; never a scalar or a matrix."""
    return sum(d > 1 for d in shape) == 1


def _v73(path: str) -> bool:
    try:
        return is_hdf5(path)
    except OSError as err:
        raise BadInput(f"cannot read: {err.strerror or first_line(err)}") from None


def _open_h5(path: str):
    if h5py is None:
        raise BadInput("MATLAB v7.3 (HDF5) .mat file, and h5py is not installed: pip install h5py "
                       "(or save it in MATLAB with -v7)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise BadInput(f"cannot read .mat file (HDF5): {first_line(err)[:200]}") from None


def _h5_numeric(ds) -> bool:
    cls = ds.attrs.get("MATLAB_class")
    cls = cls.decode() if isinstance(cls, bytes) else cls
    return (cls in _NUMERIC_CLASSES) if cls is not None else ds.dtype.kind in "fiu"
