"""Find the examples in a source: what to read, its label, fold and group.

Layouts understood (first match wins):

* a ``.npz`` / ``.npy`` file of signals (``X`` or ``signals`` ``(N, L)``,
  labels ``y`` or ``labels``, optional ``folds`` and ``groups``);
* ``--manifest FILE``: a CSV with path, label and optional fold/group columns;
* ESC-50 (``meta/esc50.csv``) and UrbanSound8K (``metadata/UrbanSound8K.csv``),
  recognised at the data set's root, with their official folds;
* Speech Commands (class folders plus ``validation_list.txt`` and
  ``testing_list.txt``, which become folds; folders starting with ``_``, such
  as ``_background_noise_``, are not classes);
* a folder with one sub-folder per class, searched recursively; or, with
  ``--label-regex``, any folder whose file names carry the label (FSDD's
  ``7_jackson_32.wav``).

Files are signals (audio; ``.npy``/``.npz``, MATLAB ``.mat`` and CSV/TSV
files of samples, which carry no rate) or images made elsewhere (PNG, JPEG,
BMP, TIFF pictures; with ``images``, ``.npy``/``.npz`` arrays of 2-D images).
A source holding both kinds is refused at once. ``--fold-regex`` takes each
file's fold from its path (the motor load ``_(\\d)HP``), a manifest's rate
column each file's sample rate.

Discovery reads no audio. Problems with single rows (a missing file, no
label) are returned as ``errors``; an unusable source raises
:class:`~spectro.errors.SpectroError`.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from spectro.errors import SpectroError
from spectro.signals.audio import ARRAY_EXTENSIONS, AUDIO_EXTENSIONS, RATELESS_EXTENSIONS, is_vector, not_regular
from spectro.signals.pictures import PICTURE_EXTENSIONS

__all__ = ["Item", "Source", "discover", "array_keys", "key_suffix", "input_kind", "has_images", "rateless",
           "walk", "SIGNAL_EXTENSIONS", "INPUT_EXTENSIONS"]

SIGNAL_EXTENSIONS = AUDIO_EXTENSIONS | RATELESS_EXTENSIONS
#: Every extension a source is searched for: signals and pictures.
INPUT_EXTENSIONS = SIGNAL_EXTENSIONS | PICTURE_EXTENSIONS


@dataclass
class Item:
    """One signal to read. ``key`` picks an array inside a .npy/.npz file."""

    path: str
    rel: str
    label: str
    fold: Optional[int] = None
    group: Optional[str] = None
    key: Optional[tuple[str, Optional[int]]] = None  # (array name or "", row or None)
    file: str = ""  # path of the file relative to the source root (``rel`` without an array suffix)
    rate: Optional[int] = None  # sample rate of a file that carries none, from a manifest's rate column

    def __post_init__(self) -> None:
        self.file = self.file or self.rel


@dataclass
class Source:
    kind: str
    root: str
    items: list[Item]
    errors: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason)
    fold_names: Optional[dict[int, str]] = None
    ignored: Counter = field(default_factory=Counter)  # extension -> files passed over
    notes: list[str] = field(default_factory=list)  # what a user should hear about how files were read

    @property
    def has_folds(self) -> bool:
        return bool(self.items) and all(it.fold is not None for it in self.items)


def discover(
    source: str,
    *,
    manifest: Optional[str] = None,
    path_col: str = "path",
    label_col: str = "label",
    fold_col: Optional[str] = None,
    group_col: Optional[str] = None,
    label_regex: Optional[str] = None,
    group_regex: Optional[str] = None,
    fold_regex: Optional[str] = None,
    rate_col: Optional[str] = None,
    images: bool = False,
) -> Source:
    """Find every example in ``source``; see the module docstring for layouts.

    ``images``: arrays in ``.npy``/``.npz`` files are 2-D images (``(F, T)``,
    or ``(N, F, T)``: N images), not signals.
    """
    if not os.path.exists(source):
        raise SpectroError(f"source not found: {source}")
    label_re = _compile(label_regex, "--label-regex")
    group_re = _compile(group_regex, "--group-regex")
    fold_re = _compile(fold_regex, "--fold-regex")
    root = os.path.abspath(source)
    if os.path.isfile(root):
        if manifest is None and os.path.splitext(root)[1].lower() in ARRAY_EXTENSIONS:
            src = _array_bundle(root)
        else:
            raise SpectroError(f"source must be a folder or a .npz/.npy file: {source}")
    elif manifest is not None:
        src = _manifest(root, manifest, path_col, label_col, fold_col, group_col, rate_col=rate_col)
    elif os.path.isfile(os.path.join(root, "meta", "esc50.csv")):
        src = _manifest(root, os.path.join(root, "meta", "esc50.csv"), "filename", "category", "fold", "src_file",
                        kind="esc50", path_fmt="audio/{filename}")
    elif os.path.isfile(os.path.join(root, "metadata", "UrbanSound8K.csv")):
        src = _manifest(root, os.path.join(root, "metadata", "UrbanSound8K.csv"), "slice_file_name", "class",
                        "fold", "fsID", kind="urbansound8k", path_fmt="audio/fold{fold}/{slice_file_name}")
    elif os.path.isfile(os.path.join(root, "validation_list.txt")) and os.path.isfile(
        os.path.join(root, "testing_list.txt")
    ):
        src = _speech_commands(root)
    else:
        src = _folders(root, label_re)
    if src.kind != "arrays":
        src.items = [x for it in src.items for x in _expand(it, images, src.notes)]
    if group_re is not None:
        _apply_group_regex(src, group_re)
    if fold_re is not None:
        _apply_fold_regex(src, fold_re)
    if not src.items and not src.errors:
        found = ", ".join(sorted(INPUT_EXTENSIONS))
        raise SpectroError(f"no signal files found in {source} (looked for signals and images: {found})")
    _check_one_kind(src, source, images)
    return src


def input_kind(path: str) -> str:
    """``"image"`` for a picture file, ``"signal"`` for audio, MATLAB and CSV files, ``"array"`` for .npy/.npz."""
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in PICTURE_EXTENSIONS else "array" if ext in ARRAY_EXTENSIONS else "signal"


def _check_one_kind(src: Source, source: str, images: bool) -> None:
    """Refuse a source mixing signals and pictures (or signals in a source of images): one line, at once."""
    kinds = Counter(input_kind(it.path) for it in src.items)
    exts = Counter(os.path.splitext(it.path)[1].lower() for it in src.items)
    if kinds["signal"] and (kinds["image"] or images):
        sig = ", ".join(f"{n} {e}" for e, n in exts.most_common() if e not in PICTURE_EXTENSIONS | ARRAY_EXTENSIONS)
        img = ", ".join(f"{n} {e}" for e, n in exts.most_common() if e in PICTURE_EXTENSIONS | ARRAY_EXTENSIONS)
        raise SpectroError(f"{source} mixes signals ({sig}) and images ({img}): one store holds one kind; give "
                           "them separate sources")
    if kinds["image"] and kinds["array"] and not images:
        raise SpectroError(f"{source} holds pictures and .npy/.npz arrays: arrays beside pictures are read as "
                           "images only with --input image (as signals, they would mix two kinds)")


def has_images(src: Source) -> bool:
    """Whether the source's files are pictures (then the store holds images made elsewhere)."""
    return any(input_kind(it.path) == "image" for it in src.items)


