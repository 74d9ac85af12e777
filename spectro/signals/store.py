"""The on-disk feature store: atomic writes, memory-mapped reads.

Layout of a store directory::

    features.npy   float16 (N, 1, F, T), read with mmap
    index.csv      one row per image: id, path, start, end, label, fold, group,
                   size, mtime_ns (the last two let a re-run reuse the rows of
                   unchanged files)
    labels.json    class names in label-id order
    config.json    FeatureConfig, its fingerprint, source, folds (and the fold
                   ids the index may use), versions, and a CRC-32 of each
                   block of rows of features.npy, taken as they were written
    errors.csv     every input that was skipped, and why

:class:`StoreWriter` builds all of it in a hidden temporary directory beside
the target and renames it into place only when complete, so a killed run
leaves the previous store (or none), never a half one that looks whole.
"""

from __future__ import annotations

import glob
import os
import shutil
import zlib
from typing import Any, Iterable

import numpy as np

from spectro.config import FeatureConfig
from spectro.errors import SpectroError, StoreDamaged
from spectro.utils.console import note
from spectro.utils.files import make_temp_dir, read_csv, read_json, recover_dir, swap_dir, write_csv, write_json
from spectro.utils.workers import process_alive

__all__ = ["Store", "StoreWriter", "open_store", "INDEX_COLUMNS", "StoreDamaged", "BlockChecksums",
           "CHECKSUM_BLOCK_BYTES"]

