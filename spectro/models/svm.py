"""The SVM baseline: summary features of the same images, scaled, into an RBF SVC.

Pipeline: :class:`SpectrogramFeatures` (per-frequency mean and standard
deviation over time, optionally PCA of the flattened image) ->
``StandardScaler`` -> an RBF ``SVC`` with Platt-scaled probabilities, with C
and gamma chosen by a seeded, stratified ``GridSearchCV`` on the training data.

Probabilities: scikit-learn 1.9 deprecated ``SVC(probability=True)`` (removed
in 1.11) for ``CalibratedClassifierCV(SVC(), ensemble=False)``, which is what
this uses: the same Platt sigmoid (Platt 1999) fitted on out-of-fold decision
values, then applied to the SVC refitted on all the training data.

Saved with skops (``model.skops``), never pickle; loading checks every type
in the file against :data:`TRUSTED_TYPES` before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import IncrementalPCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from spectro.errors import SpectroError
from spectro.models.base import Classifier, as_images, read_manifest, read_rows, write_manifest
from spectro.models.registry import register_model

__all__ = ["FEATURES", "TRUSTED_TYPES", "SpectrogramFeatures", "SVMClassifier"]

FEATURES = ("stats", "pca", "stats+pca")
WEIGHTS_FILE = "model.skops"

#: Every type spectro's SVM pipeline is made of; a saved file holding any other
#: type that skops does not trust by itself is refused before it is loaded.
TRUSTED_TYPES = frozenset({
    "spectro.models.svm.SpectrogramFeatures",
    "sklearn.decomposition._incremental_pca.IncrementalPCA",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.StratifiedKFold",
})


class SpectrogramFeatures(TransformerMixin, BaseEstimator):
    """Fixed-length features of images [shape=(N, C, F, T)] -> [shape=(N, D)].

    Parameters
    ----------
    features : {"stats", "pca", "stats+pca"}
        ``stats``: mean and standard deviation over time of every frequency
        bin, D = 2 C F (frame statistics summarised over time, as in the
        baselines of Piczak 2015, "ESC: Dataset for Environmental Sound
        Classification"); ``pca``: the first ``n_components``
        principal components of the flattened image; ``stats+pca``: both.
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

    def fit(self, X: Any, y: Any = None) -> SpectrogramFeatures:
        if self.features not in FEATURES:
            raise SpectroError(f"unknown features {self.features!r}; valid: {', '.join(FEATURES)}")
        X = as_images(X)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        if "pca" in self.features:
            k = max(1, min(self.n_components, len(X), int(np.prod(self.image_shape_))))
            self.pca_ = IncrementalPCA(n_components=k)
            # Each partial_fit needs at least k rows: the last short chunk joins the one before.
            step = max(self.chunk_size, k)
            starts = list(range(0, len(X), step))
            if len(starts) > 1 and len(X) - starts[-1] < k:
                starts.pop()
            for start, stop in zip(starts, [*starts[1:], len(X)]):
                chunk = read_rows(X, slice(start, stop), np.float64)
                self.pca_.partial_fit(chunk.reshape(len(chunk), -1))  # (n, C*F*T)
            # skops reloads arrays C-ordered; a strided components_ would make transform
            # take another BLAS path after reloading and differ in the last bit.
            self.pca_.components_ = np.ascontiguousarray(self.pca_.components_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "image_shape_")
        X = as_images(X)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise SpectroError(f"images shaped {tuple(X.shape[1:])}, fitted on {self.image_shape_}")
        chunks = [self._summarise(read_rows(X, slice(s, s + self.chunk_size), np.float64))
                  for s in range(0, len(X), self.chunk_size)]
        return np.concatenate(chunks)

    def _summarise(self, x: np.ndarray) -> np.ndarray:
        """(n, C, F, T) float64 -> (n, D)."""
        n = len(x)
        parts = []
        if "stats" in self.features:
            parts += [x.mean(axis=-1).reshape(n, -1), x.std(axis=-1).reshape(n, -1)]  # (n, C*F)
        if "pca" in self.features:
            parts.append(self.pca_.transform(x.reshape(n, -1)))  # (n, k)
        return np.concatenate(parts, axis=1)


@register_model("svm", family="svm", kind="svm")
class SVMClassifier(Classifier, BaseEstimator):
    """RBF SVM on spectrogram summary features, tuned by stratified grid search.

    Parameters
    ----------
    features, n_components, chunk_size
        See :class:`SpectrogramFeatures`.
    C_grid : sequence of float
        Values tried for the SVC's C.
    gamma_factors : sequence of float
        Values tried for gamma, as multiples of 1 / D for D features: on
        standardised features that is scikit-learn's ``gamma="scale"``, so the
        grid stays centred whatever D the ``features`` option gives.
    cv : int
        Stratified folds of the grid search and of the probability
        calibration (fewer if a class is smaller).
    scoring : str
        scikit-learn scorer the grid search maximises.
    seed : int
        Seeds the folds of the search and of the calibration: fits repeat exactly.
    n_jobs : int or None
        Parallel grid-search fits.
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
    pipeline_ : sklearn.pipeline.Pipeline
        features -> scale -> svc (the calibrated SVC), fitted on all the training data.
    best_params_ : dict
        The chosen C and gamma; ``cv_score_`` their mean CV score.
    val_score_ : float or None
        Accuracy on X_val when given (reported only, never used to choose).
    """

    kind = "svm"

    def __init__(
        self, *, features: str = "stats", n_components: int = 32,
        C_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
        gamma_factors: Sequence[float] = (0.1, 1.0, 10.0),
        cv: int = 3, scoring: str = "accuracy", seed: int = 0, chunk_size: int = 256,
        n_jobs: int | None = None, classes: Sequence[Any] | None = None,
    ) -> None:
        self.features = features
        self.n_components = n_components
        self.C_grid = C_grid
        self.gamma_factors = gamma_factors
        self.cv = cv
        self.scoring = scoring
        self.seed = seed
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.classes = classes

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None) -> SVMClassifier:
        X, classes, y_idx = self._fit_inputs(X, y)
        counts = np.bincount(y_idx, minlength=len(classes))
        if (counts > 0).sum() < 2 or counts[counts > 0].min() < 2:
            raise SpectroError("the SVM needs two or more classes with two or more examples each")
        features = SpectrogramFeatures(self.features, self.n_components, self.chunk_size).fit(X)
        Z = features.transform(X)  # (N, D): computed once, shared by every grid point
        # The features are label-free and fixed, so the search runs on Z, not on the images.
        folds = StratifiedKFold(min(self.cv, int(counts[counts > 0].min())), shuffle=True,
                                random_state=self.seed)
        gammas = [g / Z.shape[1] for g in self.gamma_factors]
        search = GridSearchCV(
            Pipeline([("scale", StandardScaler()), ("svc", SVC(kernel="rbf"))]),
            {"svc__C": list(self.C_grid), "svc__gamma": gammas},
            cv=folds, scoring=self.scoring, n_jobs=self.n_jobs, refit=False,
        )
        search.fit(Z, y_idx)
        best = search.best_params_
        self.best_params_ = {"C": best["svc__C"], "gamma": best["svc__gamma"]}
        self.cv_score_ = float(search.best_score_)
        scale = StandardScaler().fit(Z)
        # Calibration only after the search: it costs a CV per fit and leaves the
        # decision function, hence the accuracy the search compares, unchanged.
        svc = CalibratedClassifierCV(SVC(kernel="rbf", **self.best_params_), method="sigmoid",
                                     cv=folds, ensemble=False)
        svc.fit(scale.transform(Z), y_idx)
        self.pipeline_ = Pipeline([("features", features), ("scale", scale), ("svc", svc)])
        self.classes_, self.in_channels_ = classes, int(X.shape[1])
        self.val_score_ = None
        if X_val is not None and y_val is not None:
            val_idx = self._encode(y_val, self.classes_)
            self.val_score_ = float(np.mean(self.predict(X_val) == self.classes_[val_idx]))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = as_images(X, self.in_channels_)
        proba = np.zeros((len(X), len(self.classes_)))
        # Columns of classes absent from training stay at probability 0.
        proba[:, self.pipeline_["svc"].classes_] = self.pipeline_.predict_proba(X)
        return proba

    def save(self, directory: str | Path) -> Path:
        directory = self._save_dir(directory)
        skops.io.dump(self.pipeline_, directory / WEIGHTS_FILE)
        options = {k: list(v) if isinstance(v, tuple) else v
                   for k, v in self.get_params().items() if k != "classes"}
        write_manifest(directory, {
            "kind": self.kind, "name": "svm", "num_classes": len(self.classes_),
            "in_channels": self.in_channels_, "options": options,
            "classes": self.classes_.tolist(), "best_params": self.best_params_,
            "cv_score": self.cv_score_, "val_score": self.val_score_,
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> SVMClassifier:
        manifest = read_manifest(directory, kind=cls.kind)
        path = Path(directory) / WEIGHTS_FILE
        try:
            untrusted = skops.io.get_untrusted_types(file=path)
        except Exception as exc:  # noqa: BLE001 - missing, truncated or not a skops file
            raise SpectroError(f"cannot read {path}: {exc}") from exc
        refused = sorted(set(untrusted) - TRUSTED_TYPES)
        if refused:
            raise SpectroError(f"refusing to load {path}: it holds types outside spectro's "
                               f"allow-list: {', '.join(refused)}")
        pipeline = skops.io.load(path, trusted=untrusted)
        if not isinstance(pipeline, Pipeline):
            raise SpectroError(f"{path} does not hold a scikit-learn Pipeline")
        clf = cls._from_manifest(directory, **manifest["options"], classes=manifest["classes"])
        clf.pipeline_ = pipeline
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.best_params_ = manifest.get("best_params")
        clf.cv_score_, clf.val_score_ = manifest.get("cv_score"), manifest.get("val_score")
        return clf