def rateless(src: Source) -> list[str]:
    """Files among the source's items that carry no sample rate and got none from a manifest."""
    return sorted({it.file for it in src.items
                   if it.rate is None and os.path.splitext(it.path)[1].lower() in RATELESS_EXTENSIONS})


def _apply_fold_regex(src: Source, regex: re.Pattern) -> None:
    """Each item's fold from its path (relative to the source): a condition such as a motor load or a date."""
    if regex.groups < 1:
        raise SpectroError(f"--fold-regex {regex.pattern!r} needs a capture group, e.g. '_(\\d)HP'")
    kept, values = [], []
    for it in src.items:
        m = regex.search(it.file)
        if m is None or not m.group(1):
            src.errors.append((it.rel, "path does not match --fold-regex"))
        else:
            kept.append(it)
            values.append(m.group(1))
    ids, names = _fold_ids(values)
    for it, fold in zip(kept, ids):
        it.fold = fold
    src.items, src.fold_names = kept, names


def _compile(pattern: Optional[str], flag: str) -> Optional[re.Pattern]:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise SpectroError(f"{flag} {pattern!r} is not a valid regular expression: {err}") from None


def _match(regex: re.Pattern, name: str) -> Optional[str]:
    m = regex.search(name)
    if m is None:
        return None
    return m.group(1) if m.groups() else m.group(0)


