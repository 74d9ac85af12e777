"""The one classifier interface that the networks and the SVM both satisfy.

``fit(X, y, *, X_val=None, y_val=None, groups=None) -> self``, ``predict_proba(X)``,
``predict(X)``, ``save(directory)``, ``load(directory)`` and ``classes_``.
X is any array-like of spectrogram images [shape=(N, C, F, T)], typically
the store's float16 ``np.memmap``: it is read in slices, never whole.

A saved classifier is a directory with ``model.json`` (what to rebuild: kind,
name, sizes, options, classes) next to its parameters, which never go
through pickle (see :mod:`spectro.models.weights` and :mod:`spectro.models.svm`).
The networks' classifier, which needs the training loop, is
:class:`spectro.training.classifier.NetClassifier`; this package never imports it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from spectro.errors import SpectroError

__all__ = ["Classifier", "MANIFEST", "as_images", "iter_batches", "read_rows",
           "encode_labels", "write_manifest", "read_manifest"]

MANIFEST = "model.json"
FORMAT_VERSION = 1


class Classifier(ABC):
    """Base of :class:`NetClassifier` and :class:`SVMClassifier`.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
        Class labels; column j of :meth:`predict_proba` is ``classes_[j]``.
    """

    kind: ClassVar[str]
    classes_: np.ndarray

    @abstractmethod
    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, groups: Any = None) -> Classifier:
        """Train on images X [shape=(N, C, F, T)] and labels y [shape=(N,)]; return self.

        ``groups`` [shape=(N,)], optional: each row's group (speaker, kit, ...),
        for classifiers that choose settings by an inner cross-validation.
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
    def load(cls, directory: str | Path) -> Classifier:
        """Read a classifier written by :meth:`save`, without executing code from it."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise SpectroError(f"this {type(self).__name__} is not fitted yet; call fit first")

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

    numpy arrays (memmaps included) and torch tensors pass through as they are;
    any other array-like is converted with ``np.asarray``.
    """
    if not isinstance(X, (np.ndarray, torch.Tensor)):
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
    return np.asarray(rows, dtype=dtype)


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


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``model.json`` (after the parameters, so its presence means the save finished)."""
    try:
        text = json.dumps({"format": FORMAT_VERSION, **manifest}, indent=2)
    except TypeError as exc:
        raise SpectroError(f"model options must be JSON values to be saved: {exc}") from exc
    (directory / MANIFEST).write_text(text + "\n", encoding="utf-8")


def read_manifest(directory: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read and check ``model.json`` of a saved classifier (optionally of one ``kind``)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpectroError(f"{path} is not a saved spectro model ({exc})") from exc
    required = ("kind", "name", "num_classes", "in_channels", "options", "classes")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise SpectroError(f"{path} lacks some of the fields {', '.join(required)}")
    if manifest.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise SpectroError(f"{path} was written by a newer spectro (format {manifest['format']})")
    if kind is not None and manifest["kind"] != kind:
        raise SpectroError(f"{path} holds a {manifest['kind']!r} model, not a {kind!r} one")
    return manifest
