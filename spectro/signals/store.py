"""The on-disk feature store: atomic writes, memory-mapped reads.

Layout of a store directory::

    features.npy   float16 (N, 1, F, T), read with mmap
    index.csv      one row per image: id, path, start, end, label, fold, group,
                   size, mtime_ns (the last two let a re-run reuse the rows of
                   unchanged files)
    labels.json    class names in label-id order
    config.json    FeatureConfig, its fingerprint, source, folds, versions
    errors.csv     every input that was skipped, and why

:class:`StoreWriter` builds all of it in a hidden temporary directory beside
the target and renames it into place only when complete, so a killed run
leaves the previous store (or none), never a half one that looks whole.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any, Iterable

import numpy as np

from spectro.config import FeatureConfig
from spectro.errors import SpectroError, StoreDamaged
from spectro.utils.files import make_temp_dir, read_csv, read_json, recover_dir, swap_dir, write_csv, write_json

__all__ = ["Store", "StoreWriter", "open_store", "INDEX_COLUMNS", "StoreDamaged"]

INDEX_COLUMNS = ("id", "path", "start", "end", "label", "fold", "group", "size", "mtime_ns")
ERROR_COLUMNS = ("path", "reason")
_HEADER_BYTES = 128  # fixed .npy header size, so the header can be rewritten once N is known
_FORMAT = "spectro-store-1"
_FILES = ("config.json", "labels.json", "features.npy", "index.csv", "errors.csv")


class Store:
    """A feature store opened for reading.

    Attributes
    ----------
    features : np.memmap [shape=(N, 1, F, T), dtype=float16]
    y : np.ndarray [shape=(N,), dtype=int64]
        Label ids, indexing :attr:`labels`.
    folds : np.ndarray [shape=(N,), dtype=int64]
    groups : np.ndarray [shape=(N,), dtype=object]
        Group of each row (speaker, recording...), or its source file.
    ids, paths : np.ndarray [shape=(N,), dtype=object]
    labels : list of str
    config : FeatureConfig
    meta : dict
        The whole of config.json.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        config_file = os.path.join(path, "config.json")
        self.meta: dict[str, Any] = {}
        try:
            self.meta = read_json(config_file, what="spectro store")
        except SpectroError as err:
            raise self._damaged(str(err)) from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != _FORMAT:
            raise SpectroError(f"{path} is not a spectro store (config.json has no {_FORMAT!r} format)")
        missing = [f for f in _FILES if not os.path.isfile(os.path.join(path, f))]
        if missing:
            raise self._damaged(f"{', '.join(missing)} missing")
        try:
            self.config = FeatureConfig.from_dict(self.meta.get("feature_config"), source=config_file)
            self.labels: list[str] = read_json(os.path.join(path, "labels.json"), what="spectro store")
        except SpectroError as err:
            raise self._damaged(str(err)) from None
        if not isinstance(self.labels, list) or not all(isinstance(n, str) for n in self.labels):
            raise self._damaged("labels.json is not a list of class names")
        self.features = self._open_features()
        try:
            rows = read_csv(os.path.join(path, "index.csv"), what="spectro store")
        except (UnicodeDecodeError, ValueError) as err:
            raise self._damaged(f"index.csv cannot be read ({err})") from None
        if len(rows) != self.features.shape[0]:
            raise self._damaged(f"{len(rows)} index rows but {self.features.shape[0]} images")
        label_id = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({r.get("label") or "" for r in rows} - set(label_id))
        if unknown:
            raise self._damaged(f"index.csv has labels that labels.json lacks: {unknown[:5]}")
        try:
            self.ids = np.array([r["id"] for r in rows], dtype=object)
            self.paths = np.array([r["path"] for r in rows], dtype=object)
            self.starts = np.array([float(r["start"]) for r in rows])
            self.ends = np.array([float(r["end"]) for r in rows])
            self.y = np.array([label_id[r["label"]] for r in rows], dtype=np.int64)
            self.folds = np.array([int(r["fold"]) for r in rows], dtype=np.int64)
            self.groups = np.array([r["group"] or r["path"] for r in rows], dtype=object)
            for r in rows:
                int(r["size"]), int(r["mtime_ns"])  # noqa: B018 - read back by file_rows() on a re-run
        except (KeyError, TypeError, ValueError) as err:
            raise self._damaged(f"index.csv has a missing or malformed field ({type(err).__name__}: {err})") from None
        self._rows = rows

    def _damaged(self, what: str) -> StoreDamaged:
        source = self.meta.get("source") if isinstance(self.meta, dict) else None
        source = source.get("path") if isinstance(source, dict) else None
        return StoreDamaged(
            f"store {self.path} is damaged: {what}; rebuild it with "
            f"`spectro preprocess {source or 'SOURCE'} --out {self.path}`",
            what=what,
        )

    def _open_features(self) -> np.memmap:
        """Map features.npy after checking its header against its size (a truncated file would not map)."""
        file = os.path.join(self.path, "features.npy")
        try:
            with open(file, "rb") as f:
                version = np.lib.format.read_magic(f)
                fmt = np.lib.format
                read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, fortran, dtype = read(f)
                offset = f.tell()
        except (ValueError, OSError, SyntaxError) as err:
            raise self._damaged(f"features.npy has no valid header ({err})") from None
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        size = os.path.getsize(file)
        if dtype != np.float16 or len(shape) != 4 or fortran:
            raise self._damaged(f"features.npy holds {dtype} {shape}, not float16 (N, 1, F, T)")
        if size != expected:
            raise self._damaged(f"features.npy is {size} bytes, its header {shape} needs {expected}")
        if tuple(shape[1:]) != self.config.image_shape:
            raise self._damaged(f"images are {shape[1:]}, config.json says {self.config.image_shape}")
        try:
            return np.load(file, mmap_mode="r")
        except (ValueError, OSError) as err:
            raise self._damaged(f"features.npy cannot be mapped ({err})") from None

    def check_finite(self, *, scan: bool = False) -> None:
        """Refuse a store that may hold NaN or infinite images (they would poison training).

        Stores from this version record ``"finite": true`` in config.json after
        checking every image as it was written; that flag is trusted unless
        ``scan`` is set. Older stores, without the flag, are scanned (one
        pass over the memory map, in blocks).

        Raises
        ------
        SpectroError
            One line with the number of non-finite images and how to rebuild.
        """
        if self.meta.get("finite") is True and not scan:
            return
        bad = 0
        for i in range(0, len(self), 1024):
            block = np.asarray(self.features[i : i + 1024])
            bad += int((~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)).sum())
        if bad:
            raise self._damaged(f"{bad} of {len(self)} images hold NaN or infinite values")

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def fold_ids(self) -> list[int]:
        return sorted(set(self.folds.tolist()))

    def errors(self) -> list[dict[str, str]]:
        """The rows of errors.csv: inputs skipped when the store was built."""
        return read_csv(os.path.join(self.path, "errors.csv"), what="spectro store")

    def file_rows(self) -> dict[str, tuple[int, int, list[int]]]:
        """``id prefix -> (size, mtime_ns, row numbers)`` for reuse by a re-run."""
        out: dict[str, tuple[int, int, list[int]]] = {}
        for i, r in enumerate(self._rows):
            key = r["id"].rsplit("@", 1)[0]
            entry = out.setdefault(key, (int(r["size"]), int(r["mtime_ns"]), []))
            entry[2].append(i)
        return out

    def summary(self) -> dict[str, Any]:
        """Counts per class and fold, shape and config: what ``spectro info`` prints."""
        counts = {
            name: {int(f): int(np.sum((self.y == c) & (self.folds == f))) for f in self.fold_ids}
            for c, name in enumerate(self.labels)
        }
        return {
            "path": self.path,
            "examples": len(self),
            "classes": len(self.labels),
            "image_shape": list(self.image_shape),
            "folds": self.fold_ids,
            "fold_names": self.meta.get("folds", {}).get("names"),
            "counts": counts,
            "empty": [[name, f] for name, c in counts.items() for f, n in c.items() if n == 0],
            "skipped": len(self.errors()),
            "feature_config": self.config.identity(),
            "source": self.meta.get("source"),
            "created": self.meta.get("created"),
        }