def walk(folder: str, ignored: Counter, extensions: frozenset = INPUT_EXTENSIONS) -> list[str]:
    """Signal and picture files (``extensions``) under ``folder``, sorted, skipping hidden ones."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in extensions:
                out.append(os.path.join(dirpath, name))
            else:
                ignored[ext or "(none)"] += 1
    return out


def _folders(root: str, label_re: Optional[re.Pattern]) -> Source:
    src = Source("folders", root, [])
    for path in walk(root, src.ignored):
        rel = os.path.relpath(path, root)
        if not_regular(path):  # a FIFO would hang the first read of its header
            src.errors.append((rel, not_regular(path)))
            continue
        if label_re is not None:
            label = _match(label_re, os.path.basename(path))
            if label is None:
                src.errors.append((rel, "file name does not match --label-regex"))
                continue
        elif os.sep in rel:
            label = rel.split(os.sep, 1)[0]
        else:
            src.errors.append((rel, "no label: file is not inside a class folder (or use --label-regex)"))
            continue
        src.items.append(Item(path, rel, label))
    return src


def _speech_commands(root: str) -> Source:
    names = {1: "train", 2: "validation", 3: "test"}
    fold_of = {}
    for fold, listing in ((2, "validation_list.txt"), (3, "testing_list.txt")):
        with open(os.path.join(root, listing), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    fold_of[os.path.normpath(line.strip())] = fold
    src = Source("speech_commands", root, [], fold_names=names)
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        if not os.path.isdir(folder) or entry.startswith(("_", ".")):
            continue
        for path in walk(folder, src.ignored):
            rel = os.path.relpath(path, root)
            if not_regular(path):
                src.errors.append((rel, not_regular(path)))
                continue
            speaker = os.path.basename(path).split("_nohash_")[0]
            src.items.append(Item(path, rel, entry, fold_of.get(rel, 1), speaker))
    return src


def _manifest(
    root: str,
    manifest: str,
    path_col: str,
    label_col: str,
    fold_col: Optional[str],
    group_col: Optional[str],
    *,
    kind: str = "manifest",
    path_fmt: Optional[str] = None,
    rate_col: Optional[str] = None,
) -> Source:
    if not os.path.isfile(manifest):
        raise SpectroError(f"manifest not found: {manifest}")
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as err:
        raise SpectroError(
            f"manifest {manifest} is not UTF-8 text (it holds the byte {err.object[err.start]:#04x}); "
            f"save it as UTF-8"
        ) from None
    except csv.Error as err:
        raise SpectroError(f"manifest {manifest} is not a readable CSV file: {err}") from None
    columns = [c for c in rows[0].keys() if c is not None] if rows else []
    if not rows:
        raise SpectroError(f"manifest {manifest} has no rows")
    for col in (path_col, label_col, fold_col, group_col, rate_col):
        if col is not None and col not in columns:
            raise SpectroError(f"manifest {manifest} has no column {col!r} (columns: {', '.join(columns)})")
    src = Source(kind, root, [])
    # A short row leaves its missing fields None (csv.DictReader's restval).
    raw_folds = [(row[fold_col] or "").strip() for row in rows] if fold_col else []
    fold_ids, src.fold_names = _fold_ids(raw_folds)
    for i, row in enumerate(rows):
        if path_fmt:
            fields = {k: (v or "").strip() for k, v in row.items() if k is not None}  # None: extra fields
            needed = re.findall(r"{(\w+)}", path_fmt)
            rel = path_fmt.format(**fields) if all(fields.get(k) for k in needed) else ""
        else:
            rel = (row[path_col] or "").strip()
        if not rel:
            src.errors.append((f"{os.path.basename(manifest)} row {i + 2}", f"no path (manifest row {i + 2})"))
            continue
        path = rel if os.path.isabs(rel) else os.path.join(root, rel)
        label = (row[label_col] or "").strip()
        if not os.path.isfile(path):
            src.errors.append((rel, f"{not_regular(path) or 'file not found'} (manifest row {i + 2})"))
            continue
        if not label:
            src.errors.append((rel, f"no label (manifest row {i + 2})"))
            continue
        fold = fold_ids[i] if fold_col else None
        if fold_col and fold is None:
            src.errors.append((rel, f"no fold (manifest row {i + 2})"))
            continue
        group = (row[group_col] or "").strip() or None if group_col else None
        rate = None
        if rate_col:
            text = (row[rate_col] or "").strip()
            try:
                rate = int(float(text))
            except ValueError:
                rate = 0
            if rate <= 0 or rate != float(text):
                src.errors.append((rel, f"no usable sample rate {text!r} in column {rate_col!r} (manifest row {i + 2})"))
                continue
        src.items.append(Item(path, os.path.relpath(path, root), label, fold, group, rate=rate))
    return src


def _fold_ids(values: list[str]) -> tuple[list[Optional[int]], Optional[dict[int, str]]]:
    """Integer folds as they are; named folds (``train``/``test``) numbered 1..K."""
    if not values:
        return [], None
    present = [v for v in values if v]
    if all(re.fullmatch(r"-?\d+", v) for v in present):
        return [int(v) if v else None for v in values], None
    names = {name: i + 1 for i, name in enumerate(sorted(set(present)))}
    return [names.get(v) for v in values], {i: name for name, i in names.items()}


def _apply_group_regex(src: Source, regex: re.Pattern) -> None:
    kept = []
    for it in src.items:
        group = _match(regex, os.path.basename(it.path))
        if group is None:
            src.errors.append((it.rel, "file name does not match --group-regex"))
        else:
            it.group = group
            kept.append(it)
    src.items = kept


def _expand(item: Item, images: bool = False, notes: Optional[list[str]] = None) -> list[Item]:
    """One item per signal (or image): arrays in .npy/.npz files may hold several.

    A 2-D array of signals split into its rows is said in ``notes`` (a
    ``(64, 600)`` array may be one image, or 600 signals of 64 samples).
    """
    ext = os.path.splitext(item.path)[1].lower()
    if ext not in ARRAY_EXTENSIONS:
        return [item]
    try:
        keys = array_keys(item.path, images=images, notes=notes, name=item.rel)
    except Exception:  # noqa: BLE001 - any unreadable file is decoded later and reported there
        keys = [("", None)]
    return [Item(item.path, item.rel + key_suffix(key), item.label, item.fold, item.group, key, item.rel,
                 item.rate) for key in keys]


def array_keys(path: str, *, images: bool = False, notes: Optional[list[str]] = None,
               name: str = "") -> list[tuple[str, Optional[int]]]:
    """The signals (or, with ``images``, the 2-D images) in a .npy or .npz file, as :attr:`Item.key` values.

    Signals: a vector (``(n,)``, or ``(n, 1)`` / ``(1, n)`` as MATLAB and
    loadmat give one) is one signal (row None), another 2-D array one signal
    per row, said in ``notes`` (as ``name``). Images: a 2-D array is one image
    ``(F, T)``, a 3-D array ``(N, F, T)`` N images. A .npy's array has the
    name ``""``. A .npz holding signals and labels (as a single-file source
    does) gives the rows of its signals only, any other .npz every array, in
    file order. Raises what numpy raises for an unreadable file.
    """
    if path.lower().endswith(".npy"):
        arrays = [("", np.load(path, mmap_mode="r", allow_pickle=False).shape)]
    else:
        with np.load(path, allow_pickle=False) as z:
            x_key, y_key = _bundle_keys(z.files)
            names = [x_key] if x_key and y_key else z.files
            arrays = [(name, z[name].shape) for name in names]
    keys = []
    for array, shape in arrays:
        if images:
            rows = range(shape[0]) if len(shape) == 3 else [None]
        else:
            rows = range(shape[0]) if len(shape) >= 2 and not is_vector(shape) else [None]
            if len(shape) == 2 and not is_vector(shape) and notes is not None:
                notes.append(f"{name}{'#' + array if array else ''}: a {shape[0]} x {shape[1]} array is read as "
                             f"{shape[0]} signals of {shape[1]} samples, one per row (if it is one image, give "
                             "--input image)")
        keys.extend((array, row) for row in rows)
    return keys


def key_suffix(key: Optional[tuple[str, Optional[int]]]) -> str:
    """How a signal inside an array file is named after the file: ``#X[3]``, ``#a``, ``[3]`` (a .npy row) or ``""``."""
    if key is None:
        return ""
    name, row = key
    return (f"#{name}" if name else "") + (f"[{row}]" if row is not None else "")


