"""Occlusion maps: where in the image a model's decision lives, for any model that gives probabilities.

Each time-frequency patch of an image is masked in turn, the way SpecAugment
masks (Park et al. 2019): the patch takes the training mean, which is 0 in
the normalised images every classifier reads and ``run.mean`` (per
frequency) in a store's raw images. The drop in the probability of the true
class is that patch's importance; a pixel's importance is the mean over the
patches that cover it (Zeiler & Fergus 2014, "Visualizing and Understanding
Convolutional Networks", Sec. 4.2). Nothing here asks what the model is: an
SVM, a network, a :class:`~spectro.training.run.Run` or an ONNX Runtime
session behind :class:`OnnxProbabilities` all answer ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.signals.features import frequencies

__all__ = ["OnnxProbabilities", "band_importance", "image_axes", "occlusion_maps", "patch_starts", "profiles"]

#: A patch covers this fraction of each axis by default (at least one row or column); the next one
#: starts half a patch further on.
PATCH_FRACTION = 1 / 8
MAX_COPIES = 512  # occluded images per predict_proba call

#: Anything with ``predict_proba(X)``, or a callable X -> probabilities.
Model = Any


class OnnxProbabilities:
    """An ONNX Runtime session (``spectro export``'s graph) as an object with ``predict_proba``.

    Parameters
    ----------
    session : onnxruntime.InferenceSession (anything with ``run(outputs, feeds)``)
        Its input ``image`` is the normalised image [shape=(batch, C, F, T)].
    output : str
        The output holding the probabilities.
    """

    def __init__(self, session: Any, output: str = "probabilities") -> None:
        self.session = session
        self.output = output

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([self.output], {"image": np.asarray(X, np.float32)})[0])


def _predictor(model: Model) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(model, "predict_proba"):
        return model.predict_proba
    if callable(model):
        return model
    raise SpectroError(f"{type(model).__name__} has no predict_proba: it cannot be explained by occlusion")


def patch_starts(n: int, size: int, stride: int) -> list[int]:
    """Starts of patches of ``size`` every ``stride`` along an axis of ``n``, the last one flush with the end."""
    starts = list(range(0, max(n - size, 0) + 1, stride))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts


def occlusion_maps(model: Model, images: Any, targets: Any, *, fill: Any = 0.0,
                   patch: tuple[int, int] | None = None, stride: tuple[int, int] | None = None) -> np.ndarray:
    """The drop in the true class's probability when each patch is masked, per pixel.

    Parameters
    ----------
    model : object with ``predict_proba(X)``, or a callable X -> probabilities
        X [shape=(n, C, F, T)] -> [shape=(n, K)].
    images : array [shape=(N, C, F, T)]
        As the model reads them (normalised for a classifier, raw for a Run).
    targets : array of int [shape=(N,)]
        Column of the class whose probability is followed (the true class).
    fill : float or array [shape=(C, F)]
        What a masked pixel becomes: the training mean (0 in normalised images).
    patch, stride : (rows, columns), optional
        Default: 1/8 of each axis (at least 1), stride half a patch.

    Returns
    -------
    maps : np.ndarray [shape=(N, F, T), dtype=float64]
        Positive where masking lowers the true class's probability.
    """
    predict = _predictor(model)
    images = np.asarray(images, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    if images.ndim != 4 or len(targets) != len(images):
        raise SpectroError(f"occlusion needs images (N, C, F, T) and N targets, got {images.shape} and {targets.shape}")
    n, c, f, t = images.shape
    ph, pw = patch or (max(1, round(f * PATCH_FRACTION)), max(1, round(t * PATCH_FRACTION)))
    sh, sw = stride or (max(1, ph // 2), max(1, pw // 2))
    fill = np.asarray(fill, np.float32)
    if fill.ndim == 2:  # a value per channel and frequency (a run's mean), the same at every time
        fill = fill[:, :, None]  # (C, F, 1)
    fill_img = np.broadcast_to(fill, (c, f, t))
    boxes = [(i, j) for i in patch_starts(f, ph, sh) for j in patch_starts(t, pw, sw)]
    cover = np.zeros((f, t))
    for i, j in boxes:
        cover[i:i + ph, j:j + pw] += 1
    base = predict(images)[np.arange(n), targets]  # (N,)
    maps = np.zeros((n, f, t))
    per_call = max(1, MAX_COPIES // len(boxes))
    for start in range(0, n, per_call):
        chunk = images[start:start + per_call]
        copies = np.repeat(chunk[:, None], len(boxes), axis=1)  # (n, boxes, C, F, T)
        for b, (i, j) in enumerate(boxes):
            copies[:, b, :, i:i + ph, j:j + pw] = fill_img[:, i:i + ph, j:j + pw]
        proba = predict(copies.reshape(-1, c, f, t)).reshape(len(chunk), len(boxes), -1)
        rows = slice(start, start + len(chunk))
        drop = base[rows, None] - proba[np.arange(len(chunk)), :, targets[rows]]  # (n, boxes)
        for b, (i, j) in enumerate(boxes):
            maps[rows, i:i + ph, j:j + pw] += drop[:, b, None, None]
    return maps / cover


def band_importance(model: Model, images: Any, targets: Any, *, fill: Any = 0.0,
                    width: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean importance of each frequency row and each time column: SpecAugment's masks as occlusions.

    A frequency mask spans every column (a band removed for the whole clip), a
    time mask every row (an instant removed at every frequency), so a class
    told apart by one band or one instant loses all its evidence at once,
    however the model pools it. Each row's (column's) importance is the mean
    drop of the true class's probability over the masks that cover it and
    over the images.

    Parameters
    ----------
    model, images, targets, fill
        As in :func:`occlusion_maps`.
    width : (rows, columns), optional
        Mask widths; default 1/8 of each axis (at least 1), moved half a width at a time.

    Returns
    -------
    over_frequency : np.ndarray [shape=(F,)]
    over_time : np.ndarray [shape=(T,)]
    """
    images = np.asarray(images, dtype=np.float32)
    _, _, f, t = images.shape
    wf, wt = width or (max(1, round(f * PATCH_FRACTION)), max(1, round(t * PATCH_FRACTION)))
    by_freq = occlusion_maps(model, images, targets, fill=fill, patch=(wf, t), stride=(max(1, wf // 2), t))
    by_time = occlusion_maps(model, images, targets, fill=fill, patch=(f, wt), stride=(f, max(1, wt // 2)))
    return by_freq.mean(axis=(0, 2)), by_time.mean(axis=(0, 1))


def profiles(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean importance over frequency [shape=(F,)] and over time [shape=(T,)] of maps [shape=(N, F, T)]."""
    maps = np.asarray(maps, dtype=np.float64)
    return maps.mean(axis=(0, 2)), maps.mean(axis=(0, 1))


def image_axes(cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Centre frequency in Hz of each image row [shape=(F,)] and time in seconds of each column [shape=(T,)].

    For images made elsewhere (``cfg.is_image``), which know neither, the row and column numbers (pixels).
    """
    if cfg.is_image:  # images made elsewhere: no Hz, no seconds; rows and columns in pixels
        return np.arange(cfg.n_freq, dtype=np.float64), np.arange(cfg.n_frames, dtype=np.float64)
    return frequencies(cfg), np.arange(cfg.n_frames) * cfg.hop_length / cfg.sample_rate
