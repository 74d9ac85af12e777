"""The practitioner's script, as a model: ``spectro compare --models ...,reference``.

What someone writes in 30 lines when asked for an audio classifier, plainly:
librosa log-mels of the raw files (64 bands, n_fft 2048, hop 512, at the
files' own rate, every clip padded or cut to the longest one, at most 10 s,
``power_to_db(ref=np.max)``), per-band mean and standard deviation over time,
``StandardScaler``, an RBF ``SVC`` (``gamma="scale"``) with C in {0.1, 1, 10,
100} chosen by a 3-fold ``StratifiedGroupKFold`` grid search on the training
rows (fewer folds with fewer groups). It is the yardstick of every comparison:
how far spectro's defaults are from the naive approach on the user's own data.

It reads the raw files, not the store's images: :func:`store_logmels` finds
them from the store's ``index.csv`` (path, start and end seconds of every row)
and ``config.json`` (the source root); a file that is one row is read whole
(the store's crop of it is spectro's choice, not the script's), a file cut
into windows is read window by window. :class:`ReferenceClassifier` is the
second half of the script behind the one classifier interface; its "images"
are those log-mels [shape=(N, 1, 64, T)]. The script only predicts labels, so
its probabilities are the one-hot of its prediction.
benchmarks/bench_accuracy.py's ``script-svc`` runs this same code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import skops.io
import soundfile as sf
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from spectro.errors import SpectroError
from spectro.models.base import Classifier, OnnxGraph, as_images, read_manifest, write_manifest

__all__ = ["N_FFT", "HOP", "N_MELS", "MAX_SECONDS", "script_logmels", "store_logmels", "ReferenceClassifier"]

N_FFT, HOP, N_MELS = 2048, 512, 64
MAX_SECONDS = 10.0
WEIGHTS_FILE = "model.skops"
_TRUSTED = frozenset({"sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
                      "sklearn.svm._classes.SVC"})


def script_logmels(paths: Sequence[str], starts: Sequence[float] | None = None,
                   ends: Sequence[float] | None = None) -> np.ndarray:
    """The script's log-mels of the files (or of their [start, end) seconds) [shape=(N, 64, T)], float32."""
    infos = [sf.info(p) for p in paths]
    rate = sorted({i.samplerate for i in infos})[0]
    n = len(paths)
    starts = [0.0] * n if starts is None else [float(s) for s in starts]
    ends = [np.inf] * n if ends is None else [float(e) for e in ends]
    # A row that is a whole file (from 0 to its end or past it) is read whole, as the script reads files.
    whole = [s == 0.0 and e >= i.duration for i, s, e in zip(infos, starts, ends)]
    spans = [i.duration if w else min(e, i.duration) - s for i, s, e, w in zip(infos, starts, ends, whole)]
    size = int(round(min(MAX_SECONDS, max(spans)) * rate))
    out = []
    for p, start, span, w in zip(paths, starts, spans, whole):
        y, _ = librosa.load(p, sr=rate) if w else librosa.load(p, sr=rate, offset=start, duration=span)
        y = librosa.util.fix_length(y, size=size)
        m = librosa.feature.melspectrogram(y=y, sr=rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
        out.append(librosa.power_to_db(m, ref=np.max))
    return np.stack(out).astype(np.float32)


def store_logmels(store: Any) -> np.ndarray:
    """The script's log-mels of every row of a store, from its raw files [shape=(N, 1, 64, T)].

    Raises SpectroError in one line when the raw files are gone.
    """
    base = (store.meta.get("source") or {}).get("path") or ""
    base = base if os.path.isdir(base) else os.path.dirname(base)
    paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in store.paths]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise SpectroError(f"the reference model reads the store's raw files, and {len(missing)} of {len(paths)} "
                           f"are gone (first: {missing[0]}); it cannot run without them")
    # A file that is one row is read whole, as the script reads files (not the store's crop of it); a file
    # cut into several rows (windows) is read segment by segment.
    _, index, counts = np.unique(np.asarray(store.paths, dtype=str), return_inverse=True, return_counts=True)
    several = counts[index] > 1
    starts = np.where(several, store.starts, 0.0)
    ends = np.where(several, store.ends, np.inf)
    return script_logmels(paths, starts, ends)[:, None]


