"""The SVM baseline: summary features of the same images, scaled, into an RBF SVC.

Pipeline: :class:`~spectro.dataset.summaries.SpectrogramFeatures` (a front-end:
optional time pooling, peak referencing and per-band normalisation of the image,
then per-band summaries over time; see :mod:`spectro.dataset.summaries`) ->
``StandardScaler`` -> an RBF ``SVC`` with calibrated probabilities. The front-end
(with ``frontend="auto"``: one of :data:`FRONTENDS`), C and gamma are chosen by a
seeded, group-aware inner cross-validation on the training data: first the
front-end, each scored by its best C at ``gamma="scale"``, then C and gamma by a
``GridSearchCV`` on the chosen one. When the training rows carry
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
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from spectro.config import NET_ONLY_FIELDS
from spectro.dataset.summaries import FEATURES, FRONTENDS, SpectrogramFeatures, parse_frontend, summarise
from spectro.errors import SpectroError
from spectro.models.base import (
    Classifier,
    FitCallback,
    OnnxGraph,
    as_images,
    read_manifest,
    write_manifest,
)
from spectro.models.svm_onnx import svm_to_onnx

__all__ = ["FEATURES", "FRONTENDS", "CALIBRATIONS", "TRUSTED_TYPES", "SpectrogramFeatures", "SVMClassifier",
           "inner_folds", "summarise"]

#: How the SVC's decision values become probabilities (see the module notes).
CALIBRATIONS = ("temperature", "sigmoid")
WEIGHTS_FILE = "model.skops"

#: Every type spectro's SVM pipeline is made of; a saved file holding any other
#: type that skops does not trust by itself is refused before it is loaded.
TRUSTED_TYPES = frozenset({
    "spectro.dataset.summaries.SpectrogramFeatures",
    "spectro.models.svm.SpectrogramFeatures",  # where runs saved before the move hold it
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
    frontend : str
        ``"auto"``: chosen among ``frontends`` by the inner cross-validation;
        or one front-end spec (:mod:`spectro.dataset.summaries`), e.g.
        ``"stats"`` or ``"pool6+peak+stats+delta"``. (``features``, its name
        before the choice existed, is taken by :meth:`create` and by saved runs.)
    frontends : sequence of str
        The candidates of ``"auto"`` (default :data:`FRONTENDS`).
    n_components, chunk_size
        See :class:`~spectro.dataset.summaries.SpectrogramFeatures`.
    C_grid : sequence of float
        Values tried for the SVC's C.
    gamma_factors : sequence of float
        Values tried for gamma, as multiples of 1 / D for D features: on
        standardised features that is scikit-learn's ``gamma="scale"``, so the
        grid stays centred whatever D the front-end gives.
    calibration : {"temperature", "sigmoid"}
        How decision values become probabilities (see the module notes):
        ``temperature`` keeps the SVC's prediction as the most probable class.
    cv : int
        Folds of the front-end choice, the grid search and the probability
        calibration: group-aware when ``fit`` is given groups, else stratified
        (fewer if a class or the number of groups is smaller; see :func:`inner_folds`).
    scoring : str
        scikit-learn scorer the choice and the grid search maximise.
    seed : int
        Seeds the inner folds: fits repeat exactly.
    n_jobs : int or None
        Parallel grid-search fits.
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
    pipeline_ : sklearn.pipeline.Pipeline
        features -> scale -> svc (the calibrated SVC), fitted on all the training data.
    frontend_ : str
        The front-end used (the chosen one under ``"auto"``).
    frontend_scores_ : dict
        Inner-CV score of each candidate front-end (its best C at gamma "scale").
    best_params_ : dict
        The chosen front-end, C and gamma; ``cv_score_`` their mean inner-CV score.
    val_score_ : float or None
        Accuracy on X_val when given (reported only, never used to choose).
    """

    kind = "svm"
    inner_selection = True
    ignores = NET_ONLY_FIELDS

    def __init__(
        self, *, frontend: str = "auto", frontends: Sequence[str] = FRONTENDS, n_components: int = 32,
        C_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
        gamma_factors: Sequence[float] = (0.1, 1.0, 10.0), calibration: str = "temperature",
        cv: int = 3, scoring: str = "accuracy", seed: int = 0, chunk_size: int = 256,
        n_jobs: int | None = None, classes: Sequence[Any] | None = None,
    ) -> None:
        self.frontend = frontend
        self.frontends = frontends
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
        """An SVM with these parameters; one the SVM does not take is one line naming it.

        ``features`` (the option's name before the front-end choice) is taken as ``frontend``.
        """
        if "features" in kwargs and "frontend" not in kwargs:
            kwargs = {("frontend" if k == "features" else k): v for k, v in kwargs.items()}
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
            callback.on_fit_start(f"the {self.kind} (fitted once; its front-end, C and gamma by a {self.cv}-fold "
                                  "inner search)")
        folds = inner_folds(y_idx, groups, n_splits=self.cv, seed=self.seed)
        candidates = self._candidates()
        self.frontend_scores_ = {}
        if len(candidates) > 1:
            # The front-end first, each at gamma "scale" with its best C: one small search per candidate.
            for spec in candidates:
                Z = SpectrogramFeatures(spec, self.n_components, self.chunk_size).fit(X).transform(X)
                search = GridSearchCV(
                    Pipeline([("scale", StandardScaler()), ("svc", SVC(kernel="rbf", gamma="scale"))]),
                    {"svc__C": list(self.C_grid)}, cv=folds, scoring=self.scoring, n_jobs=self.n_jobs, refit=False)
                self.frontend_scores_[spec] = float(search.fit(Z, y_idx).best_score_)
            # Ties go to the earlier (simpler) candidate.
            chosen = max(candidates, key=lambda c: (self.frontend_scores_[c], -candidates.index(c)))
        else:
            chosen = candidates[0]
        self.frontend_ = chosen
        features = SpectrogramFeatures(chosen, self.n_components, self.chunk_size).fit(X)
        Z = features.transform(X)  # (N, D): computed once, shared by every grid point
        # The features are label-free and fixed, so the search runs on Z, not on the images.
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
        self.best_params_["frontend"] = chosen
        svc.cv = len(folds)  # the fitted model needs no row indices: only their count is saved
        self.pipeline_ = Pipeline([("features", features), ("scale", scale), ("svc", svc)])
        self.classes_, self.in_channels_ = classes, int(X.shape[1])
        self.val_score_ = None
        if X_val is not None and y_val is not None:
            val_idx = self._encode(y_val, self.classes_)
            self.val_score_ = float(np.mean(self.predict(X_val) == self.classes_[val_idx]))
        self._report_single_fit(X, y_idx, started, callbacks)
        return self

    def _candidates(self) -> list[str]:
        """The front-ends to choose among, canonical and checked (a bad one is one line before any fit)."""
        specs = list(self.frontends) if self.frontend == "auto" else [self.frontend]
        if not specs:
            raise SpectroError("the SVM needs at least one front-end to choose from")
        return list(dict.fromkeys(str(parse_frontend(s)) for s in specs))

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
            "frontend_scores": getattr(self, "frontend_scores_", {}),
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
        """The front-end, C and gamma chosen, the support vectors, and the inner cross-validation's score."""
        self._check_fitted()
        svc = self.pipeline_["svc"].calibrated_classifiers_[0].estimator
        frontend = self.pipeline_["features"].features
        choice = f" (chosen of {len(self.frontend_scores_)})" if len(self.frontend_scores_ or {}) > 1 else ""
        return (f"front-end {frontend}{choice}, C {self.best_params_['C']:g}, gamma {self.best_params_['gamma']:.3g}, "
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
        # Runs saved before the calibration option existed were Platt-calibrated; before the front-end
        # choice, the option was ``features`` (one fixed front-end).
        options = {"calibration": "sigmoid", **manifest["options"]}
        if "features" in options:
            options["frontend"] = options.pop("features")
        clf = cls._from_manifest(directory, **options, classes=manifest["classes"])
        clf.pipeline_ = pipeline
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.best_params_ = manifest.get("best_params")
        clf.frontend_ = pipeline["features"].features
        clf.frontend_scores_ = manifest.get("frontend_scores") or {}
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