def open_store(path: str) -> Store:
    """Open the store at ``path`` (recovering one left mid-swap by a crash).

    The store is checked whole first: every file present, features.npy as
    long as its header says, as many index rows as images, every label of
    the index in labels.json. A store that is not raises
    :class:`StoreDamaged` (a :class:`SpectroError`): one line naming what is
    wrong and the command that rebuilds it. Non-finite images are checked by
    :meth:`Store.check_finite`, which training calls.
    """
    recover_dir(path, marker="config.json")
    if not os.path.isdir(path):
        raise SpectroError(f"store not found: {path}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise SpectroError(f"{path} is not a spectro store (no config.json)")
    return Store(path)


class StoreWriter:
    """Write a new store beside ``out`` and swap it in on :meth:`commit`.

    Images are appended to a .npy file as they come (memory stays flat
    whatever the number of files); its header is written last, once the
    number of rows is known.
    """

    def __init__(self, out: str, image_shape: tuple[int, int, int]) -> None:
        self.out = os.path.abspath(out)
        parent, name = os.path.split(self.out)
        os.makedirs(parent, exist_ok=True)
        recover_dir(self.out, marker="config.json")
        _check_replaceable(out, self.out)
        _clean_stale(parent, name)
        self.tmp = make_temp_dir(prefix=f".{name}.tmp-{os.getpid()}-", dir=parent)
        self.image_shape = tuple(image_shape)
        self.n = 0
        self._f = open(os.path.join(self.tmp, "features.npy"), "wb")
        self._f.write(b"\0" * _HEADER_BYTES)

    def append(self, images: np.ndarray) -> None:
        """Append ``images`` ``(k, 1, F, T)``; cast to float16.

        Raises ValueError for a non-finite image (the caller skips those with
        a reason first): the store records in config.json that every image it
        holds was checked finite.
        """
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"image shape {images.shape[1:]} != store shape {self.image_shape}")
        images = np.ascontiguousarray(images, dtype=np.float16)
        if not np.isfinite(images).all():
            raise ValueError("non-finite image appended to a store")
        self._f.write(memoryview(images))  # no extra copy
        self.n += images.shape[0]

    def commit(
        self,
        index_rows: list[dict[str, Any]],
        labels: list[str],
        meta: dict[str, Any],
        errors: Iterable[tuple[str, str]],
    ) -> str:
        """Write the index, labels, errors and config, then rename into place."""
        if len(index_rows) != self.n:
            raise ValueError(f"{len(index_rows)} index rows for {self.n} images")
        self._f.seek(0)
        self._f.write(_npy_header((self.n, *self.image_shape)))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        write_csv(os.path.join(self.tmp, "index.csv"), INDEX_COLUMNS, index_rows)
        write_csv(os.path.join(self.tmp, "errors.csv"), ERROR_COLUMNS,
                   [{"path": p, "reason": r} for p, r in errors])
        write_json(os.path.join(self.tmp, "labels.json"), labels)
        write_json(os.path.join(self.tmp, "config.json"), {"format": _FORMAT, **meta, "finite": True})
        return swap_dir(self.tmp, self.out)

    def abort(self) -> None:
        """Drop the temporary directory; the previous store is untouched."""
        if not self._f.closed:
            self._f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _check_replaceable(given: str, path: str) -> None:
    """Refuse to replace ``path`` unless it is absent, an empty directory or a store holding only its own files.

    The swap replaces the whole directory: anything spectro did not write
    there (a user's notes, a comparison's runs and report) would be deleted.

    Raises
    ------
    SpectroError
        One line naming ``given`` and up to three foreign entries; nothing is touched.
    """
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise SpectroError(f"--out {given} exists and is not a directory; choose another path")
    entries = sorted(os.listdir(path))
    if not entries:
        return
    if "config.json" not in entries:
        raise SpectroError(f"--out {given} exists and is not a spectro store; choose another path")
    foreign = [e for e in entries if e not in _FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SpectroError(f"--out {given} is a spectro store that also holds files spectro did not write there "
                           f"({shown}); replacing it would delete them: move them out or choose another path")


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version-1.0 .npy header for float16 C-order data, padded to ``_HEADER_BYTES``."""
    text = repr({"descr": np.dtype(np.float16).str, "fortran_order": False, "shape": tuple(shape)})
    body_len = _HEADER_BYTES - 10  # magic (6) + version (2) + length (2)
    text = text.ljust(body_len - 1) + "\n"
    if len(text) != body_len:
        raise ValueError(f"shape {shape} does not fit the fixed .npy header")
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text.encode("latin1")


def _clean_stale(parent: str, name: str) -> None:
    """Remove temporary directories left by killed runs (their process is gone)."""
    for tmp in glob.glob(os.path.join(parent, f".{glob.escape(name)}.tmp-*")):
        try:
            pid = int(os.path.basename(tmp).split(".tmp-")[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
