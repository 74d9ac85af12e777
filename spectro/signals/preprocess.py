"""``preprocess`` (module ingest): a source of signals becomes a feature store.

Work is split into chunks of files, which :mod:`spectro.signals.images`
turns into float16 images in worker processes (the same path ``spectro
predict`` takes, so a file gives the same images, or the same reason for
skipping it, in both). With ``device="cuda"`` the workers only decode and the
STFTs run batched on the GPU in the main process. This module keeps the
store's bookkeeping: index rows, folds, reuse, errors.csv.

Rows of unchanged files (same relative path, size and mtime) are copied from
the previous store when its FeatureConfig fingerprint matches.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from spectro._version import __version__
from spectro.config import FOLDS, SEED, STFT_DEVICE, FeatureConfig
from spectro.errors import SpectroError, StoreDamaged
from spectro.signals.defaults import describe, infer_config, infer_image_config
from spectro.signals.features import filterbank
from spectro.signals.folds import assign_folds
from spectro.signals.images import SignalRef, map_chunks
from spectro.signals.sources import Item, Source, discover, has_images, rateless
from spectro.signals.store import StoreWriter, open_store
from spectro.utils.console import note, say
from spectro.utils.device import select_device, versions
from spectro.utils.files import exclusive
from spectro.utils.workers import worker_count

__all__ = ["preprocess", "PreprocessResult"]


@dataclass
class PreprocessResult:
    """What a preprocess run did."""

    store: str
    written: int
    files: int
    reused_files: int
    classes: int
    skipped: Counter = field(default_factory=Counter)  # reason kind -> count
    ignored: Counter = field(default_factory=Counter)  # extension -> count
    seconds: float = 0.0
    replaced_damaged: Optional[str] = None  # why the store found at ``store`` was damaged, if it was
    folds_note: Optional[str] = None  # fewer folds than asked, and why ("the store has 3 folds instead of ...")
    per_class: Counter = field(default_factory=Counter)  # label -> images (windows, when windowed)
    windowed: bool = False

    def summary_line(self) -> str:
        line = (
            f"wrote {self.written} images from {self.files} files ({self.classes} classes) to {self.store} "
            f"in {self.seconds:.1f} s"
        )
        if self.windowed:
            line += " (windows per class: " + ", ".join(f"{c} {n}" for c, n in sorted(self.per_class.items())) + ")"
        if self.replaced_damaged:
            line = f"rebuilt damaged store ({self.replaced_damaged}): " + line
        if self.reused_files:
            line += f", {self.reused_files} files reused unchanged"
        n_skipped = sum(self.skipped.values())
        if n_skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
            line += f"; skipped {n_skipped} ({reasons}): see {os.path.join(self.store, 'errors.csv')}"
        else:
            line += "; skipped 0"
        if self.ignored:
            exts = ", ".join(f"{n} {ext}" for ext, n in self.ignored.most_common())
            line += f"; ignored non-signal files: {exts}"
        if self.folds_note:
            line += f"; {self.folds_note}"
        return line


def preprocess(
    source: str,
    out: str,
    *,
    config: Union[FeatureConfig, dict, None] = None,
    infer: Optional[Sequence[str]] = None,
    k_folds: int = FOLDS,
    seed: int = SEED,
    workers: Optional[int] = None,
    device: str = STFT_DEVICE,
    progress: bool = True,
    chunk_size: int = 64,
    **source_options: Any,
) -> PreprocessResult:
    """Build (or refresh) the store ``out`` from ``source``.

    Parameters
    ----------
    source : str
        A folder, a data set root, or a .npz file (see :func:`spectro.signals.sources.discover`).
    out : str
        Store directory; replaced atomically when the run completes.
    config : FeatureConfig or dict, optional
        How signals become images. None: the defaults, with the rate, STFT
        sizes and duration read from the data. A dict: these settings (the
        options given to ``spectro preprocess``), the rest as with None, so
        ``preprocess(src, out, config={"n_mels": 32})`` builds the store
        ``spectro preprocess src --out out --n-mels 32`` builds. A
        FeatureConfig: used as it is.
    infer : sequence of str, optional
        FeatureConfig fields (among ``FeatureConfig.INFERABLE``) to read from
        the data (:func:`spectro.signals.defaults.infer_config`); default: those
        not set when ``config`` is None or a dict, none when it is a
        FeatureConfig. The choices and their reasons are printed and
        recorded in config.json.
    k_folds, seed : int
        Folds assigned when the source gives none: ``k_folds`` stratified,
        group-aware folds, shuffled with ``seed``.
    workers : int, optional
        Decoding processes (default: one per CPU); 0 or 1 works in-process.
    device : str
        Where the STFTs run: ``"cpu"`` (inside the workers) or ``"cuda"``.
    **source_options
        ``manifest``, ``path_col``, ``label_col``, ``fold_col``, ``group_col``,
        ``rate_col``, ``label_regex``, ``group_regex``, ``fold_regex``: passed
        to ``discover``.

    Files that carry no sample rate (``.npy``/``.npz``, ``.mat``, CSV/TSV)
    need one: ``sample_rate`` in ``config`` (``--sample-rate``) or a
    manifest's ``rate_col``; without either, a source of such files alone is
    refused in one line, and beside audio files they are said to be taken at
    the audio's rate. Pictures (PNG, JPEG, BMP, TIFF) make a store of images
    (``input="image"``), as do arrays with ``config={"input": "image"}``.
    """
    t0 = time.perf_counter()
    if k_folds < 2:
        raise SpectroError(f"--folds must be at least 2, got {k_folds}")
    if workers is not None and workers < 0:
        raise SpectroError(f"--workers must be 0 or more, got {workers}")
    if chunk_size < 1:
        raise SpectroError(f"chunk_size must be at least 1, got {chunk_size}")
    device = str(select_device(device, kinds=("cuda", "cpu")))
    given = config.to_dict() if isinstance(config, FeatureConfig) else dict(config or {})
    src = discover(source, images=given.get("input") == "image", **source_options)
    for line in src.notes[:3]:
        note(line)
    if len(src.notes) > 3:
        note(f"and {len(src.notes) - 3} more arrays read row by row")
    if config is None or isinstance(config, dict):
        settings = dict(config or {})
        if "input" not in settings and has_images(src):
            settings["input"] = "image"
        if settings.get("input") == "image":
            infer = ()
            if settings.get("image_size") is not None:
                settings.setdefault("resize", True)  # a size asked for is the size every image gets
        elif infer is None:
            infer = [f for f in FeatureConfig.INFERABLE if f not in settings]
        config = FeatureConfig().replace(**settings)  # an unknown setting is one line
        if not config.is_image and "sample_rate" not in settings:
            _check_rates(src, source, infer)
    elif infer is None:
        infer = ()
    inferred: dict = {}
    if config.is_image:
        config, inferred = infer_image_config(src.items, config)
        if config.image_size is None:
            raise SpectroError(f"no readable image in {source}: nothing gives the store its image size")
    elif infer:
        config, inferred = infer_config(src.items, config, infer, seed=seed)
    if inferred:
        say(describe(inferred, config))
    if not config.is_image:
        filterbank(config)  # refuses empty bands now, not in every worker
    # The lock sits beside ``out`` (the store itself is swapped by a rename).
    with exclusive(out, what="store"), _disk_full_is_one_line(out):
        return _build(src, source, out, config, k_folds, seed, workers, device, progress, chunk_size,
                      source_options, t0, inferred)


def _check_rates(src: Source, source: str, infer: Sequence[str]) -> None:
    """Refuse (or say loudly) that files carrying no sample rate got none: never a silent 16 kHz."""
    files = rateless(src)
    if not files:
        return
    audio = any(it.rate is None and it.key is None and os.path.splitext(it.path)[1].lower() not in
                (".npy", ".npz", ".mat", ".csv", ".tsv") for it in src.items)
    shown = ", ".join(files[:2]) + (f" and {len(files) - 2} more" if len(files) > 2 else "")
    if not audio or "sample_rate" not in infer:
        raise SpectroError(f"{source}: {len(files)} file(s) of samples carry no sample rate ({shown}): give "
                           "--sample-rate HZ, the rate they were recorded at (or a manifest's --rate-col)")
    note(f"{len(files)} file(s) of samples carry no sample rate ({shown}): they are taken at the rate read from the "
         "audio files; give --sample-rate HZ if they were recorded at another")


def _build(src: Source, source: str, out: str, config: FeatureConfig, k_folds: int, seed: int,
           workers: Optional[int], device: str, progress: bool, chunk_size: int,
           source_options: dict[str, Any], t0: float, inferred: dict) -> PreprocessResult:
    """Write the store ``out`` from the discovered ``src`` (the lock is held)."""
    reuse, old, damaged = _reusable(out, config)
    writer = StoreWriter(out, config.image_shape)
    try:
        rows, item_rows, errors, reused = _run(src, config, writer, reuse, old, workers, device, progress, chunk_size)
        if not rows:
            counts = "; ".join(f"{why}: {n}" for why, n in _reason_counts(errors).most_common(3))
            first = f"; the first, {errors[0][0]}: {errors[0][1]}" if errors else ""
            raise SpectroError(
                f"no usable {'images' if config.is_image else 'signals'} in {source}: all "
                f"{len(src.items) + len(src.errors)} inputs were skipped ({counts}){first}"
            )
        folds_meta = _set_folds(src, rows, item_rows, k_folds, seed, _group_rule(source_options))
        if folds_meta.get("advice") or folds_meta.get("group_rule_limits"):
            note(folds_meta["fewer"])  # a store that cannot train, or groups that undo --folds: said at once
        labels = sorted({r["label"] for r in rows}, key=_natural)
        meta = {
            "spectro_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "feature_config": config.to_dict(),
            "inferred": inferred,
            "fingerprint": config.fingerprint(),
            "image_shape": list(config.image_shape),
            "examples": len(rows),
            "source": {"path": os.path.abspath(source), "kind": src.kind,
                       **{k: v for k, v in source_options.items() if v is not None}},
            "folds": folds_meta,
            "versions": versions(),
        }
        writer.commit(rows, labels, meta, errors)
    except BaseException:
        writer.abort()
        raise
    return PreprocessResult(
        store=out,
        written=len(rows),
        files=len(item_rows),
        reused_files=reused,
        classes=len(labels),
        skipped=_reason_counts(errors),
        ignored=src.ignored,
        seconds=time.perf_counter() - t0,
        replaced_damaged=damaged,
        folds_note=folds_meta.get("fewer"),
        per_class=Counter(r["label"] for r in rows),
        windowed=config.window is not None and not config.is_image,
    )


@contextlib.contextmanager
def _disk_full_is_one_line(out: str) -> Iterator[None]:
    """Turn a full disk (or quota) while writing ``out`` into one SpectroError line.

    Wraps the whole write, whose own ``except`` has already dropped the
    temporary store: the previous store is exactly as it was.
    """
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        kind = "no space left" if err.errno == errno.ENOSPC else "disk quota exceeded"
        raise SpectroError(f"{kind} on {_mount_point(out)} while writing {out}; nothing was changed") from None


def _mount_point(path: str) -> str:
    """The mount point of the file system that holds (or will hold) ``path``: the device named to the user."""
    path = os.path.abspath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


# -- the work loop ---------------------------------------------------------


def _run(src: Source, cfg: FeatureConfig, writer: StoreWriter, reuse, old, workers, device, progress, chunk_size):
    """Stream every item's images into ``writer`` in item order.

    Returns the index rows, ``item -> its row numbers``, the errors and the
    number of files reused from the previous store.
    """
    items = src.items
    sigs = [_signature(it.path) for it in items]
    fresh = [reuse.get(it.rel, (None, None, None))[:2] != sig for it, sig in zip(items, sigs)]
    n_workers = worker_count(workers)
    n_fresh = sum(fresh)
    chunk_size = max(1, min(chunk_size, -(-n_fresh // max(1, 4 * n_workers))))
    chunks = [list(range(j, min(j + chunk_size, len(items)))) for j in range(0, len(items), chunk_size)]
    work = [[SignalRef(items[i].path, items[i].key, sample_rate=items[i].rate) for i in chunk if fresh[i]]
            for chunk in chunks]

    rows: list[dict[str, Any]] = []
    item_rows: dict[int, list[int]] = {}
    errors = list(src.errors)
    bar = tqdm(total=len(items), unit="file", file=sys.stderr, disable=None if progress else True, desc="preprocess")
    # On a GPU the workers only decode and the STFTs run batched on the device here.
    pooled = map_chunks(work, cfg, workers=n_workers if n_fresh > chunk_size else 0,
                        stft_device=None if device == "cpu" else device)
    with bar, pooled as results:
        for chunk, done in zip(chunks, results):
            done = iter(done)  # one result per fresh item of the chunk, in order
            for i in chunk:
                it = items[i]
                if fresh[i]:
                    r = next(done)
                    if not r.ok:
                        errors.append((it.rel, r.error))
                        continue
                    block, bounds = r.images, r.bounds
                else:
                    old_rows = reuse[it.rel][2]
                    block = old.features[old_rows]
                    bounds = np.stack([old.starts[old_rows], old.ends[old_rows]], axis=1)
                writer.append(block)
                item_rows[i] = list(range(len(rows), len(rows) + len(bounds)))
                rows.extend(_index_rows(it, sigs[i], bounds))
            bar.update(len(chunk))
    return rows, item_rows, errors, len(items) - n_fresh


def _index_rows(it: Item, sig: tuple[int, int], bounds: np.ndarray) -> list[dict[str, Any]]:
    return [
        {"id": f"{it.rel}@{j}", "path": it.file, "start": f"{a:.4f}", "end": f"{b:.4f}", "label": it.label,
         "fold": it.fold, "group": it.group or "", "size": sig[0], "mtime_ns": sig[1]}
        for j, (a, b) in enumerate(bounds)
    ]


# -- helpers ---------------------------------------------------------------


def _signature(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


def _reusable(out: str, cfg: FeatureConfig):
    """``rel -> (size, mtime_ns, rows)`` of the previous store, if its config matches.

    Also returns why the previous store is damaged (None if it is whole or
    absent): a damaged store is rebuilt from scratch, nothing reused from it.
    """
    try:
        old = open_store(out)
    except StoreDamaged as err:
        return {}, None, err.what
    except SpectroError:
        return {}, None, None
    if old.meta.get("fingerprint") != cfg.fingerprint() or not old.has_checksums:
        return {}, None, None  # another config, or a store from before its images had checksums
    try:
        old.verify()  # rows copied from a changed features.npy would get checksums of their own
    except StoreDamaged as err:
        return {}, None, err.what
    return old.file_rows(), old, None


def _set_folds(src: Source, rows, item_rows, k_folds: int, seed: int, rule: Optional[str]) -> dict[str, Any]:
    """Fill in each row's fold; returns what config.json records about folds.

    With fewer folds than asked, ``fewer`` says so, why and (for a single
    fold, which leaves nothing to train on) what gives more: ``advice``,
    which training repeats when it refuses the store. preprocess prints
    ``fewer`` as a note for a single fold or when the group rule is what
    limited the folds (``group_rule_limits``); a small source with fewer
    files per class than folds is only recorded.
    """
    if src.has_folds:
        meta = {"from_source": True, "kind": src.kind, "names": src.fold_names}
        if len({r["fold"] for r in rows}) < 2:
            meta["advice"] = ("the source gives every file the same fold; give a --fold-col or --fold-regex with two "
                              "values or more, or none (preprocess then assigns --folds)")
            meta["fewer"] = f"the store has a single fold: {meta['advice']}"
        return meta
    kept = sorted(item_rows)
    labels = [src.items[i].label for i in kept]
    # Each item's rows (the windows of one recording) always share its fold.
    # Without a group, an item's file is its group, so the rows of one array
    # file stay together too; when every file is its own group, plain
    # stratified folds are the same thing and much faster.
    groups = [src.items[i].group or src.items[i].file for i in kept]
    grouped = len(set(groups)) < len(groups)
    folds = assign_folds(labels, groups if grouped else None, k=k_folds, seed=seed)
    for i, fold in zip(kept, folds):
        for r in item_rows[i]:
            rows[r]["fold"] = int(fold)
    meta: dict[str, Any] = {"from_source": False, "k": int(folds.max()), "seed": seed,
                            "group_aware": any(src.items[i].group for i in kept), "names": None}
    k = int(folds.max())
    if k < k_folds:
        why = _fewer_folds_why(len(set(groups)), k_folds, max(Counter(labels).values()),
                               rule if meta["group_aware"] else None)
        if k < 2:
            meta["advice"] = f"{why}; {_more_folds(why, rule if meta['group_aware'] else None)}"
            meta["fewer"] = f"the store has a single fold instead of --folds {k_folds}: {meta['advice']}"
        else:
            meta["fewer"] = f"the store has {k} folds instead of --folds {k_folds}: {why}"
        meta["group_rule_limits"] = bool(rule and meta["group_aware"] and why.startswith(rule))
    return meta


def _fewer_folds_why(n_groups: int, asked: int, largest_class: int, rule: Optional[str]) -> str:
    """Why :func:`assign_folds` made fewer folds than ``asked``.

    A fold holds whole groups (each file its own group without a group rule),
    and stratification needs as many members in the largest class.
    """
    if n_groups < asked and rule:
        return f"{rule} puts every file in one group" if n_groups == 1 else f"{rule} gives only {n_groups} groups"
    if n_groups < asked:
        return f"there are only {n_groups} files"
    return f"the largest class has only {largest_class} file(s)"


def _more_folds(why: str, rule: Optional[str]) -> str:
    """What gives a store of one fold a second one (``--folds`` alone cannot)."""
    if rule and why.startswith(rule):
        return (f"give a {rule} that tells two groups or more apart (a speaker, a session), or leave it out "
                "(each file is then its own group)")
    return "add files, two or more in a class"


def _group_rule(source_options: dict[str, Any]) -> Optional[str]:
    """The option that set the groups (named in the advice when they are too few), if one did."""
    if source_options.get("group_regex"):
        return "--group-regex"
    if source_options.get("group_col"):
        return "--group-col"
    return None


def _reason_counts(errors) -> Counter:
    # "cannot decode: Format not recognised" -> "cannot decode"
    return Counter(reason.split(":")[0].split(" (")[0] for _, reason in errors)


def _natural(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)
