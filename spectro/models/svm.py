"""The SVM baseline: summary features of the same images, scaled, into an RBF SVC.

Pipeline: :class:`SpectrogramFeatures` (per-frequency summaries over time:
mean and standard deviation, optionally percentiles, delta statistics,
MFCC-like DCT statistics, or PCA of the flattened image) -> ``StandardScaler``
-> an RBF ``SVC`` with calibrated probabilities, with C and gamma chosen by
a seeded ``GridSearchCV`` on the training data. When the training rows carry
groups (speakers, kits, sound sets), the search's folds and the calibration's
are ``StratifiedGroupKFold``: no group sits on both sides of an inner split,
so C and gamma are chosen for unseen groups, not for memorising seen ones.

Probabilities: scikit-learn 1.9 deprecated ``SVC(probability=True)`` (removed
in 1.11) for ``CalibratedClassifierCV(SVC(), ensemble=False)``, which is what
this uses, fitted on out-of-fold decision values and applied to the SVC
refitted on all the training data. The default ``calibration="temperature"``
(Guo et al. 2017, "On Calibration of Modern Neural Networks") is one softmax
over the SVC's one-vs-rest decision values, ``softmax(beta * d)``: it keeps
their ordering, so the most probable class is the SVC's own choice (most
one-vs-one votes; ties broken by summed confidence, as in its
``decision_function``). ``"sigmoid"`` (Platt 1999) calibrates each class on its
own and its argmax can differ from the SVC's: on the benchmarks' leave-
groups-out folds that cost 1 to 5 points of accuracy
(benchmarks/bench_accuracy.py).

Saved with skops (``model.skops``), never pickle; loading checks every type
in the file against :data:`TRUSTED_TYPES` before anything is built.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from scipy.fft import dct
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import IncrementalPCA
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from spectro.config import NET_ONLY_FIELDS
from spectro.errors import SpectroError
from spectro.models.base import (
    Classifier,
    FitCallback,
    OnnxGraph,
    as_images,
    read_manifest,
    read_rows,
    write_manifest,
)
from spectro.models.svm_onnx import svm_to_onnx

__all__ = ["FEATURES", "CALIBRATIONS", "TRUSTED_TYPES", "SpectrogramFeatures", "SVMClassifier", "inner_folds"]

#: The parts a ``features`` option combines with "+", e.g. ``"stats+delta"``.
FEATURES = ("stats", "pct", "delta", "dct", "pca")
#: How the SVC's decision values become probabilities (see the module notes).
CALIBRATIONS = ("temperature", "sigmoid")
#: Percentiles over time of the ``pct`` part.
PERCENTILES = (10.0, 50.0, 90.0)
#: DCT coefficients (over frequency, per frame) kept by the ``dct`` part: on a
#: log-mel image these are MFCCs (Davis & Mermelstein 1980); librosa keeps 20.
N_DCT = 20
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
    "sklearn.calibration._TemperatureScaling",
    "sklearn.model_selection._split.StratifiedKFold",
})


class SpectrogramFeatures(TransformerMixin, BaseEstimator):
    """Fixed-length features of images [shape=(N, C, F, T)] -> [shape=(N, D)].

    Parameters
    ----------
    features : str
        Parts joined by "+", each summarising every frequency bin (row) of
        every channel over time (frame statistics, as in the baselines of
        Piczak 2015, "ESC: Dataset for Environmental Sound Classification"):

        * ``stats``: mean and standard deviation, 2 C F values;
        * ``pct``: the 10th, 50th and 90th percentiles, 3 C F;
        * ``delta``: mean absolute value and standard deviation of the
          first difference along time (how fast each band changes), 2 C F;
        * ``dct``: the first ``N_DCT`` coefficients of an orthonormal DCT-II
          over frequency of each frame (MFCCs of a log-mel image), their
          mean and standard deviation over time, 2 C min(F, N_DCT);
        * ``pca``: the first ``n_components`` principal components of the
          flattened image.
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
    def parts(self) -> list[str]:
        """The parts of ``features``, in the order of :data:`FEATURES`."""
        parts = str(self.features).split("+")
        unknown = [p for p in parts if p not in FEATURES]
        if unknown or not parts or len(set(parts)) != len(parts):
            raise SpectroError(f"unknown features {self.features!r}: use one or more of "
                               f"{', '.join(FEATURES)} joined by '+' (e.g. 'stats+delta')")
        return [p for p in FEATURES if p in parts]

    def fit(self, X: Any, y: Any = None) -> SpectrogramFeatures:
        parts = self.parts
        X = as_images(X)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        if "pca" in parts:
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
        return summarise(x, self.parts, pca=getattr(self, "pca_", None))


