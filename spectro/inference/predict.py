"""Use a trained run on raw signals: ``spectro.load(RUN)`` and ``spectro predict``.

A raw file becomes exactly the image it would have had in the run's store:
the run's :class:`~spectro.config.FeatureConfig` drives the same functions
preprocess uses (:func:`spectro.signals.audio.load_audio`, ``check_signal``,
``segments``, :class:`spectro.signals.features.SpectrogramImage`), the image is
rounded through float16 as the store keeps it, and :class:`spectro.training.run.Run`
applies the run's per-frequency normalisation. Train/serve skew has no place
to hide: tests/test_predict.py checks that predicting on a store's source
files gives the probabilities of evaluating its rows.

Many files are decoded in worker processes (single-threaded each, as in
preprocess) which send back float16 images; the main process batches them
through the model.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from tqdm import tqdm

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.plots.timeline import plot_timeline, png_name
from spectro.signals.audio import (
    BadInput,
    check_signal,
    load_array_signal,
    load_audio,
    resample,
    segments,
)
from spectro.signals.features import SpectrogramImage, compute_images
from spectro.signals.sources import walk
from spectro.training.run import Run, load_run
from spectro.utils.workers import process_map, single_thread_worker

__all__ = ["load", "Predictor", "FilePrediction", "find_inputs", "windowed_config", "CSV_COLUMNS"]

#: Columns of ``spectro predict --format csv``: a file-level row (start and end
#: empty) and, with windows, one row per window.
CSV_COLUMNS = ("path", "start", "end", "label", "probability", "top", "error")

Input = Union[str, os.PathLike, np.ndarray]


def load(run_dir: str, *, device: Optional[str] = None, weights: str = "best") -> "Predictor":
    """Open the run ``run_dir`` for prediction on raw signals.

    Parameters
    ----------
    run_dir : str
        A directory written by ``spectro train``.
    device : str, optional
        Where a network runs (default: CUDA when available, else CPU).
    weights : {"best", "last"}

    Raises
    ------
    SpectroError
        Not a run, a run of an incompatible format, or one without a model yet.
    """
    return Predictor(load_run(run_dir, weights=weights, device=device))


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
    length = cfg.segment_seconds
    if window is not None and abs(window - length) > 1e-9:
        raise SpectroError(f"--window {window:g}: this run was trained on {length:g} s images, so windows must be "
                           f"{length:g} s long (use --hop to set their spacing)")
    if hop is not None and hop <= 0:
        raise SpectroError(f"--hop must be positive, got {hop:g}")
    return cfg.replace(window=length, window_hop=hop if hop is not None else cfg.window_hop)


@dataclass
class FilePrediction:
    """The prediction for one input (file or array).

    Attributes
    ----------
    source : str
        The file path, or ``<array i>``.
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

    def to_dict(self, top_k: int = 3) -> dict[str, Any]:
        """A JSON-ready summary: file-level label, top-k, windows (if any) or the error."""
        if not self.ok:
            return {"path": self.source, "error": self.error}
        out: dict[str, Any] = {"path": self.source, "label": self.label,
                               "probability": float(self.proba.max()),
                               "top": [{"label": name, "probability": p} for name, p in self.top(top_k)],
                               "seconds": round(self.seconds, 4), "cropped": self.cropped}
        if self.windowed:
            out["windows"] = self.windows()
        return out

    def table_lines(self, top_k: int = 3) -> list[str]:
        """Lines for a person: path, label, top-k; then one line per window."""
        if not self.ok:
            return []
        top = ", ".join(f"{name} {p:.3f}" for name, p in self.top(top_k))
        lines = [f"{self.source}  {self.label}  [{top}]"]
        lines += [f"    {w['start']:8.2f} - {w['end']:8.2f} s  {w['label']}  {w['probability']:.3f}"
                  for w in self.windows()] if self.windowed else []
        return lines

    def csv_rows(self, top_k: int = 3) -> list[dict[str, Any]]:
        """Rows under :data:`CSV_COLUMNS`: the file, then its windows."""
        if not self.ok:
            return [{"path": self.source, "error": self.error}]
        top = ";".join(f"{name}:{p:.6f}" for name, p in self.top(top_k))
        rows = [{"path": self.source, "label": self.label, "probability": f"{self.proba.max():.6f}", "top": top}]
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
            Audio files in any format libsndfile reads, ``.npy`` signals at the
            run's rate, or arrays at ``sample_rate``.
        sample_rate : int, optional
            Rate of array inputs; required for arrays (a wrong rate silently
            gives wrong predictions, so none is assumed).
        window, hop : float, optional
            Predict over sliding windows (see :func:`windowed_config`); the
            probabilities are the mean over the windows.

        Raises
        ------
        SpectroError
            An input that cannot be used (undecodable, silent, too short), named.
        """
        single = _is_single(x)
        results = list(self.predict_files([x] if single else list(x), sample_rate=sample_rate,
                                          window=window, hop=hop, workers=0))
        for r in results:
            if not r.ok:
                raise SpectroError(f"{r.source}: {r.error}")
        proba = np.stack([r.proba for r in results]) if results else np.zeros((0, len(self.labels)))
        return proba[0] if single else proba

    def predict(self, x: Union[Input, Sequence[Input]], sample_rate: Optional[int] = None, *,
                window: Optional[float] = None, hop: Optional[float] = None) -> Union[str, list[str]]:
        """The most probable label of a file or signal, or a list of labels for a list."""
        proba = self.predict_proba(x, sample_rate, window=window, hop=hop)
        if proba.ndim == 1:
            return self.labels[int(np.argmax(proba))]
        return [self.labels[i] for i in np.argmax(proba, axis=1)]

    # -- many files ----------------------------------------------------------
    def predict_files(self, inputs: Iterable[Input], *, sample_rate: Optional[int] = None,
                      window: Optional[float] = None, hop: Optional[float] = None, batch_size: int = 64,
                      workers: Optional[int] = None, chunk_size: int = 16,
                      progress: bool = False) -> Iterator[FilePrediction]:
        """Predict every input, in order, yielding one :class:`FilePrediction` each.

        Files are decoded and turned into float16 images in ``workers``
        processes (default: one per CPU; 0 or 1 decodes in this process),
        ``chunk_size`` files per task; images go through the model
        ``batch_size`` at a time. A bad input yields a FilePrediction with
        ``error`` set; the others go on.
        """
        if batch_size < 1:
            raise SpectroError(f"--batch-size must be at least 1, got {batch_size}")
        cfg = windowed_config(self.feature_config, window=window, hop=hop)
        items = list(inputs)
        names = [_name(x, i) for i, x in enumerate(items)]
        n_workers = (os.cpu_count() or 1) if workers is None else max(0, workers)
        paths_only = all(not isinstance(x, np.ndarray) for x in items)
        chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
        tasks = [[(x, sample_rate) for x in chunk] for chunk in chunks]
        bar = tqdm(total=len(items), unit="file", file=sys.stderr, disable=None if progress else True, desc="predict")
        pooled = process_map(_decode_chunk, tasks, workers=min(n_workers, len(chunks)) if paths_only else 0,
                             initializer=_init_worker, initargs=(cfg,))
        with bar, pooled as decoded:
            pending: list[tuple[str, Decoded]] = []
            n_images = 0
            offset = 0
            for chunk in decoded:
                for d in chunk:
                    pending.append((names[offset], d))
                    offset += 1
                    n_images += 0 if d.images is None else len(d.images)
                if n_images >= batch_size:
                    yield from self._finish(pending, cfg, batch_size)
                    bar.update(len(pending))
                    pending, n_images = [], 0
            yield from self._finish(pending, cfg, batch_size)
            bar.update(len(pending))

    def _finish(self, pending: list[tuple[str, "Decoded"]], cfg: FeatureConfig,
                batch_size: int) -> Iterator[FilePrediction]:
        """Run the model over the images of ``pending``, ``batch_size`` at a time, and split the result per input."""
        blocks = [d.images for _, d in pending if d.images is not None]
        # Run.predict_proba normalises chunk by chunk: a long recording's windows never sit in float32 whole.
        proba = self.run.predict_proba(np.concatenate(blocks), chunk=batch_size,
                                       batch_size=batch_size) if blocks else None  # (n_img, C)
        at = 0
        for name, d in pending:
            if d.error is not None:
                yield FilePrediction(name, self.labels, error=d.error)
                continue
            p = proba[at:at + len(d.images)]
            at += len(d.images)
            yield FilePrediction(
                name, self.labels, proba=p.mean(axis=0), starts=d.bounds[:, 0], ends=d.bounds[:, 1],
                window_proba=p, seconds=d.seconds, windowed=cfg.window is not None,
                cropped=cfg.window is None and d.seconds > cfg.duration + 0.5 / cfg.sample_rate,
            )

    def plot(self, result: FilePrediction, out_dir: str, sample_rate: Optional[int] = None) -> str:
        """Write ``out_dir/NAME.png``: the spectrogram of the input with its predicted labels over time.

        ``result`` comes from :meth:`predict_files` on a path (an array input
        needs ``sample_rate`` again). Returns the PNG's path.
        """
        cfg = self.feature_config
        y = read_signal(result.source, cfg, sample_rate)
        # One image of the whole recording (its STFT frames line up with the windows' seconds).
        with torch.inference_mode():
            image = SpectrogramImage(cfg.replace(window=None, window_hop=None))(torch.from_numpy(y)[None])[0, 0]
        return plot_timeline(image.numpy(), cfg, starts=result.starts, ends=result.ends,
                             window_proba=result.window_proba, labels=self.labels,
                             title=f"{result.source}: {result.label} ({result.proba.max():.2f})",
                             path=os.path.join(out_dir, png_name(result.source)))

    def images(self, x: Input, sample_rate: Optional[int] = None, *, window: Optional[float] = None,
               hop: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """The images of one input as the store would hold them, and their bounds.

        Returns
        -------
        images : np.ndarray [shape=(k, 1, F, T), dtype=float16]
        bounds : np.ndarray [shape=(k, 2)]
            Start and end of each image in seconds.
        """
        cfg = windowed_config(self.feature_config, window=window, hop=hop)
        try:
            y = check_signal(read_signal(x, cfg, sample_rate), min_samples=cfg.n_fft)
        except BadInput as err:
            raise SpectroError(f"{_name(x, 0)}: {err}") from None
        segs, bounds = segments(y, cfg)
        return compute_images(segs, SpectrogramImage(cfg)), bounds


def find_inputs(paths: Sequence[str]) -> list[str]:
    """Files named in ``paths``, directories walked recursively for signal files, in order.

    A file named explicitly is kept whatever its extension (libsndfile may
    still read it); in directories only signal extensions count.
    """
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            out.extend(walk(p, Counter()))
        else:
            out.append(p)  # a missing file is reported per file as "cannot read"; the others still run
    return out


def read_signal(x: Input, cfg: FeatureConfig, sample_rate: Optional[int] = None) -> np.ndarray:
    """Decode a path, or resample an array, to mono float32 at ``cfg.sample_rate`` [shape=(n,)].

    ``.npy`` files hold a 1-D signal at the run's rate, as preprocess reads
    them; arrays need ``sample_rate``.
    """
    if isinstance(x, np.ndarray):
        if sample_rate is None:
            raise BadInput(f"an array needs sample_rate= (this run was trained at {cfg.sample_rate} Hz)")
        return resample(load_array_signal(x), orig_sr=int(sample_rate), target_sr=cfg.sample_rate)
    path = os.fspath(x)
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise BadInput(f"cannot read array: {err}") from None
        return load_array_signal(arr)
    if not os.path.exists(path):
        raise BadInput("cannot read: no such file")
    return load_audio(path, sample_rate=cfg.sample_rate)


# -- worker side -----------------------------------------------------------------------


@dataclass
class Decoded:
    """What a worker sends back for one input: float16 images and bounds, or an error."""

    images: Optional[np.ndarray] = None  # (k, 1, F, T) float16
    bounds: Optional[np.ndarray] = None  # (k, 2) seconds
    seconds: float = 0.0
    error: Optional[str] = None


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: FeatureConfig, single_thread: bool = True) -> None:
    if single_thread:  # in a pool process
        _WORKER["limits"] = single_thread_worker()
    if _WORKER.get("cfg") != cfg:
        _WORKER["cfg"] = cfg
        _WORKER["extractor"] = SpectrogramImage(cfg)


def _decode_chunk(tasks: list[tuple[Input, Optional[int]]]) -> list[Decoded]:
    """Decode a chunk of inputs and compute all their images in one batched STFT."""
    cfg: FeatureConfig = _WORKER["cfg"]
    out: list[Decoded] = []
    segs = []
    for x, sr in tasks:
        try:
            y = check_signal(read_signal(x, cfg, sr), min_samples=cfg.n_fft)
            s, bounds = segments(y, cfg)
        except BadInput as err:
            out.append(Decoded(error=str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - one odd file must not end the others' predictions
            out.append(Decoded(error=f"unexpected error: {type(err).__name__}: {err}"))
            continue
        segs.append(s)
        out.append(Decoded(bounds=bounds, seconds=y.shape[0] / cfg.sample_rate))
    if segs:
        images = compute_images(np.concatenate(segs), _WORKER["extractor"])  # (n_segments, 1, F, T) float16
        at = 0
        for d in out:
            if d.error is None:
                d.images = images[at:at + len(d.bounds)]
                at += len(d.bounds)
    return out


def _is_single(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) or (isinstance(x, np.ndarray) and x.ndim == 1)


def _name(x: Input, i: int) -> str:
    return f"<array {i}>" if isinstance(x, np.ndarray) else os.fspath(x)
