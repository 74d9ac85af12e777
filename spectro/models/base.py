"""The one classifier interface that the networks and the SVM both satisfy.

``fit(X, y, *, X_val=None, y_val=None, groups=None, callbacks=(), resume=None) -> self``,
``predict_proba(X)``, ``predict(X)``, ``save(directory)``, ``load(directory)`` and ``classes_``.
X is any array-like of spectrogram images [shape=(N, C, F, T)], typically
the store's float16 ``np.memmap`` (or a normalised view of its rows): it is
read in slices, never whole.

``fit`` is the one way every kind trains, in a notebook as under ``spectro
train``: it reports each epoch to its callbacks (:class:`FitCallback`; a classifier
fitted once reports one row), continues exactly from a ``resume`` state,
and ends with a :class:`FitResult` in ``fit_result_`` (how it stopped,
:class:`Stop`). The interface also answers everything the rest of spectro
would otherwise ask of a model's kind: whether it chooses its own settings
on every non-test row (:attr:`inner_selection`), whether its fit shares the
work among torchrun's processes (:attr:`parallel`), which training settings
it ignores (:attr:`ignores`), how large it is
(:meth:`n_parameters`), what its fit found (:meth:`describe_fit`), whether
it keeps last weights besides its best (:meth:`load_last_weights`) and how
it becomes an ONNX graph (:meth:`export_onnx`). Which class serves a model
name is decided in one place, :func:`spectro.training.classifier.classifier_class`.

A saved classifier is a directory with ``model.json`` (what to rebuild: kind,
name, sizes, options, classes) next to its parameters, which never go
through pickle (see :mod:`spectro.models.weights` and :mod:`spectro.models.svm`).
The networks' classifier, which needs the training loop, is
:class:`spectro.training.classifier.NetClassifier`; this package never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from spectro.config import check_types
from spectro.errors import SpectroError
from spectro.metrics.scores import compute_metrics
from spectro.utils.files import read_json, write_text

__all__ = ["Classifier", "NotFittedError", "OnnxGraph", "Stop", "FitResult", "EpochEnd", "FitCallback", "MANIFEST",
           "ONNX_EXTRA", "as_images", "iter_batches", "read_rows",
           "encode_labels", "write_manifest", "read_manifest", "eval_mode"]

#: How to get what ONNX export needs (onnx, onnxruntime, onnxscript, skl2onnx).
ONNX_EXTRA = "pip install 'spectro[onnx]'"


@dataclass
class OnnxGraph:
    """What :meth:`Classifier.export_onnx` wrote, and how to check it.

    Attributes
    ----------
    outputs : list of str
        The graph's output names to compare (``probabilities`` last).
    reference : callable
        ``reference(x)`` -> the classifier's own values of ``outputs`` for a
        normalised float32 batch x [shape=(B, C, F, T)].
    widths : list of int
        Image widths (time frames) the graph accepts: the trained one first;
        more than one when the time axis is dynamic.
    against : str
        What ``reference`` runs on, in words ("PyTorch", "scikit-learn").
    """

    outputs: list[str]
    reference: Callable[[np.ndarray], list[np.ndarray]]
    widths: list[int]
    against: str

MANIFEST = "model.json"
FORMAT_VERSION = 1


class Stop(str, enum.Enum):
    """How a fit ended: the one set of stop states (``str`` values, as run.json and messages write them)."""

    DONE = "done"  #: every epoch trained (or the one fit of a classifier fitted once)
    EARLY_STOP = "early_stop"  #: no better validation score for ``early_stop`` epochs
    STOPPED = "stopped"  #: a callback asked to stop: resumable from ``resume_state``
    SIGNALLED = "signalled"  #: Ctrl-C or SIGTERM (a callback's ``stop_requested``): resumable likewise

    @property
    def resumable(self) -> bool:
        """Stopped before the end: a resume continues it."""
        return self in (Stop.STOPPED, Stop.SIGNALLED)


@dataclass
class FitResult:
    """Where a fit ended: ``epochs`` done and ``batch`` batches into the next, its best epoch."""

    stop: Stop
    epochs: int
    batch: int = 0
    best_epoch: int = 0


@dataclass
class EpochEnd:
    """What a fit reports to its callbacks after each epoch (once, for a classifier fitted once).

    Attributes
    ----------
    row : dict or None
        The epoch's metrics.csv row (None when a fit stops between epochs).
    improved : bool
        The best so far: ``classifier`` now holds the weights to keep.
    classifier : Classifier
        The classifier being fitted, savable as it stands.
    resume_state : callable or None
        Returns everything an exact resume needs (every rank of a parallel fit calls it; it
        raises ``Diverged`` when the weights stopped being finite); None: nothing to resume.
    """

    row: Optional[dict]
    improved: bool
    classifier: Any
    resume_state: Optional[Callable[[], dict]] = None


class FitCallback:
    """What a fit calls back; every method has a do-nothing default (a run recorder writes the run folder)."""

    def on_fit_start(self, what: str, *, epoch: int = 0, batch: int = 0, epochs: int = 1,
                     resumable: bool = False, precision: Optional[str] = None, data: Optional[str] = None) -> None:
        """The fit begins: ``what`` it trains (device, precision), where a resume starts, of how many
        epochs; ``resumable``: it can stop at a batch boundary (:meth:`stop_requested`) and resume;
        ``precision``: what it computes in, in words (a network's; run.json records it); ``data``:
        where its batches come from, and why (a network's)."""

    def on_epoch_end(self, end: EpochEnd) -> bool:
        """After each epoch; True stops the fit there, resumably."""
        return False

    def on_stop(self, end: EpochEnd) -> None:
        """The fit stopped inside an epoch (``end.row`` is None): the moment to keep ``end.resume_state()``."""

    def stop_requested(self) -> bool:
        """Polled between batches: True stops the fit at the next check (Ctrl-C, SIGTERM)."""
        return False


class NotFittedError(SpectroError, SklearnNotFittedError):
    """``predict`` (or save, size, export) before ``fit``: one line for a user, and scikit-learn's
    NotFittedError for its tools and estimator checks.

    Defined here rather than in :mod:`spectro.errors`, which the CLI imports at start-up
    and which therefore does not import scikit-learn.
    """


@dataclass
class _ManifestFields:
    """The typed fields of ``model.json`` (the others are each kind's own; unchecked here).

    ``Optional`` rather than ``X | None``: :func:`spectro.config.check_types` reads typing's Union.
    """

    kind: str
    name: str
    num_classes: int
    in_channels: int
    options: dict
    classes: list
    format: int = FORMAT_VERSION
    settings: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    best_params: Optional[dict] = None  # noqa: UP045
    cv_score: Optional[float] = None  # noqa: UP045
    val_score: Optional[float] = None  # noqa: UP045


class Classifier(ClassifierMixin, ABC):
    """Base of :class:`NetClassifier` and :class:`SVMClassifier`.

    A scikit-learn classifier (with ``BaseEstimator`` in each subclass):
    ``sklearn.base.is_classifier`` is True, ``score(X, y)`` is the accuracy,
    and ``clone``, ``cross_val_score`` and ``GridSearchCV`` take it. X is
    images [shape=(N, C, F, T)], not a 2-D table: scikit-learn's splitters
    index its first axis only, so a 4-D array works wherever they do.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
        Class labels; column j of :meth:`predict_proba` is ``classes_[j]``.
    """

    kind: ClassVar[str]
    #: True: it chooses its own settings by an inner, group-aware cross-validation, so the
    #: validation rows train too and its one fit draws no learning curve (the SVM). False: the
    #: validation rows choose its best epoch (the networks).
    inner_selection: ClassVar[bool] = False
    #: Its fit runs on every process under torchrun, each on a share of the batches (data-parallel).
    #: False: one process fits it; the others have nothing to do.
    parallel: ClassVar[bool] = False
    #: TrainConfig fields it accepts and ignores (a note says so when a user sets one).
    ignores: ClassVar[tuple[str, ...]] = ()
    classes_: np.ndarray

    @classmethod
    @abstractmethod
    def create(cls, name: str, **kwargs: Any) -> Classifier:
        """A new, unfitted classifier of the model ``name`` with these parameters.

        Raises SpectroError for a parameter it does not take.
        """

    @classmethod
    @abstractmethod
    def from_config(cls, config: Any, *, classes: Any = None) -> Classifier:
        """A new classifier with the settings of a :class:`~spectro.config.TrainConfig`."""

    @classmethod
    def check_config(cls, config: Any, *, num_classes: int, in_channels: int) -> None:
        """Raise SpectroError for settings of ``config`` it cannot train with (before any file is written)."""
        cls.from_config(config)

    @abstractmethod
    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, groups: Any = None,
            callbacks: Sequence[FitCallback] = (), resume: Optional[dict] = None,
            progress: bool = False) -> Classifier:
        """Train on images X [shape=(N, C, F, T)] and labels y [shape=(N,)]; return self.

        ``groups`` [shape=(N,)], optional: each row's group (speaker, kit, ...),
        for classifiers that choose settings by an inner cross-validation.
        ``callbacks`` hear of each epoch (:class:`FitCallback`); ``resume`` is
        an :attr:`EpochEnd.resume_state` to continue from; ``progress`` shows a
        progress bar. ``fit_result_`` then says how it ended.
        """

    @abstractmethod
    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities [shape=(N, len(classes_))], rows summing to 1.

        ``batch_size``: images per forward pass, for classifiers that batch
        (the networks; None: their training batch size); others ignore it.
        """

    def predict(self, X: Any) -> np.ndarray:
        """Labels [shape=(N,)]: the most probable class, so it always agrees with predict_proba."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the fitted classifier into ``directory`` (created if needed); return it."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path, device: str | None = None) -> Classifier:
        """Read a classifier written by :meth:`save`, without executing code from it.

        ``device``: where a network runs (others ignore it).
        """

    @abstractmethod
    def n_parameters(self) -> int:
        """How many numbers the fitted classifier stores to predict (its true size)."""

    def describe_fit(self) -> str:
        """One line on what fitting found (chosen settings, their inner-CV score); empty if nothing."""
        return ""

    @property
    def network(self) -> Any:
        """The ``nn.Module`` that computes the probabilities (networks only: Grad-CAM needs it); else None."""
        return None

    @abstractmethod
    def embed(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """What the classifier's last layer reads [shape=(N, D)] for images X: a network's pooled
        features, the SVM's standardised summary features."""

    def _report_single_fit(self, X: Any, y_idx: np.ndarray, started: float,
                           callbacks: Sequence[FitCallback]) -> None:
        """A classifier fitted once reports its fit as one epoch: training loss and accuracy, seconds."""
        seconds = time.perf_counter() - started
        m = compute_metrics(y_idx, self.predict_proba(X), list(self.classes_))
        row = {"epoch": 1, "lr": None, "train_loss": m["log_loss"], "train_accuracy": m["accuracy"],
               "val_loss": None, "val_accuracy": None,
               "val_macro_f1": None, "seconds": seconds, "samples_per_s": len(y_idx) / seconds}
        self.history_ = [row]
        self.fit_result_ = FitResult(Stop.DONE, epochs=1, best_epoch=1)
        for callback in callbacks:
            callback.on_epoch_end(EpochEnd(row, True, self))

    def to_device(self, device: str) -> Classifier:
        """Where the fitted classifier computes (a network's device); others stay where they are."""
        return self

    def load_last_weights(self, path: str) -> None:
        """Replace the best weights with the last ones of training checkpoint ``path`` (networks only)."""
        raise SpectroError(f"{type(self).__name__} is fitted once: it has no separate last weights")

    @abstractmethod
    def export_onnx(self, path: str, *, image_shape: tuple[int, int, int], opset: int) -> OnnxGraph:
        """Write the fitted classifier to ``path`` as an ONNX graph whose input ``image`` is the normalised
        image [shape=(batch, C, F, T)]; ``image_shape`` is (C, F, T) as trained."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    # -- what every fit, save and load begins with -----------------------------
    def _fit_inputs(self, X: Any, y: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        """Checked images, the classes (``self.classes`` or those of y) and y as class indices."""
        X = as_images(X)
        classes, y_idx = encode_labels(y, getattr(self, "classes", None))
        if len(y_idx) != len(X):
            raise SpectroError(f"{len(X)} images but {len(y_idx)} labels")
        return X, classes, y_idx

    @staticmethod
    def _encode(y: Any, classes: np.ndarray) -> np.ndarray:
        """Labels y as indices into ``classes`` (validation labels)."""
        return encode_labels(y, classes)[1]

    def _save_dir(self, directory: str | Path) -> Path:
        """The fitted check and the directory a save writes into (created)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    @classmethod
    def _from_manifest(cls, directory: str | Path, *args: Any, **params: Any) -> Classifier:
        """``cls(*args, **params)`` from a model.json; a hand-edited, unusable one is a SpectroError."""
        try:
            return cls(*args, **params)
        except (TypeError, SpectroError) as exc:
            raise SpectroError(f"{directory}/{MANIFEST}: bad settings ({exc})") from None


def as_images(X: Any, in_channels: int | None = None) -> Any:
    """Check that X is a batch of images (N, C, F, T) and return it without copying.

    numpy arrays (memmaps included), torch tensors and lazy views of rows
    (anything with ``shape``, ``ndim`` and slicing, such as
    :class:`spectro.dataset.feed.NormalisedRows`) pass through as they are;
    any other array-like is converted with ``np.asarray``.
    """
    lazy = all(hasattr(X, a) for a in ("shape", "ndim", "__getitem__", "__len__"))
    if not isinstance(X, (np.ndarray, torch.Tensor)) and not lazy:
        X = np.asarray(X)
    if X.ndim != 4 or min(X.shape) < 1:
        raise SpectroError(f"expected images shaped (N, C, F, T), got shape {tuple(X.shape)}")
    if in_channels is not None and X.shape[1] != in_channels:
        raise SpectroError(f"expected {in_channels} channel(s), got images shaped {tuple(X.shape)}")
    return X


def read_rows(X: Any, index: Any, dtype: type = np.float32) -> np.ndarray:
    """Rows ``X[index]`` (a slice or sorted indices) as a new array of ``dtype``."""
    rows = X[index]
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    return np.array(rows, dtype=dtype)  # a copy: a read-only memmap's rows become a writable array


def iter_batches(X: Any, batch_size: int, dtype: type = np.float32) -> Iterator[np.ndarray]:
    """Consecutive batches of X [shape=(<=batch_size, C, F, T)]: one slice in memory at a time."""
    for start in range(0, len(X), batch_size):
        yield read_rows(X, slice(start, start + batch_size), dtype)


def encode_labels(y: Any, classes: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to indices.

    Parameters
    ----------
    y : array-like [shape=(N,)]
        Labels of any hashable kind (ints, strings).
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``. Pass it
        when a training split may miss a class, so every model trained on the
        store has the same columns.

    Returns
    -------
    classes : np.ndarray [shape=(C,)]
    indices : np.ndarray [shape=(N,), dtype=int64]
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise SpectroError(f"labels must be one-dimensional, got shape {y.shape}")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    lookup = {label: i for i, label in enumerate(classes.tolist())}
    if len(lookup) != len(classes):
        raise SpectroError(f"classes must be distinct, got {classes.tolist()}")
    unknown = sorted({label for label in y.tolist() if label not in lookup}, key=str)
    if unknown:
        raise SpectroError(f"labels not among the classes {classes.tolist()}: {unknown[:5]}")
    return classes, np.fromiter((lookup[v] for v in y.tolist()), dtype=np.int64, count=len(y))


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` in eval mode (BatchNorm's running statistics, no dropout) for the block, then as it was."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``model.json`` (after the parameters, so its presence means the save finished)."""
    try:
        text = json.dumps({"format": FORMAT_VERSION, **manifest}, indent=2)
    except TypeError as exc:
        raise SpectroError(f"model options must be JSON values to be saved: {exc}") from exc
    write_text(str(directory / MANIFEST), text + "\n")


_MANIFEST_FIELDS = tuple(f.name for f in dataclasses.fields(_ManifestFields))


def read_manifest(directory: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read and check ``model.json`` of a saved classifier (optionally of one ``kind``)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise SpectroError(f"{path} is not a saved spectro model (no such file)")
    try:
        manifest = read_json(str(path), what="saved spectro model")  # strict: NaN or Infinity is refused
    except (OSError, ValueError) as exc:
        raise SpectroError(f"{path} is not a saved spectro model ({exc})") from exc
    required = ("kind", "name", "num_classes", "in_channels", "options", "classes")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise SpectroError(f"{path} lacks some of the fields {', '.join(required)}")
    check_types(_ManifestFields(**{k: manifest[k] for k in _MANIFEST_FIELDS if k in manifest}), source=str(path))
    for name in ("num_classes", "in_channels"):
        if manifest[name] < 1:
            raise SpectroError(f"{path}: field {name!r} must be at least 1, got {manifest[name]!r}")
    classes = manifest["classes"]
    if len(classes) != manifest["num_classes"] or not all(
            isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes):
        raise SpectroError(f"{path}: field 'classes' must be a list of {manifest['num_classes']} (num_classes) "
                           f"names or integers, got {repr(classes)[:200]}")
    if manifest.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise SpectroError(f"{path} was written by a newer spectro (format {manifest['format']})")
    if kind is not None and manifest["kind"] != kind:
        raise SpectroError(f"{path} holds a {manifest['kind']!r} model, not a {kind!r} one")
    return manifest
