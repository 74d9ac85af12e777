"""The one path from a signal to its images: read -> check -> segment -> STFT.

``preprocess`` (building a store) and ``predict`` (a run on raw signals) both
turn signals into images here, so a file gives bit-equal images, or the same
reason for refusing it, in both. A signal is named by a :class:`SignalRef`: an
audio file, one array (or one row of it) in a ``.npy``/``.npz`` file, or an
array in memory with its sample rate. Signals inside array files are named as
preprocess names them (:func:`spectro.signals.sources.key_suffix`):
``sets/a.npz#X[3]``, ``pump/run1.npy[2]``.

A store of images made elsewhere (``cfg.is_image``: pictures, 2-D arrays)
takes the same path without the STFT: each picture or array is read, checked
and sized by :mod:`spectro.signals.pictures`, in the same workers, for
preprocess and predict alike.

Work goes in chunks: :func:`chunk_images` reads, checks and cuts every signal
of a chunk and computes all of the chunk's STFT images in one batch;
:func:`map_chunks` runs chunks in worker processes (single-threaded each:
with two cores, two workers each using a BLAS or OpenMP pool of its own would
oversubscribe the machine several times over), or, for a GPU, has the workers
only decode and runs the STFTs batched on the device in the main process.
Workers send back float16 images (a 64 x 101 image is 13 KB; the one-second
signal behind it, 64 KB), so nothing heavy crosses between processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch

from spectro.config import FeatureConfig
from spectro.signals.audio import (
    ARRAY_EXTENSIONS,
    BadInput,
    check_signal,
    cut_windows,
    load_array_signal,
    load_audio,
    not_regular,
    resample,
    segments,
    window_bounds,
    window_starts,
)
from spectro.signals.features import SpectrogramImage, compute_images
from spectro.signals.matfiles import MAT_EXTENSIONS, read_mat
from spectro.signals.pictures import array_image, is_picture, read_image
from spectro.signals.sources import array_keys, key_suffix
from spectro.signals.tables import TABLE_EXTENSIONS, read_table
from spectro.utils.workers import process_map, single_thread_worker

__all__ = [
    "SignalRef",
    "SignalImages",
    "NON_FINITE",
    "read_picture_image",
    "signals_in",
    "read_signal",
    "chunk_images",
    "to_images",
    "map_chunks",
    "signal_images",
    "recording_image",
    "image_blocks",
    "WINDOW_BLOCK",
]

#: Windows of a long recording turned into images (and scored, in predict) this many at a time: memory
#: then stays flat whatever the recording's length or the hop (a multiple of compute_images' batch).
WINDOW_BLOCK = 256

#: Why an input whose image leaves float16's range is refused (the store keeps float16).
NON_FINITE = "non-finite image: values beyond the float16 range of the store"

# "FILE.npz#NAME[ROW]", "FILE.npz#NAME", "FILE.npy[ROW]": a signal inside an array file.
_INSIDE = re.compile(r"(?P<file>.+?\.np[yz])(?:#(?P<name>[^#\[\]]+))?(?:\[(?P<row>\d+)\])?", re.IGNORECASE)


@dataclass(eq=False)
class SignalRef:
    """Where one signal is: a file, an array (or a row of one) in an array file, or an array in memory.

    Attributes
    ----------
    path : str
        An audio file; a ``.npy``/``.npz``, ``.mat`` or CSV/TSV file of samples
        (at ``sample_rate``, or the target rate); or, for a store of images, a
        picture or a ``.npy``/``.npz`` file of 2-D images.
    key : (str, int or None), optional
        In an array file: the array's name (``""`` for a ``.npy``) and its row
        (None: the array is the signal), as :attr:`spectro.signals.sources.Item.key`.
    array : np.ndarray [shape=(n,)], optional
        A signal in memory, at ``sample_rate`` (an image ``(F, T)`` for a
        store of images); ``path`` is then unused.
    sample_rate : int, optional
        Rate of ``array``, or of a file that carries none (None: the target rate).
    """

    path: str = ""
    key: Optional[tuple[str, Optional[int]]] = None
    array: Optional[np.ndarray] = None
    sample_rate: Optional[int] = None


@dataclass(eq=False)
class SignalImages:
    """What one signal became: its images and where they sit in it, or why it has none.

    Attributes
    ----------
    images : np.ndarray [shape=(k, 1, F, T), dtype=float16] or None
        As the store keeps them; None on error (or before :func:`to_images`).
    bounds : np.ndarray [shape=(k, 2)] or None
        Start and end of each image in seconds of the signal.
    seconds : float
        Length of the signal at the target rate.
    error : str or None
        The reason the signal has no images (the text of :class:`BadInput`).
    segments : np.ndarray [shape=(k, samples), dtype=float32] or None
        The pieces behind the images, between decoding and the STFT only.
    signal : np.ndarray [shape=(n,), dtype=float32] or None
        A recording of more windows than asked to hold at once (see
        :func:`chunk_images`' ``max_images``), checked and with its
        ``bounds``, but no images: :func:`image_blocks` makes them a block at
        a time.
    """

    images: Optional[np.ndarray] = None
    bounds: Optional[np.ndarray] = None
    seconds: float = 0.0
    error: Optional[str] = None
    segments: Optional[np.ndarray] = None
    signal: Optional[np.ndarray] = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- reading one signal -------------------------------------------------------


def signals_in(path: str, *, images: bool = False) -> list[tuple[str, SignalRef]]:
    """The signals that ``path`` names, each with its name, in file order.

    ``path`` is a file or the name of a signal inside an array file
    (``a.npz#X[3]``). An array file holding several signals gives one per
    signal, named as preprocess names them (``a.npz#X[0]``, ``a.npz#X[1]``,
    ...; see :func:`spectro.signals.sources.array_keys`); any other path is one
    signal, itself. Nothing is decoded: a missing or unreadable file is one
    signal whose reading fails with its reason. ``images``: arrays are 2-D
    images, as in a store of images (see :func:`spectro.signals.sources.array_keys`).
    """
    if not os.path.exists(path):
        m = _INSIDE.fullmatch(path)
        if m and (m["name"] or m["row"]) and os.path.isfile(m["file"]):
            return [(path, SignalRef(m["file"], (m["name"] or "", None if m["row"] is None else int(m["row"]))))]
        return [(path, SignalRef(path))]
    if os.path.splitext(path)[1].lower() not in ARRAY_EXTENSIONS or not_regular(path):
        return [(path, SignalRef(path))]  # a FIFO is not opened here: reading it says why
    try:
        keys = array_keys(path, images=images)
    except Exception:  # noqa: BLE001 - an unreadable array file is reported when it is read
        keys = [("", None)]
    return [(path + key_suffix(key), SignalRef(path, key)) for key in keys]


def read_signal(ref: SignalRef, cfg: FeatureConfig, opened: Optional[dict] = None) -> np.ndarray:
    """The signal of ``ref`` as mono float32 at ``cfg.sample_rate`` [shape=(n,)] (not yet checked).

    Audio files are decoded and resampled (:func:`spectro.signals.audio.load_audio`);
    arrays in ``.npy``/``.npz`` files hold signals at ``cfg.sample_rate``
    already; an array in memory is resampled from its ``sample_rate``.
    ``opened`` keeps the arrays of the last array file read between calls
    (rows of one file come together).

    Raises
    ------
    BadInput
        The reason, as errors.csv and ``spectro predict`` name it.
    """
    if ref.array is not None:
        if ref.sample_rate is None:
            raise BadInput(f"an array needs sample_rate= (images are made at {cfg.sample_rate} Hz)")
        return resample(load_array_signal(ref.array), orig_sr=int(ref.sample_rate), target_sr=cfg.sample_rate)
    if not_regular(ref.path):
        raise BadInput(not_regular(ref.path))
    ext = os.path.splitext(ref.path)[1].lower()
    if ref.key is None and ext in MAT_EXTENSIONS:
        y = read_mat(ref.path, key=cfg.mat_key)
    elif ref.key is None and ext in TABLE_EXTENSIONS:
        y = read_table(ref.path, column=cfg.column, channels=cfg.channels)
    elif ref.key is None and is_picture(ref.path):
        raise BadInput("a picture, not a signal: pictures make a store of images of their own")
    elif ref.key is None and ext not in ARRAY_EXTENSIONS:
        return load_audio(ref.path, sample_rate=cfg.sample_rate)
    else:
        y = load_array_signal(_array_row(ref.path, ref.key or ("", None), {} if opened is None else opened))
    if ref.sample_rate is None or int(ref.sample_rate) == cfg.sample_rate:
        return y
    return resample(np.asarray(y, dtype=np.float32), orig_sr=int(ref.sample_rate), target_sr=cfg.sample_rate)


def read_picture_image(ref: SignalRef, cfg: FeatureConfig, opened: Optional[dict] = None) -> np.ndarray:
    """The image of ``ref`` in a store of images made elsewhere [shape=(F, T), dtype=float32].

    A picture file through its colormap (:func:`spectro.signals.pictures.read_image`),
    a 2-D array (in a file, or in memory) as it is (:func:`~spectro.signals.pictures.array_image`).
    """
    if ref.array is not None:
        return array_image(np.asarray(ref.array), cfg)
    if not_regular(ref.path):
        raise BadInput(not_regular(ref.path))
    if ref.key is None and is_picture(ref.path):
        return read_image(ref.path, cfg)
    if ref.key is None and os.path.splitext(ref.path)[1].lower() not in ARRAY_EXTENSIONS:
        raise BadInput("not an image: the run's store holds images (pictures or 2-D arrays), not signals")
    return array_image(np.asarray(_array_row(ref.path, ref.key or ("", None), {} if opened is None else opened)),
                       cfg)


def _array_row(path: str, key: tuple[str, Optional[int]], opened: dict) -> np.ndarray:
    """Array ``key`` of the file ``path`` (``""``: its first); ``opened`` holds one file's arrays at a time."""
    name, row = key
    try:
        if (path, name) not in opened:
            opened.clear()
            if path.lower().endswith(".npy"):
                opened[path, name] = np.load(path, mmap_mode="r", allow_pickle=False)
            else:
                # Loaded once per chunk: an NpzFile decompresses the whole array at every lookup.
                with np.load(path, allow_pickle=False) as z:
                    opened[path, name] = z[name or z.files[0]]
        arr = opened[path, name]
        return arr if row is None else arr[row]
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise BadInput(f"cannot read array: {err}") from None


# -- a chunk of signals to images ---------------------------------------------------


def chunk_images(refs: Sequence[SignalRef], cfg: FeatureConfig, *, stft: bool = True,
                 max_images: Optional[int] = None) -> list[SignalImages]:
    """Read, check and cut each signal of ``refs``; then all their STFT images in one batch.

    Parameters
    ----------
    refs : sequence of SignalRef
    cfg : FeatureConfig
    stft : bool
        False: stop at the segments (:attr:`SignalImages.segments`), for
        :func:`to_images` to run elsewhere (a GPU in the main process).
    max_images : int, optional
        A windowed signal of more windows than this is neither cut nor turned
        into images: its result keeps the signal (:attr:`SignalImages.signal`)
        for :func:`image_blocks`. None: every signal gets all its images.

    Returns
    -------
    list of SignalImages
        One per ref, in order. A bad signal has ``error`` set; it never stops the others.
    """
    out = []
    opened: dict[tuple[str, str], Any] = {}
    if cfg.is_image:
        return [_picture_result(ref, cfg, opened) for ref in refs]
    for ref in refs:
        try:
            y = check_signal(read_signal(ref, cfg, opened), min_samples=cfg.n_fft)
            if cfg.window is not None and max_images is not None:
                starts = window_starts(y.shape[0], cfg)
                if len(starts) > max_images:
                    out.append(SignalImages(bounds=window_bounds(y.shape[0], starts, cfg),
                                            seconds=y.shape[0] / cfg.sample_rate, signal=y))
                    continue
            segs, bounds = segments(y, cfg)
        except BadInput as err:
            out.append(SignalImages(error=str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - one odd file must not end a long run
            out.append(SignalImages(error=f"unexpected error: {type(err).__name__}: {err}"))
            continue
        out.append(SignalImages(bounds=bounds, seconds=y.shape[0] / cfg.sample_rate, segments=segs))
    return to_images(out, _extractor(cfg)) if stft else out


def _picture_result(ref: SignalRef, cfg: FeatureConfig, opened: dict) -> SignalImages:
    """One image made elsewhere as a result of :func:`chunk_images` (bounds 0-0: it has no seconds)."""
    try:
        image = read_picture_image(ref, cfg, opened)
    except BadInput as err:
        return SignalImages(error=str(err))
    except Exception as err:  # noqa: BLE001 - one odd file must not end a long run
        return SignalImages(error=f"unexpected error: {type(err).__name__}: {err}")
    image16 = image.astype(np.float16)[None, None]  # (1, 1, F, T)
    if not np.isfinite(image16).all():
        return SignalImages(error=NON_FINITE)
    return SignalImages(images=image16, bounds=np.zeros((1, 2)), seconds=0.0)


def to_images(results: list[SignalImages], extractor: SpectrogramImage) -> list[SignalImages]:
    """Compute the images of every result still holding segments, in one batch on ``extractor``'s device.

    Fills ``images`` (float16, as the store keeps them) and drops
    ``segments``; a result whose image leaves float16's range (e.g. linear
    power of a loud signal) gets the error :data:`NON_FINITE` instead. Returns
    ``results``, changed in place.
    """
    todo = [r for r in results if r.segments is not None]
    if not todo:
        return results
    images = compute_images(np.concatenate([r.segments for r in todo]), extractor)  # (n_segments, 1, F, T)
    at = 0
    for r in todo:
        r.images, r.segments = images[at:at + len(r.bounds)], None
        at += len(r.bounds)
        if not np.isfinite(r.images).all():
            # The STFT itself cannot overflow (see SpectrogramImage); float16 can.
            r.images, r.bounds, r.error = None, None, NON_FINITE
    return results


def image_blocks(result: SignalImages, cfg: FeatureConfig, *,
                 block: int = WINDOW_BLOCK) -> Iterator[np.ndarray]:
    """The images of a signal kept whole by :func:`chunk_images` (``max_images``), ``block`` windows at a time.

    Yields
    ------
    np.ndarray [shape=(<=block, 1, F, T), dtype=float16]
        The images :func:`chunk_images` would have made, in order: only one
        block of windows and images is in memory at a time.

    Raises
    ------
    BadInput
        :data:`NON_FINITE` for a block leaving float16's range (the whole
        signal is refused, as preprocess refuses it).
    """
    y = result.signal
    starts = window_starts(y.shape[0], cfg)
    for i in range(0, len(starts), block):
        images = compute_images(cut_windows(y, starts[i:i + block], cfg.segment_samples), _extractor(cfg))
        if not np.isfinite(images).all():
            raise BadInput(NON_FINITE)
        yield images


@contextlib.contextmanager
def map_chunks(chunks: Sequence[Sequence[SignalRef]], cfg: FeatureConfig, *, workers: int,
               stft_device: Optional[str] = None,
               max_images: Optional[int] = None) -> Iterator[Iterator[list[SignalImages]]]:
    """The :func:`chunk_images` of each chunk, in order, computed in ``workers`` processes.

    Parameters
    ----------
    chunks : sequence of sequences of SignalRef
    cfg : FeatureConfig
    workers : int
        Processes (:func:`spectro.utils.workers.process_map`); 0 or 1 works in this process.
    stft_device : str, optional
        None: each worker computes its chunk's images on its CPU. A device
        (``"cuda"``): workers only decode, and each chunk's STFTs run here as
        one batch on that device.
    max_images : int, optional
        Passed to :func:`chunk_images`: longer windowed signals come back
        whole, for :func:`image_blocks`.

    Yields
    ------
    iterator of list of SignalImages
        Lazily, one list per chunk; leaving the block stops the workers.
    """
    work = functools.partial(chunk_images, cfg=cfg, stft=stft_device is None, max_images=max_images)
    with process_map(work, chunks, workers=workers, initializer=_init_worker) as done:
        if stft_device is None or cfg.is_image:
            yield done
        else:
            extractor = SpectrogramImage(cfg).to(stft_device)
            yield (to_images(results, extractor) for results in done)


def signal_images(ref: SignalRef, cfg: FeatureConfig) -> SignalImages:
    """The images of one signal, as :func:`chunk_images` makes them; raises :class:`BadInput` for a bad one."""
    [result] = chunk_images([ref], cfg)
    if not result.ok:
        raise BadInput(result.error)
    return result


def recording_image(ref: SignalRef, cfg: FeatureConfig) -> np.ndarray:
    """One image of the whole signal, neither cropped nor windowed [shape=(F, T), dtype=float32].

    Its STFT frames line up with the seconds of the windows' bounds (the
    background of :func:`spectro.plots.timeline.plot_timeline`).
    """
    y = check_signal(read_signal(ref, cfg), min_samples=cfg.n_fft)
    extractor = _extractor(cfg.replace(window=None, window_hop=None))
    with torch.inference_mode():
        return extractor(torch.from_numpy(y)[None])[0, 0].numpy()  # (batch 1, 1, F, T) -> (F, T)


# -- worker side ---------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(single_thread: bool = True) -> None:
    """Set up a decoding process (``single_thread`` False: this process, left as it is)."""
    if single_thread:
        _WORKER["limits"] = single_thread_worker()  # kept for the life of the process


@functools.lru_cache(maxsize=4)
def _extractor(cfg: FeatureConfig) -> SpectrogramImage:
    # Per process and per config: building the filterbank for every chunk would cost more than
    # a chunk's STFTs, and keying on the config keeps two interleaved maps (a lazy predict_files
    # and a preprocess between two of its results) from using each other's settings.
    return SpectrogramImage(cfg)