def _non_finite_arrays(obj: Any, where: str = "pipeline", depth: int = 0) -> list[str]:
    """Names of the fitted float arrays (support vectors, scaler statistics, ...) holding a NaN or Inf."""
    if isinstance(obj, np.ndarray):
        return [where] if obj.dtype.kind == "f" and not np.isfinite(obj).all() else []
    if depth > 6:
        return []
    if isinstance(obj, (list, tuple)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(obj)]
    elif isinstance(obj, BaseEstimator) or hasattr(obj, "__dict__") and type(obj).__module__.startswith("sklearn"):
        items = [(f"{where}.{k}", v) for k, v in vars(obj).items()]
    else:
        return []
    return [name for key, value in items for name in _non_finite_arrays(value, key, depth + 1)]


def summarise(x: np.ndarray, parts: Sequence[str], *, pca: Any = None) -> np.ndarray:
    """Feature vectors of images: x [shape=(n, C, F, T)] -> [shape=(n, D)].

    ``parts`` as in :class:`SpectrogramFeatures`, concatenated in the order given;
    ``pca`` a fitted PCA, needed for the ``pca`` part only.
    """
    n = len(x)
    out = []
    for part in parts:
        if part == "stats":
            out += [x.mean(axis=-1), x.std(axis=-1)]  # (n, C, F) each
        elif part == "pct":
            q = np.percentile(x, PERCENTILES, axis=-1)  # (P, n, C, F)
            out += list(q)
        elif part == "delta":
            d = np.diff(x, axis=-1) if x.shape[-1] > 1 else np.zeros_like(x)  # (n, C, F, T-1)
            out += [np.abs(d).mean(axis=-1), d.std(axis=-1)]
        elif part == "dct":
            c = dct(x, type=2, norm="ortho", axis=-2)[:, :, :N_DCT]  # (n, C, K, T)
            out += [c.mean(axis=-1), c.std(axis=-1)]
        elif part == "pca":
            out.append(pca.transform(x.reshape(n, -1)))  # (n, k)
    return np.concatenate([o.reshape(n, -1) for o in out], axis=1)