class ReferenceClassifier(Classifier, BaseEstimator):
    """The script's classifier: per-band mean and std -> StandardScaler -> RBF SVC, C by a grouped search.

    Parameters
    ----------
    C_grid : sequence of float
    cv : int
        Folds of the grid search (``StratifiedGroupKFold`` with groups, else ``StratifiedKFold``).
    seed : int
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``.

    Attributes
    ----------
    classes_ : np.ndarray
    pipeline_ : sklearn.pipeline.Pipeline
        scaler -> SVC, refitted on every training row at the chosen C.
    best_params_ : dict
        ``{"C": ...}``; ``cv_score_`` its inner-CV accuracy.
    """

    kind = "reference"
    iterative = False

    def __init__(self, *, C_grid: Sequence[float] = (0.1, 1, 10, 100), cv: int = 3, seed: int = 0,
                 classes: Sequence[Any] | None = None) -> None:
        self.C_grid = C_grid
        self.cv = cv
        self.seed = seed
        self.classes = classes

    @classmethod
    def create(cls, name: str = "reference", **kwargs: Any) -> ReferenceClassifier:
        return cls(**kwargs)

    @classmethod
    def from_config(cls, config: Any, *, classes: Any = None) -> ReferenceClassifier:
        return cls(seed=config.seed, classes=classes)

    @staticmethod
    def summary(X: Any) -> np.ndarray:
        """Per-band mean and std over time of log-mels [shape=(N, 1, 64, T)] -> [shape=(N, 128)]."""
        X = np.asarray(X, dtype=np.float32)[:, 0]
        return np.concatenate([X.mean(axis=2), X.std(axis=2)], axis=1)

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, groups: Any = None) -> ReferenceClassifier:
        X, classes, y_idx = self._fit_inputs(as_images(X), y)
        feats = self.summary(X)
        n_groups = len(set(np.asarray(groups).tolist())) if groups is not None else 0
        if n_groups >= 2:
            cv = StratifiedGroupKFold(min(self.cv, n_groups), shuffle=True, random_state=self.seed)
        else:  # no groups, or one (a cross-engine split trains on one engine): folds of examples
            cv, groups = StratifiedKFold(self.cv, shuffle=True, random_state=self.seed), None
        search = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale")),
                              {"svc__C": list(self.C_grid)}, cv=cv)
        search.fit(feats, y_idx, groups=groups)
        self.pipeline_ = search.best_estimator_
        self.best_params_ = {"C": search.best_params_["svc__C"]}
        self.cv_score_ = float(search.best_score_)
        self.classes_, self.in_channels_ = classes, int(X.shape[1])
        return self

    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        self._check_fitted()
        pred = self.pipeline_.predict(self.summary(as_images(X, self.in_channels_)))
        proba = np.zeros((len(pred), len(self.classes_)))
        proba[np.arange(len(pred)), pred] = 1.0  # the script predicts labels only
        return proba

    def embed(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        self._check_fitted()
        return self.pipeline_[0].transform(self.summary(as_images(X, self.in_channels_)))

    def n_parameters(self) -> int:
        self._check_fitted()
        scale, svc = self.pipeline_[0], self.pipeline_[-1]
        return int(scale.mean_.size + scale.scale_.size + svc.support_vectors_.size + svc.dual_coef_.size
                   + svc.intercept_.size + 1)

    def describe_fit(self) -> str:
        self._check_fitted()
        return f"C {self.best_params_['C']:g}, inner-CV accuracy {self.cv_score_:.3f}"

    def save(self, directory: str | Path) -> Path:
        directory = self._save_dir(directory)
        skops.io.dump(self.pipeline_, directory / WEIGHTS_FILE)
        write_manifest(directory, {
            "kind": self.kind, "name": "reference", "num_classes": len(self.classes_),
            "in_channels": self.in_channels_, "options": {"C_grid": list(self.C_grid), "cv": self.cv},
            "classes": self.classes_.tolist(), "best_params": self.best_params_, "cv_score": self.cv_score_})
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> ReferenceClassifier:
        manifest = read_manifest(directory, kind=cls.kind)
        path = Path(directory) / WEIGHTS_FILE
        refused = sorted(set(skops.io.get_untrusted_types(file=path)) - _TRUSTED)
        if refused:
            raise SpectroError(f"refusing to load {path}: it holds types outside the allow-list: {', '.join(refused)}")
        clf = cls(**manifest["options"], classes=manifest["classes"])
        clf.pipeline_ = skops.io.load(path, trusted=sorted(_TRUSTED))
        if not isinstance(clf.pipeline_, Pipeline):
            raise SpectroError(f"{path} does not hold a scikit-learn Pipeline")
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.best_params_, clf.cv_score_ = manifest.get("best_params"), manifest.get("cv_score")
        return clf

    def export_onnx(self, path: str, *, image_shape: tuple[int, int, int], opset: int) -> OnnxGraph:
        raise SpectroError("the reference model is a yardstick for compare, not a model to export; "
                           "export the svm instead")
