"""Use a trained run on raw signals: ``spectro.load(RUN)`` and ``spectro predict``.

A raw signal becomes exactly the image it would have had in the run's store:
the run's :class:`~spectro.config.FeatureConfig` drives the very path
preprocess takes (:mod:`spectro.signals.images`: read, check, segment, STFT,
float16 as the store keeps it), and :class:`spectro.training.run.Run` applies
the run's per-frequency normalisation. Train/serve skew has no place to hide:
tests/inference/test_predict.py checks that predicting on a store's source
files (audio at any rate, ``.npy`` and ``.npz`` signals) gives the
probabilities of evaluating its rows, and that a bad file gets the reason
preprocess writes in errors.csv.

What preprocess reads, predict reads: audio files, and ``.npy``/``.npz``,
``.mat`` and CSV/TSV files of samples at the run's rate (or at
``sample_rate``), whose signals are named as preprocess names them
(``a.npz#X[3]``: row 3 of array ``X``; ``b.npy[2]``); for a run on a store of
images made elsewhere, pictures (through the store's colormap, crop and
size) and 2-D arrays. Many inputs
are decoded in worker processes which send back float16 images; the main
process batches them through the model.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from spectro.config import FeatureConfig
from spectro.errors import BadInput, SpectroError
from spectro.inference.defaults import PREDICT_BATCH_SIZE, TOP_K
from spectro.inference.locate import resolve_run
from spectro.inference.segments import format_segments, merge_segments
from spectro.plots.timeline import plot_timeline, png_name
from spectro.signals.images import (
    WINDOW_BLOCK,
    SignalImages,
    SignalRef,
    image_blocks,
    map_chunks,
    recording_image,
    signal_images,
    signals_in,
)
from spectro.signals.audio import ARRAY_EXTENSIONS, is_vector
from spectro.signals.pictures import PICTURE_EXTENSIONS
from spectro.signals.sources import SIGNAL_EXTENSIONS, key_suffix, walk
from spectro.training.run import Run, load_run
from spectro.utils.workers import worker_count

__all__ = ["load", "Predictor", "FilePrediction", "find_inputs", "windowed_config", "CSV_COLUMNS", "escape_top"]

#: Columns of ``spectro predict --format csv``: a file-level row (start and end
#: empty) and, with windows, one row per window.
CSV_COLUMNS = ("path", "start", "end", "label", "probability", "top", "error", "segments")

Input = Union[str, os.PathLike, np.ndarray]


def load(run_dir: str, *, device: Optional[str] = None, weights: str = "best",
         model: Optional[str] = None) -> "Predictor":
    """Open the run ``run_dir`` for prediction on raw signals.

    Parameters
    ----------
    run_dir : str
        A directory written by ``spectro train``, or with ``model`` one written by ``spectro compare``.
    model : str, optional
        The compared model whose run to open (see :func:`spectro.inference.locate.resolve_run`).
    device : str, optional
        Where a network runs (default: CUDA when available, else CPU).
    weights : {"best", "last"}

    Raises
    ------
    SpectroError
        Not a run, a run of an incompatible format, or one without a model yet.
    """
    return Predictor(load_run(resolve_run(run_dir, model), weights=weights, device=device))


def windowed_config(cfg: FeatureConfig, *, window: Optional[float] = None,
                    hop: Optional[float] = None) -> FeatureConfig:
    """The FeatureConfig prediction uses: ``cfg``, or ``cfg`` cut into sliding windows.

    Windows are used when the run was trained on windows, or ``window`` or
    ``hop`` is given. The window length is always the training segment length
    (``cfg.window`` or ``cfg.duration``): any other length would give images
    of a shape the model never saw.
    """
    if window is None and hop is None:
        return cfg
    if cfg.is_image:
        raise SpectroError("--window/--hop: this run's images were made elsewhere (pictures or 2-D arrays); they "
                           "have no seconds to slide along")
    length = cfg.segment_seconds
    for name, value in (("--window", window), ("--hop", hop)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise SpectroError(f"{name} must be a positive number of seconds, got {value!r}")
    if window is not None and abs(window - length) > 1e-9:
        raise SpectroError(f"--window {window:g}: this run was trained on {length:g} s images, so windows must be "
                           f"{length:g} s long (use --hop to set their spacing)")
    # Windows closer than one STFT frame show the timeline nothing its images can resolve; a hop
    # that small would only multiply the work (a 10-minute file at --hop 0.0001 is 6 million windows).
    frame = cfg.hop_length / cfg.sample_rate
    if hop is not None and hop < frame - 1e-12:
        raise SpectroError(f"--hop {hop:g} s is finer than the images' time step ({cfg.hop_length} samples = "
                           f"{frame:g} s at {cfg.sample_rate} Hz); use --hop {frame:g} or more")
    return cfg.replace(window=length, window_hop=hop if hop is not None else cfg.window_hop)


@dataclass
class FilePrediction:
    """The prediction for one input (file or array).

    Attributes
    ----------
    source : str
        The file path; for a signal inside an array file, its name as
        preprocess names it (``a.npz#X[3]``, ``b.npy[2]``); ``<array i>`` for
        an array in memory.
    labels : list of str
        Class names; column j of the probabilities is ``labels[j]``.
    proba : np.ndarray [shape=(C,)] or None
        Class probabilities; with windows, the mean over the windows. None on error.
    starts, ends : np.ndarray [shape=(k,)]
        Start and end in seconds of each window (one entry without windows:
        the stretch of the signal the image covers).
    window_proba : np.ndarray [shape=(k, C)]
        Probabilities of each window (the one image without windows).
    seconds : float
        Length of the decoded signal.
    cropped : bool
        The signal was longer than the training duration and, with no windows
        asked for, was cropped as the store crops.
    windowed : bool
    error : str or None
        Why this input got no prediction (undecodable, silent, too short...).
    """

    #: Columns of ``spectro predict --format csv``.
    CSV_COLUMNS: ClassVar[tuple[str, ...]] = CSV_COLUMNS

    source: str
    labels: Sequence[str]
    proba: Optional[np.ndarray] = None
    starts: Optional[np.ndarray] = None
    ends: Optional[np.ndarray] = None
    window_proba: Optional[np.ndarray] = None
    seconds: float = 0.0
    cropped: bool = False
    windowed: bool = False
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> Optional[str]:
        """The most probable class (file level), None on error."""
        return None if self.proba is None else self.labels[int(np.argmax(self.proba))]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes as ``(label, probability)``, most probable first."""
        if self.proba is None:
            return []
        order = np.argsort(-self.proba, kind="stable")[:k]
        return [(self.labels[i], float(self.proba[i])) for i in order]

    def windows(self) -> list[dict[str, Any]]:
        """Per window: ``start``, ``end`` (seconds), ``label`` and its ``probability``."""
        if self.window_proba is None:
            return []
        best = self.window_proba.argmax(axis=1)
        return [{"start": round(float(a), 4), "end": round(float(b), 4), "label": self.labels[j],
                 "probability": float(p[j])}
                for a, b, j, p in zip(self.starts, self.ends, best, self.window_proba)]

    def segments(self) -> list[dict[str, Any]]:
        """Runs of windows with the same label, merged (:func:`~spectro.inference.segments.merge_segments`)."""
        if self.window_proba is None:
            return []
        return merge_segments(self.starts, self.ends, self.window_proba, self.labels)

    def to_dict(self, top_k: int = TOP_K) -> dict[str, Any]:
        """A JSON-ready summary: file-level label, top-k, windows (if any) or the error."""
        if not self.ok:
            return {"path": self.source, "error": self.error}
        out: dict[str, Any] = {"path": self.source, "label": self.label,
                               "probability": float(self.proba.max()),
                               "top": [{"label": name, "probability": p} for name, p in self.top(top_k)],
                               "seconds": round(self.seconds, 4), "cropped": self.cropped}
        if self.windowed:
            out["segments"] = self.segments()
            out["windows"] = self.windows()
        return out

    def table_lines(self, top_k: int = TOP_K) -> list[str]:
        """Lines for a person: path, label, top-k; then one line per window."""
        if not self.ok:
            return []
        top = ", ".join(f"{name} {p:.3f}" for name, p in self.top(top_k))
        lines = [f"{self.source}  {self.label}  [{top}]"]
        lines += [f"    segments: {format_segments(self.segments())}"] if self.windowed else []
        lines += [f"    {w['start']:8.2f} - {w['end']:8.2f} s  {w['label']}  {w['probability']:.3f}"
                  for w in self.windows()] if self.windowed else []
        return lines

    def csv_rows(self, top_k: int = TOP_K) -> list[dict[str, Any]]:
        """Rows under :data:`CSV_COLUMNS`: the file, then its windows."""
        if not self.ok:
            return [{"path": self.source, "error": self.error}]
        top = ";".join(f"{escape_top(name)}:{p:.6f}" for name, p in self.top(top_k))
        rows = [{"path": self.source, "label": self.label, "probability": f"{self.proba.max():.6f}", "top": top}]
        if self.windowed:  # [[start, end, label], ...] as JSON: a label may hold any character
            rows[0]["segments"] = json.dumps([[s["start"], s["end"], s["label"]] for s in self.segments()])
        rows += [{"path": self.source, "start": f"{w['start']:.4f}", "end": f"{w['end']:.4f}", "label": w["label"],
                  "probability": f"{w['probability']:.6f}"} for w in self.windows()] if self.windowed else []
        return rows


class Predictor:
    """A trained run ready for raw signals (made by :func:`load`).

    Attributes
    ----------
    run : spectro.training.run.Run
        Classifier, labels, normalisation and FeatureConfig.
    labels : list of str
    feature_config : FeatureConfig
        How a signal becomes an image (the run's, i.e. its store's).
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.labels = list(run.labels)
        self.feature_config = run.feature_config

    # -- one input or a few ------------------------------------------------
    def predict_proba(self, x: Union[Input, Sequence[Input]], sample_rate: Optional[int] = None, *,
                      window: Optional[float] = None, hop: Optional[float] = None) -> np.ndarray:
        """Class probabilities of a file or signal [shape=(C,)], or of a list of them [shape=(N, C)].

        Parameters
        ----------
        x : str, path, np.ndarray [shape=(n,)], or a list of these
            Audio files in any format libsndfile reads, ``.npy``/``.npz``,
            ``.mat`` or CSV/TSV files of samples at the run's rate (as
            preprocess reads them; one of their signals by its name,
            ``a.npz#X[3]``), or arrays at ``sample_rate``: a vector, also as
            a column ``(n, 1)`` (what ``scipy.io.loadmat`` gives), is one
            signal, a 2-D array ``(N, n)`` N signals. A run on images made
            elsewhere takes pictures and 2-D arrays ``(F, T)`` (``(N, F, T)``: N).
        sample_rate : int, optional
            Rate of array inputs; required for arrays (a wrong rate silently
            gives wrong predictions, so none is assumed). Not used by a run
            on images.
        window, hop : float, optional
            Predict over sliding windows (see :func:`windowed_config`); the
            probabilities are the mean over the windows.

        Returns
        -------
        np.ndarray [shape=(C,) or (N, C)]
            One row per signal: a file holding several (a 2-D ``.npy``, a
            ``.npz``) gives several rows, as a 2-D array does.

        Raises
        ------
        SpectroError
            An input that cannot be used (undecodable, silent, too short), named.
        """
        single = _is_single(x, self.feature_config.is_image)
        results = list(self.predict_files([x] if single else list(x), sample_rate=sample_rate,
                                          window=window, hop=hop, workers=0))
        for r in results:
            if not r.ok:
                raise SpectroError(f"{r.source}: {r.error}")
        proba = np.stack([r.proba for r in results]) if results else np.zeros((0, len(self.labels)))
        return proba[0] if single and len(results) == 1 else proba

    def predict(self, x: Union[Input, Sequence[Input]], sample_rate: Optional[int] = None, *,
                window: Optional[float] = None, hop: Optional[float] = None) -> Union[str, list[str]]:
        """The most probable label of a file or signal, or a list of labels for a list."""
        proba = self.predict_proba(x, sample_rate, window=window, hop=hop)
        if proba.ndim == 1:
            return self.labels[int(np.argmax(proba))]
        return [self.labels[i] for i in np.argmax(proba, axis=1)]

    # -- many files ----------------------------------------------------------
    def predict_files(self, inputs: Iterable[Input], *, sample_rate: Optional[int] = None,
                      window: Optional[float] = None, hop: Optional[float] = None, batch_size: int = PREDICT_BATCH_SIZE,
                      workers: Optional[int] = None, chunk_size: int = 16,
                      progress: bool = False) -> Iterator[FilePrediction]:
        """Predict every signal, in order, yielding one :class:`FilePrediction` each.

        An array file holding several signals (see :func:`find_inputs`)
        yields one per signal. Inputs are read and turned into float16 images
        in ``workers`` processes (default: one per CPU; 0 or 1 works in this
        process), ``chunk_size`` signals per task; images go through the model
        ``batch_size`` at a time. A bad input yields a FilePrediction with
        ``error`` set (the reason preprocess gives the same file); the others
        go on.

        ``sample_rate``: the rate of arrays in memory and of files that carry
        none (``.npy``/``.npz``, ``.mat``, CSV/TSV; None: the run's rate).

        Memory: a recording of more than
        :data:`~spectro.signals.images.WINDOW_BLOCK` windows is cut, turned
        into images and scored that many windows at a time, so beyond the
        decoded signal itself (4 bytes a sample) memory does not grow with
        its length or the hop.
        """
        if batch_size < 1:
            raise SpectroError(f"--batch-size must be at least 1, got {batch_size}")
        cfg = windowed_config(self.feature_config, window=window, hop=hop)
        named = [s for i, x in enumerate(inputs) for s in _signals(x, i, sample_rate, self.feature_config.is_image)]
        n_workers = worker_count(workers)  # a negative number is refused, a large one capped
        in_files = all(ref.array is None for _, ref in named)  # arrays in memory are not sent to workers
        chunks = [[ref for _, ref in named[i:i + chunk_size]] for i in range(0, len(named), chunk_size)]
        bar = tqdm(total=len(named), unit="file", file=sys.stderr, disable=None if progress else True, desc="predict")
        pooled = map_chunks(chunks, cfg, workers=min(n_workers, len(chunks)) if in_files else 0,
                            max_images=WINDOW_BLOCK)
        with bar, pooled as decoded:
            pending: list[tuple[str, SignalImages]] = []
            n_images = 0
            names = (name for name, _ in named)
            for chunk in decoded:
                for d in chunk:
                    pending.append((next(names), d))
                    n_images += len(d.images) if d.images is not None else 0 if d.signal is None else batch_size
                if n_images >= batch_size:  # a whole recording (d.signal) is scored at once: it leaves no backlog
                    yield from self._finish(pending, cfg, batch_size)
                    bar.update(len(pending))
                    pending, n_images = [], 0
            yield from self._finish(pending, cfg, batch_size)
            bar.update(len(pending))

    def _finish(self, pending: list[tuple[str, SignalImages]], cfg: FeatureConfig,
                batch_size: int) -> Iterator[FilePrediction]:
        """Run the model over the images of ``pending``, ``batch_size`` at a time, and split the result per input."""
        blocks = [d.images for _, d in pending if d.images is not None]
        # Run.predict_proba normalises chunk by chunk: a long recording's windows never sit in float32 whole.
        proba = self.run.predict_proba(np.concatenate(blocks), chunk=batch_size,
                                       batch_size=batch_size) if blocks else None  # (n_img, C)
        at = 0
        for name, d in pending:
            if d.signal is not None:  # a long recording: its windows a block at a time
                try:
                    p = np.concatenate([self.run.predict_proba(images, chunk=batch_size, batch_size=batch_size)
                                        for images in image_blocks(d, cfg)])  # (n_windows, C)
                except BadInput as err:
                    d = SignalImages(error=str(err))
            elif d.error is None:
                p = proba[at:at + len(d.images)]
                at += len(d.images)
            if d.error is not None:
                yield FilePrediction(name, self.labels, error=d.error)
                continue
            yield FilePrediction(
                name, self.labels, proba=p.mean(axis=0), starts=d.bounds[:, 0], ends=d.bounds[:, 1],
                window_proba=p, seconds=d.seconds, windowed=cfg.window is not None,
                cropped=cfg.window is None and d.seconds > cfg.duration + 0.5 / cfg.sample_rate,
            )

    def plot(self, result: FilePrediction, out_dir: str, *, signal: Optional[np.ndarray] = None,
             sample_rate: Optional[int] = None, file_name: Optional[str] = None) -> str:
        """Write ``out_dir/NAME.png``: the spectrogram of the input with its predicted labels over time.

        ``result`` comes from :meth:`predict_files`; its source is read again
        (an array input: pass it again as ``signal``, with its
        ``sample_rate``). ``file_name`` replaces NAME.png (default
        :meth:`figure_name`). Returns the PNG's path.
        """
        cfg = self.feature_config
        if cfg.is_image:
            raise SpectroError(f"{result.source}: this run's images were made elsewhere: no timeline to draw")
        if signal is not None:
            name, ref = result.source, SignalRef(array=signal, sample_rate=sample_rate)
        elif result.source.startswith("<array "):
            raise SpectroError(f"{result.source}: pass the array again as signal= (with its sample_rate=) to plot it")
        else:
            [(name, ref)] = signals_in(result.source)  # a prediction's source names one signal
        try:
            image = recording_image(ref, cfg)  # (F, T): the whole recording, its frames on the windows' seconds
        except BadInput as err:
            raise SpectroError(f"{name}: {err}") from None
        return plot_timeline(image, cfg, starts=result.starts, ends=result.ends,
                             window_proba=result.window_proba, labels=self.labels,
                             title=f"{result.source}: {result.label} ({result.proba.max():.2f})",
                             path=os.path.join(out_dir, file_name or png_name(_figure_name(name, ref))),
                             segments=result.segments())

    def figure_name(self, result: FilePrediction) -> str:
        """The file name :meth:`plot` gives ``result``'s figure: the source's base name (``x/a.wav`` -> ``a.png``)."""
        if result.source.startswith("<array "):
            return png_name(result.source)
        [(name, ref)] = signals_in(result.source)
        return png_name(_figure_name(name, ref))

    def images(self, x: Input, sample_rate: Optional[int] = None, *, window: Optional[float] = None,
               hop: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """The images of one signal as the store would hold them, and their bounds.

        Returns
        -------
        images : np.ndarray [shape=(k, 1, F, T), dtype=float16]
        bounds : np.ndarray [shape=(k, 2)]
            Start and end of each image in seconds.

        Raises
        ------
        SpectroError
            A bad signal, or a file holding several (name one: ``a.npz#X[3]``).
        """
        cfg = windowed_config(self.feature_config, window=window, hop=hop)
        named = _signals(x, 0, sample_rate, cfg.is_image)
        if len(named) != 1:
            raise SpectroError(f"{os.fspath(x)} holds {len(named)} signals; images() takes one"
                               + (f", named as {named[0][0]}" if named else ""))
        [(name, ref)] = named
        try:
            r = signal_images(ref, cfg)
        except BadInput as err:
            raise SpectroError(f"{name}: {err}") from None
        return r.images, r.bounds


def find_inputs(paths: Sequence[str], *, required: bool = False, images: bool = False) -> list[str]:
    """The signals named in ``paths``, in order: files, directories walked recursively.

    A file named explicitly is kept whatever its extension (libsndfile may
    still read it); in directories only signal extensions count. An array
    file holding several signals gives each signal's name (``a.npz#X[0]``,
    ``a.npz#X[1]``, ... as preprocess names them), and such a name can be
    given itself. ``images``: for a run on images made elsewhere (pictures
    and 2-D arrays are searched for, an array file holding N images gives N).
    ``required``: none found raises a :class:`SpectroError` that lists the
    extensions looked for (preprocess's) and those found instead.
    """
    out: list[str] = []
    ignored: Counter = Counter()
    wanted = PICTURE_EXTENSIONS | ARRAY_EXTENSIONS if images else SIGNAL_EXTENSIONS
    for p in paths:
        # A missing file is reported per input as "cannot read"; the others still run.
        files = walk(p, ignored, wanted) if os.path.isdir(p) else [p]
        out.extend(name for f in files for name, _ in signals_in(f, images=images))
    if required and not out:
        found = ", ".join(f"{n} {ext}" for ext, n in ignored.most_common(5))
        raise SpectroError(f"no {'image' if images else 'signal'} files in {' '.join(map(str, paths))} (looked for "
                           f"{', '.join(sorted(wanted))}" + (f"; found {found}" if found else "") + ")")
    return out


def _signals(x: Input, i: int, sample_rate: Optional[int], images: bool = False) -> list[tuple[str, SignalRef]]:
    """The named signals of the ``i``-th input: an array in memory (N images: N of them), or what a path names."""
    if isinstance(x, np.ndarray):
        if images and x.ndim == 3:
            return [(f"<array {i}>[{j}]", SignalRef(array=x[j])) for j in range(x.shape[0])]
        return [(f"<array {i}>", SignalRef(array=x, sample_rate=sample_rate))]
    named = signals_in(os.fspath(x), images=images)
    for _, ref in named:
        ref.sample_rate = sample_rate  # the rate of a file that carries none (audio files keep their own)
    return named


def escape_top(name: str) -> str:
    """A class name as the CSV ``top`` column writes it: ``\\``, ``;`` and ``:`` escaped with a backslash.

    ``top`` is ``NAME:P;NAME:P``; a name ``a;b:1.0`` would read as two
    entries. Split it on the separators not preceded by a backslash.
    """
    return name.replace("\\", "\\\\").replace(";", "\\;").replace(":", "\\:")


def _figure_name(name: str, ref: SignalRef) -> str:
    """``dir/a.npz#X[3]`` -> ``a#X[3].npz``: the signal inside an array file keeps its row in the PNG's name."""
    if ref.key is None:
        return name
    stem, ext = os.path.splitext(os.path.basename(ref.path))
    return stem + key_suffix(ref.key) + ext


def _is_single(x: Any, images: bool = False) -> bool:
    """One input, not a list: a path, a signal (a vector, also ``(n, 1)`` or ``(1, n)``) or, for images, ``(F, T)``."""
    if isinstance(x, (str, os.PathLike)):
        return True
    if not isinstance(x, np.ndarray):
        return False
    return x.ndim == 2 if images else (x.ndim == 1 or (x.ndim == 2 and is_vector(x.shape)))