def inner_folds(y: np.ndarray, groups: Any, *, n_splits: int, seed: int) -> Any:
    """The folds of the SVM's grid search and calibration.

    Parameters
    ----------
    y : np.ndarray [shape=(N,)]
        Class indices.
    groups : array-like [shape=(N,)] or None
        Group of each row (speaker, kit, sound set). With two or more
        distinct groups that are not all singletons, the folds are a seeded
        ``StratifiedGroupKFold`` over at most ``n_splits`` folds (fewer when
        there are fewer groups): a group never sits on both sides.
        Otherwise (no groups, or one row per group), a seeded
        ``StratifiedKFold`` with at most as many folds as the smallest class.

    Returns
    -------
    list of (train_indices, test_indices)
        Materialised, so the search and the calibration use the same splits.
    """
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        if len(groups) != len(y):
            raise SpectroError(f"{len(y)} labels but {len(groups)} groups")
        n_groups = len(set(groups.tolist()))
        if 2 <= n_groups < len(y):
            splitter = StratifiedGroupKFold(min(n_splits, n_groups), shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y, groups))
    splitter = StratifiedKFold(max(2, min(n_splits, smallest)), shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


class SVMClassifier(Classifier, BaseEstimator):
    """RBF SVM on spectrogram summary features, tuned by a (group-aware) grid search.

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
    calibration : {"temperature", "sigmoid"}
        How decision values become probabilities (see the module notes):
        ``temperature`` keeps the SVC's prediction as the most probable class.
    cv : int
        Folds of the grid search and of the probability calibration: group-
        aware when ``fit`` is given groups, else stratified (fewer if a class
        or the number of groups is smaller; see :func:`inner_folds`).
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
    inner_selection = True
    ignores = NET_ONLY_FIELDS

    def __init__(
        self, *, features: str = "stats", n_components: int = 32,
        C_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
        gamma_factors: Sequence[float] = (0.1, 1.0, 10.0), calibration: str = "temperature",
        cv: int = 3, scoring: str = "accuracy", seed: int = 0, chunk_size: int = 256,
        n_jobs: int | None = None, classes: Sequence[Any] | None = None,
    ) -> None:
        self.features = features
        self.n_components = n_components
        self.C_grid = C_grid
        self.gamma_factors = gamma_factors
        self.calibration = calibration
        self.cv = cv
        self.scoring = scoring
        self.seed = seed
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.classes = classes

    @classmethod
    def create(cls, name: str = "svm", **kwargs: Any) -> SVMClassifier:
        """An SVM with these parameters; one the SVM does not take is one line naming it."""
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as exc:
            raise SpectroError(f"svm: {exc}") from None
        return cls(**kwargs)

    @classmethod
    def from_config(cls, config: Any, *, classes: Any = None) -> SVMClassifier:
        """The SVM of a TrainConfig: its seed and model options (the networks' settings are ignored)."""
        return cls.create(seed=config.seed, classes=classes, **config.model_options)

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, groups: Any = None,
            callbacks: Sequence[FitCallback] = (), resume: dict | None = None,
            progress: bool = False) -> SVMClassifier:
        """Fit on images X [shape=(N, C, F, T)] and labels y [shape=(N,)].

        ``groups`` [shape=(N,)], optional: the group of each row (speaker,
        kit, sound set); the inner folds then keep every group on one side
        (see :func:`inner_folds`). X_val / y_val are scored, never used to choose.
        ``callbacks`` hear of the fit as one epoch; fitted once, it has nothing
        to ``resume`` or show progress of.
        """
        started = time.perf_counter()
        if self.calibration not in CALIBRATIONS:
            raise SpectroError(f"unknown calibration {self.calibration!r}: use one of {', '.join(CALIBRATIONS)}")
        X, classes, y_idx = self._fit_inputs(X, y)
        counts = np.bincount(y_idx, minlength=len(classes))
        if (counts > 0).sum() < 2 or counts[counts > 0].min() < 2:
            raise SpectroError(too_few_examples(classes, counts))
        for callback in callbacks:
            callback.on_fit_start(f"the {self.kind} (fitted once; its C and gamma by a {self.cv}-fold inner search)")
        features = SpectrogramFeatures(self.features, self.n_components, self.chunk_size).fit(X)
        Z = features.transform(X)  # (N, D): computed once, shared by every grid point
        # The features are label-free and fixed, so the search runs on Z, not on the images.
        folds = inner_folds(y_idx, groups, n_splits=self.cv, seed=self.seed)
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
        svc = CalibratedClassifierCV(SVC(kernel="rbf", **self.best_params_), method=self.calibration,
                                     cv=folds, ensemble=False)
        svc.fit(scale.transform(Z), y_idx)
        svc.cv = len(folds)  # the fitted model needs no row indices: only their count is saved
        self.pipeline_ = Pipeline([("features", features), ("scale", scale), ("svc", svc)])
        self.classes_, self.in_channels_ = classes, int(X.shape[1])
        self.val_score_ = None
        if X_val is not None and y_val is not None:
            val_idx = self._encode(y_val, self.classes_)
            self.val_score_ = float(np.mean(self.predict(X_val) == self.classes_[val_idx]))
        self._report_single_fit(X, y_idx, started, callbacks)
        return self

    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        # batch_size is the networks' business: the pipeline reads X in chunks of chunk_size.
        self._check_fitted()
        X = as_images(X, self.in_channels_)
        proba = np.zeros((len(X), len(self.classes_)))
        # Columns of classes absent from training stay at probability 0.
        proba[:, self.pipeline_["svc"].classes_] = self.pipeline_.predict_proba(X)
        return proba


    def embed(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The standardised summary features the RBF kernel compares [shape=(N, D)]."""
        self._check_fitted()
        pipe = self.pipeline_
        return pipe["scale"].transform(pipe["features"].transform(X))
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

    def n_parameters(self) -> int:
        """Numbers the fitted pipeline stores to predict.

        The SVC's support vectors (n_SV x D), dual coefficients ((C - 1) x
        n_SV), intercepts (one per pair of classes) and gamma; the scaler's
        mean and scale (2 D); the calibration's parameters (temperature: one;
        Platt: two per class); with PCA, its components and mean.
        """
        self._check_fitted()
        pipe = self.pipeline_
        n = pipe["scale"].mean_.size + pipe["scale"].scale_.size
        pca = getattr(pipe["features"], "pca_", None)
        if pca is not None:
            n += pca.components_.size + pca.mean_.size
        fitted = pipe["svc"].calibrated_classifiers_[0]  # ensemble=False: one SVC, one set of calibrators
        svc = fitted.estimator
        n += svc.support_vectors_.size + svc.dual_coef_.size + svc.intercept_.size + 1  # + gamma
        for cal in fitted.calibrators:
            n += sum(np.size(getattr(cal, a)) for a in ("beta_", "a_", "b_") if hasattr(cal, a))
        return int(n)

    def describe_fit(self) -> str:
        """The chosen C and gamma, the support vectors, and the inner cross-validation's score."""
        self._check_fitted()
        svc = self.pipeline_["svc"].calibrated_classifiers_[0].estimator
        return (f"C {self.best_params_['C']:g}, gamma {self.best_params_['gamma']:.3g}, "
                f"{svc.support_vectors_.shape[0]} support vectors of {svc.support_vectors_.shape[1]} features, "
                f"inner-CV {self.scoring} {self.cv_score_:.3f}")

    def export_onnx(self, path: str, *, image_shape: tuple[int, int, int], opset: int) -> OnnxGraph:
        """The pipeline through skl2onnx (see :mod:`spectro.models.svm_onnx`), checked against scikit-learn."""
        self._check_fitted()
        with open(path, "wb") as f:
            f.write(svm_to_onnx(self, opset=opset).SerializeToString())
        # The pipeline checks the image shape it was fitted on: the time axis stays fixed.
        return OnnxGraph(["probabilities"], lambda x: [self.predict_proba(x)], [int(image_shape[2])], "scikit-learn")

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> SVMClassifier:
        # ``device`` is where a network runs; the SVM runs on the CPU.
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
        bad = _non_finite_arrays(pipeline)
        if bad:
            raise SpectroError(f"{path} holds non-finite values (NaN or Inf) in {bad[0]}: refusing to use it; "
                               "the file is damaged, train again")
        # Runs saved before the calibration option existed were Platt-calibrated.
        options = {"calibration": "sigmoid", **manifest["options"]}
        clf = cls._from_manifest(directory, **options, classes=manifest["classes"])
        clf.pipeline_ = pipeline
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.best_params_ = manifest.get("best_params")
        clf.cv_score_, clf.val_score_ = manifest.get("cv_score"), manifest.get("val_score")
        return clf


def too_few_examples(classes: Any, counts: np.ndarray) -> str:
    """Why the SVM cannot be fitted on ``counts`` examples per class: naming the classes that lack them.

    Its calibration and inner search split every class at least in two.
    """
    present = [(str(c), int(n)) for c, n in zip(classes, counts) if n > 0]
    if len(present) < 2:
        return (f"the SVM needs two or more classes with two or more examples each; the training rows hold "
                f"{'only ' + repr(present[0][0]) if present else 'no class'}")
    few = [f"{name!r} has {n} example" for name, n in present if n < 2]
    return (f"the SVM needs two or more examples of every class it trains on: {', '.join(few)} in the training "
            "rows; add examples of it, or leave it out of the store")