def _bundle_keys(names: list[str]) -> tuple[Optional[str], Optional[str]]:
    """The signal and label arrays of a single-file source among a .npz's ``names`` (None where absent)."""
    x_key = next((k for k in ("X", "signals", "x") if k in names), None)
    y_key = next((k for k in ("y", "labels") if k in names), None)
    return x_key, y_key


def _array_bundle(path: str) -> Source:
    """A single .npz (or .npy with a companion) holding signals and labels."""
    if not path.lower().endswith(".npz"):
        raise SpectroError(f"a single-file source must be a .npz with signals and labels: {path}")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        raise SpectroError(f"cannot read {path}: {err}") from None
    with z:
        x_key, y_key = _bundle_keys(z.files)
        if x_key is None or y_key is None:
            raise SpectroError(f"{path} needs arrays 'X' (or 'signals') and 'y' (or 'labels'); has {z.files}")
        n = z[x_key].shape[0]
        labels = [str(v) for v in z[y_key]]
        folds = [int(v) for v in z["folds"]] if "folds" in z.files else [None] * n
        groups = [str(v) for v in z["groups"]] if "groups" in z.files else [None] * n
    if len(labels) != n:
        raise SpectroError(f"{path}: {n} signals but {len(labels)} labels")
    name = os.path.basename(path)
    items = [Item(path, name + key_suffix((x_key, i)), labels[i], folds[i], groups[i], (x_key, i), name)
             for i in range(n)]
    return Source("arrays", os.path.dirname(path), items)