INDEX_COLUMNS = ("id", "path", "start", "end", "label", "fold", "group", "size", "mtime_ns")
ERROR_COLUMNS = ("path", "reason")
_HEADER_BYTES = 128  # fixed .npy header size, so the header can be rewritten once N is known
_FORMAT = "spectro-store-1"
_FILES = ("config.json", "labels.json", "features.npy", "index.csv", "errors.csv")
#: About this many bytes of features.npy per checksum: one CRC-32 per block of whole rows.
CHECKSUM_BLOCK_BYTES = 4 << 20


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
        self._check_index()
        self._rows = rows
        self._verified = False

    def _check_index(self) -> None:
        """index.csv is consistent in itself and with config.json: unique ids, known folds, finite times.

        A fold no fold list knows (an edited 99) would make a test set of one
        example; a duplicated id would make a split by ids ambiguous.
        """
        ids, first = {}, None
        for i, name in enumerate(self.ids):
            if name in ids:
                first = (name, ids[name], i)
                break
            ids[name] = i
        if first is not None:
            name, a, b = first
            raise self._damaged(f"index.csv has the id {name!r} twice (rows {a + 2} and {b + 2})")
        known = self._known_folds()
        if known is not None:
            stray = np.flatnonzero(~np.isin(self.folds, sorted(known)))
            if stray.size:
                i = int(stray[0])
                raise self._damaged(f"index.csv row {i + 2} ({self.ids[i]}) has fold {self.folds[i]}, which the "
                                    f"store's folds {sorted(known)} do not hold ({stray.size} such row(s))")
        times = np.isfinite(self.starts) & np.isfinite(self.ends)
        if not times.all():
            i = int(np.flatnonzero(~times)[0])
            raise self._damaged(f"index.csv row {i + 2} ({self.ids[i]}) has a start or end that is not a finite number")

    def _known_folds(self) -> set[int] | None:
        """The folds config.json says the store holds (None: an older store that does not say)."""
        if isinstance(self.meta.get("fold_ids"), list):
            return {int(f) for f in self.meta["fold_ids"]}
        folds = self.meta.get("folds")
        if not isinstance(folds, dict):
            return None
        if isinstance(folds.get("k"), int):  # assigned by preprocess: 1..k
            return set(range(1, folds["k"] + 1))
        if isinstance(folds.get("names"), dict) and folds["names"]:
            return {int(f) for f in folds["names"]}
        return None

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
        """Refuse a store whose images changed since they were written, or that holds NaN or Inf images.

        Called by train, evaluate and compare before they read the images
        (once per opened store). A store from this version is checked
        against the CRC-32 of each block of rows recorded when it was written
        (:meth:`verify`): any change to features.npy is found, a NaN as well
        as finite noise. An older store without checksums is scanned for
        non-finite images (``scan`` is kept for callers of older versions;
        every store is read whole now), with a note that other damage cannot
        be seen in it.

        Raises
        ------
        StoreDamaged
            One line: which rows changed (or how many images are not finite) and how to rebuild.
        """
        if self._verified:
            return
        if self.has_checksums:
            self.verify()
            return
        note(f"store {self.path} has no checksums (written by an older spectro): NaN and Inf are looked for, "
             f"other damage to its images cannot be seen; rebuild it with spectro preprocess to add them")
        bad = self._non_finite(range(0, len(self), 1024), 1024)
        if bad:
            raise self._damaged(f"{bad} of {len(self)} images hold NaN or infinite values")
        self._verified = True

    @property
    def has_checksums(self) -> bool:
        """Whether config.json holds the block checksums of features.npy (stores from this version do)."""
        sums = self.meta.get("checksums")
        return isinstance(sums, dict) and isinstance(sums.get("blocks"), list) and isinstance(sums.get("block_rows"), int)

    def verify(self) -> int:
        """Check features.npy against the checksums recorded when it was written; return the blocks checked.

        One pass over the memory map, a block of rows at a time (what
        ``spectro info --verify`` runs, and train, evaluate and compare
        through :meth:`check_finite`).

        Raises
        ------
        StoreDamaged
            The store has no checksums (an older one), or some block differs: the line says which rows,
            and whether they hold NaN or infinite values.
        """
        if not self.has_checksums:
            raise self._damaged("it has no checksums to verify (written by an older spectro)")
        sums = self.meta["checksums"]
        rows, blocks = sums["block_rows"], sums["blocks"]
        if rows < 1 or len(blocks) != -(-len(self) // rows):
            raise self._damaged(f"config.json has {len(blocks)} checksums of {rows} rows for {len(self)} images")
        starts = [b * rows for b, expected in enumerate(blocks)
                  if zlib.crc32(np.ascontiguousarray(self.features[b * rows:(b + 1) * rows])) != expected]
        if starts:
            bad = self._non_finite(starts, rows)
            first = f"rows {starts[0]}-{min(starts[0] + rows, len(self)) - 1}"
            what = (f"{bad} of {len(self)} images hold NaN or infinite values" if bad
                    else "features.npy changed since it was written")
            raise self._damaged(f"{what} ({len(starts)} of {len(blocks)} blocks fail their checksum, first {first})")
        self._verified = True
        return len(blocks)

    def _non_finite(self, starts: Iterable[int], rows: int) -> int:
        """The number of images holding NaN or Inf in the blocks of ``rows`` rows that begin at ``starts``."""
        bad = 0
        for i in starts:
            block = np.asarray(self.features[i : i + rows])
            bad += int((~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)).sum())
        return bad

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
            "checksums": self.has_checksums,
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
        self._sums = BlockChecksums(int(np.prod(self.image_shape)) * np.dtype(np.float16).itemsize)
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
        self._sums.update(images)
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
        fold_ids = sorted({int(r["fold"]) for r in index_rows})
        write_json(os.path.join(self.tmp, "config.json"), {"format": _FORMAT, **meta, "finite": True,
                                                            "fold_ids": fold_ids, "checksums": self._sums.record()})
        return swap_dir(self.tmp, self.out)

    def abort(self) -> None:
        """Drop the temporary directory; the previous store is untouched."""
        if not self._f.closed:
            self._f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class BlockChecksums:
    """CRC-32 of each block of whole rows of features.npy, fed the rows in order as they are appended.

    A block holds :data:`CHECKSUM_BLOCK_BYTES` worth of rows (at least
    one), so a store of any size carries a few checksums per GB, and a
    changed image is placed to within one block. CRC-32 finds accidental
    damage (a bad disk, a stray write, an edited array), not a forgery, and
    runs at memory speed (see benchmarks/bench_store_verify.py).
    """

    def __init__(self, row_bytes: int) -> None:
        self.block_rows = max(1, CHECKSUM_BLOCK_BYTES // max(1, row_bytes))
        self.blocks: list[int] = []
        self._crc, self._rows = 0, 0  # the block being filled

    def update(self, images: np.ndarray) -> None:
        """Add ``images`` [shape=(k, ...)], C-contiguous, after the rows already added."""
        start = 0
        while start < images.shape[0]:
            take = min(self.block_rows - self._rows, images.shape[0] - start)
            self._crc = zlib.crc32(images[start:start + take], self._crc)
            self._rows += take
            start += take
            if self._rows == self.block_rows:
                self.blocks.append(self._crc)
                self._crc, self._rows = 0, 0

    def record(self) -> dict[str, Any]:
        """What config.json holds: ``{"algorithm": "crc32", "block_rows": R, "blocks": [...]}``."""
        blocks = self.blocks + ([self._crc] if self._rows else [])
        return {"algorithm": "crc32", "block_rows": self.block_rows, "blocks": blocks}


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
        if pid != os.getpid() and not process_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)

