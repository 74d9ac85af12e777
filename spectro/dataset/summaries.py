"""Fixed-length summaries of spectrogram images, and the front-ends the SVM chooses among.

A front-end is a spec of ``+``-joined tokens, applied to each image in this order:

* ``poolN`` (optional): the mean of every N consecutive frames (non-overlapping;
  a short tail is dropped, at least one window kept). The store's frames are
  10 ms by default, so ``pool6`` is about the 64 ms of a practitioner's librosa
  script (hop 512 at 8 kHz; 23-32 ms at 16-22 kHz, over windows of 93-128 ms),
  and ``pool25`` summarises quarter-second stretches.
* ``peak`` (optional): each image minus its own maximum (per channel): the
  script's ``power_to_db(ref=np.max)``, on the normalised image.
* ``cmn`` (optional): each band minus its own mean over the clip: a per-channel
  normalisation (the stationary part of PCEN's automatic gain control; Wang et
  al. 2017, "Trainable frontend for robust and far-field keyword spotting"). A
  fixed gain or EQ of the recording no longer moves any summary. The band
  means are then zero and ``stats`` and ``dct`` keep their standard deviations only (a
  rounding-noise column would be blown up by the scaler).
* the summary parts (one or more), per band and channel over time:

  * ``stats``: mean and standard deviation, 2 C F values;
  * ``pct``: the 10th, 50th and 90th percentiles, 3 C F;
  * ``delta``: mean absolute value and standard deviation of the first
    difference along time (how fast each band changes), 2 C F;
  * ``range``: maximum and minimum over time, 2 C F;
  * ``dct``: the first ``N_DCT`` coefficients of an orthonormal DCT-II over
    frequency of each frame (MFCCs of a log-mel image), their mean and
    standard deviation over time, 2 C min(F, N_DCT);
  * ``pca``: the first ``n_components`` principal components of the flattened
    (pooled, referenced) image.

``stats`` alone is the summary of Piczak 2015 ("ESC: Dataset for Environmental
Sound Classification"); ``pool6+peak+stats`` is what the script computes.
:data:`FRONTENDS` is the fixed set the SVM chooses from by its inner, group-aware
cross-validation (:class:`spectro.models.svm.SVMClassifier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.fft import dct
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import IncrementalPCA
from sklearn.utils.validation import check_is_fitted

from spectro.errors import SpectroError

__all__ = ["FEATURES", "TRANSFORMS", "FRONTENDS", "N_DCT", "PERCENTILES", "Frontend", "parse_frontend",
           "SpectrogramFeatures", "front", "summarise"]

#: The summary parts a front-end combines with "+", e.g. ``"stats+delta"``.
FEATURES = ("stats", "pct", "delta", "range", "dct", "pca")
#: The image transforms before the summary (``poolN`` takes a number).
TRANSFORMS = ("pool", "peak", "cmn")
#: Percentiles over time of the ``pct`` part.
PERCENTILES = (10.0, 50.0, 90.0)
#: DCT coefficients (over frequency, per frame) kept by the ``dct`` part: on a
#: log-mel image these are MFCCs (Davis & Mermelstein 1980); librosa keeps 20.
N_DCT = 20

#: The front-ends the SVM chooses among (its ``frontend="auto"``), each with an ONNX converter:
#: the store's frames as they are; the script's (64 ms frames, peak-referenced, mean and std);
#: the same with statistics beyond mean and std; and per-band-normalised versions of both.
FRONTENDS = (
    "stats",
    "pool6+peak+stats",
    "pool6+peak+stats+delta+range",
    "pool6+cmn+stats+delta+range",
    "pool25+peak+stats+range",
)


class Frontend(tuple):
    """A parsed front-end spec: ``(pool, peak, cmn, parts)``; ``str()`` gives the canonical spec."""

    __slots__ = ()

    @property
    def pool(self) -> int:
        return self[0]

    @property
    def peak(self) -> bool:
        return self[1]

    @property
    def cmn(self) -> bool:
        return self[2]

    @property
    def parts(self) -> tuple[str, ...]:
        return self[3]

    def __str__(self) -> str:
        tokens = ([f"pool{self.pool}"] if self.pool > 1 else []) + (["peak"] if self.peak else []) + \
            (["cmn"] if self.cmn else [])
        return "+".join(tokens + list(self.parts))


def parse_frontend(spec: str) -> Frontend:
    """``"pool6+peak+stats"`` -> Frontend; anything else is one line naming what is valid."""
    tokens = str(spec).split("+")
    pool, peak, cmn, parts = 1, False, False, []
    bad = []
    for tok in tokens:
        if tok.startswith("pool") and tok[4:].isdigit() and int(tok[4:]) >= 1:
            pool = int(tok[4:])
        elif tok == "peak":
            peak = True
        elif tok == "cmn":
            cmn = True
        elif tok in FEATURES and tok not in parts:
            parts.append(tok)
        else:
            bad.append(tok)
    if bad or not parts:
        raise SpectroError(f"unknown SVM front-end {spec!r}: optional poolN, peak, cmn, then one or more of "
                           f"{', '.join(FEATURES)} joined by '+' (e.g. 'pool6+peak+stats'), or 'auto'")
    return Frontend((pool, peak, cmn, tuple(p for p in FEATURES if p in parts)))


def _rows(X: Any, index: slice) -> np.ndarray:
    rows = X[index]
    if hasattr(rows, "detach"):  # a torch tensor
        rows = rows.detach().cpu().numpy()
    return np.array(rows, dtype=np.float64)


def front(x: np.ndarray, fe: Frontend) -> np.ndarray:
    """The front-end's image transforms: x [shape=(n, C, F, T)] -> [shape=(n, C, F, T')], float64."""
    if fe.pool > 1:
        p = min(fe.pool, x.shape[-1])
        t = (x.shape[-1] // p) * p
        x = x[..., :t].reshape(*x.shape[:-1], t // p, p).mean(axis=-1)
    if fe.peak:
        x = x - x.max(axis=(-2, -1), keepdims=True)
    if fe.cmn:
        x = x - x.mean(axis=-1, keepdims=True)
    return x


def summarise(x: np.ndarray, parts: Sequence[str], *, pca: Any = None, centred: bool = False) -> np.ndarray:
    """Feature vectors of (transformed) images: x [shape=(n, C, F, T)] -> [shape=(n, D)].

    ``parts`` as in the module notes, concatenated in the order given;
    ``pca`` a fitted PCA, needed for the ``pca`` part only; ``centred``: every
    band's mean over time is zero (``cmn``), so ``stats`` and ``dct`` give their stds only.
    """
    n = len(x)
    out = []
    for part in parts:
        if part == "stats":
            out += ([] if centred else [x.mean(axis=-1)]) + [x.std(axis=-1)]  # (n, C, F) each
        elif part == "pct":
            out += list(np.percentile(x, PERCENTILES, axis=-1))  # P x (n, C, F)
        elif part == "delta":
            d = np.diff(x, axis=-1) if x.shape[-1] > 1 else np.zeros_like(x)  # (n, C, F, T-1)
            out += [np.abs(d).mean(axis=-1), d.std(axis=-1)]
        elif part == "range":
            out += [x.max(axis=-1), x.min(axis=-1)]
        elif part == "dct":
            c = dct(x, type=2, norm="ortho", axis=-2)[:, :, :N_DCT]  # (n, C, K, T)
            out += ([] if centred else [c.mean(axis=-1)]) + [c.std(axis=-1)]
        elif part == "pca":
            out.append(pca.transform(x.reshape(n, -1)))  # (n, k)
    return np.concatenate([o.reshape(n, -1) for o in out], axis=1)


class SpectrogramFeatures(TransformerMixin, BaseEstimator):
    """Fixed-length features of images [shape=(N, C, F, T)] -> [shape=(N, D)] through one front-end.

    Parameters
    ----------
    features : str
        A front-end spec (see the module notes), e.g. ``"stats"`` (the store's
        frames, per-band mean and std) or ``"pool6+peak+stats+delta"``.
    n_components : int
        PCA size (clipped to the number of examples and pixels).
    chunk_size : int
        Images read and converted to float64 at a time: a float16 memmap is
        never copied whole.
    """

    def __init__(self, features: str = "stats", n_components: int = 32, chunk_size: int = 256):
        self.features = features
        self.n_components = n_components
        self.chunk_size = chunk_size

    @property
    def frontend(self) -> Frontend:
        return parse_frontend(self.features)

    @property
    def parts(self) -> list[str]:
        """The summary parts of ``features``, in the order of :data:`FEATURES`."""
        return list(self.frontend.parts)

    def fit(self, X: Any, y: Any = None) -> SpectrogramFeatures:
        fe = self.frontend
        if getattr(X, "ndim", None) != 4:
            raise SpectroError(f"expected images shaped (N, C, F, T), got shape {tuple(np.shape(X))}")
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        if "pca" in fe.parts:
            shape = front(np.zeros((1, *self.image_shape_)), fe).shape[1:]
            k = max(1, min(self.n_components, len(X), int(np.prod(shape))))
            self.pca_ = IncrementalPCA(n_components=k)
            # Each partial_fit needs at least k rows: the last short chunk joins the one before.
            step = max(self.chunk_size, k)
            starts = list(range(0, len(X), step))
            if len(starts) > 1 and len(X) - starts[-1] < k:
                starts.pop()
            for start, stop in zip(starts, [*starts[1:], len(X)]):
                chunk = front(_rows(X, slice(start, stop)), fe)
                self.pca_.partial_fit(chunk.reshape(len(chunk), -1))  # (n, C*F*T')
            # skops reloads arrays C-ordered; a strided components_ would make transform
            # take another BLAS path after reloading and differ in the last bit.
            self.pca_.components_ = np.ascontiguousarray(self.pca_.components_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "image_shape_")
        if getattr(X, "ndim", None) != 4 or tuple(X.shape[1:]) != self.image_shape_:
            raise SpectroError(f"images shaped {tuple(np.shape(X))[1:]}, fitted on {self.image_shape_}")
        fe = self.frontend
        chunks = [summarise(front(_rows(X, slice(s, s + self.chunk_size)), fe), fe.parts,
                            pca=getattr(self, "pca_", None), centred=fe.cmn)
                  for s in range(0, len(X), self.chunk_size)]
        return np.concatenate(chunks)
