"""NetClassifier: any registered network behind the one classifier interface.

Also the two entry points that pick a classifier by name:
:func:`make_classifier` (a new one) and :func:`load_classifier` (a saved one,
dispatching on the ``kind`` in its ``model.json``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spectro.env import select_device
from spectro.errors import SpectroError
from spectro.models.base import (Classifier, as_images, encode_labels, iter_batches,
                                 read_manifest, write_manifest)
from spectro.models.registry import build, get_entry
from spectro.models.svm import SVMClassifier
from spectro.models.weights import load_state_dict_file

__all__ = ["NetClassifier", "train_epochs", "make_classifier", "load_classifier"]

WEIGHTS_FILE = "weights.pt"


@torch.inference_mode()
def predict_logits(model: nn.Module, X: Any, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits [shape=(N, C)] on the CPU, in eval mode, one batch of X at a time."""
    model.eval()
    out = [model(torch.from_numpy(batch).to(device, non_blocking=True)).float().cpu()
           for batch in iter_batches(X, batch_size)]
    return torch.cat(out)


def train_epochs(
    model: nn.Module, X: Any, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
    weight_decay: float, device: torch.device, generator: torch.Generator,
    X_val: Any = None, y_val: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """AdamW on cross-entropy, run by spectro's training loop (:func:`spectro.training.fit_arrays`).

    That loop adds what ``spectro train`` has: mixed precision where it pays,
    a warm-up + cosine learning-rate schedule, batches read straight from a
    memmap, and, with validation data, the weights of the best validation
    epoch restored at the end. Keep this signature so NetClassifier.fit need
    not change.

    Parameters
    ----------
    model : nn.Module
        On ``device``; trained in place.
    X : array-like [shape=(N, C, F, T)]
        Read one minibatch at a time (a memmap stays on disk).
    y : np.ndarray [shape=(N,), dtype=int64]
        Class indices.
    generator : torch.Generator
        Seeded: it draws the loop's seed, so runs repeat exactly.

    Returns
    -------
    list of dict
        Per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy`` and,
        with validation data, ``val_loss``, ``val_accuracy``, ``val_macro_f1``.
    """
    from spectro.run import TrainConfig
    from spectro.training import fit_arrays

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         optimizer="adamw", seed=seed, device=str(device))
    return fit_arrays(model, X, y, X_val=X_val, y_val=y_val, config=config, device=device)


class NetClassifier(Classifier):
    """A registered network (``resnet18``, ``cnn``, ...) as a classifier.

    Parameters
    ----------
    model : str
        Registered network name (see :func:`spectro.models.list_models`).
    epochs, batch_size, lr, weight_decay
        Training settings of :func:`train_epochs` (AdamW).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``, ...
    seed : int
        Seeds the weights, the shuffling and dropout: fits repeat exactly on CPU.
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``.
    **model_options
        Passed to the network builder, e.g. ``stem="small"``, ``pretrained=PATH``.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
    module_ : nn.Module
        The trained network.
    history_ : list of dict
        Per-epoch losses (see :func:`train_epochs`).
    """

    kind = "net"

    def __init__(
        self, model: str = "resnet18", *, epochs: int = 10, batch_size: int = 32,
        lr: float = 1e-3, weight_decay: float = 1e-2, device: str = "auto", seed: int = 0,
        classes: Sequence[Any] | None = None, **model_options: Any,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.seed = seed
        self.classes = classes
        self.model_options = model_options

    def _settings(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "device": self.device, "seed": self.seed}

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            groups: Any = None) -> NetClassifier:
        # ``groups`` is part of the one interface (the SVM's inner search uses it);
        # a network trains on every row as given, so it is accepted and ignored.
        X = as_images(X)
        classes, y_idx = encode_labels(y, self.classes)
        if len(y_idx) != len(X):
            raise SpectroError(f"{len(X)} images but {len(y_idx)} labels")
        val_idx = None
        if X_val is not None and y_val is not None:
            X_val = as_images(X_val, X.shape[1])
            val_idx = encode_labels(y_val, classes)[1]
        device = select_device(self.device)
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        # A private RNG state: the seed fixes initial weights and dropout without
        # disturbing the caller's global torch RNG.
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(self.seed)
            module = build(self.model, len(classes), int(X.shape[1]), **self.model_options)
            module.to(device)
            generator = torch.Generator().manual_seed(self.seed)
            self.history_ = train_epochs(
                module, X, y_idx, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                weight_decay=self.weight_decay, device=device, generator=generator,
                X_val=X_val, y_val=val_idx,
            )
        self.module_, self.classes_, self.in_channels_ = module.eval(), classes, int(X.shape[1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = as_images(X, self.in_channels_)
        device = next(self.module_.parameters()).device
        logits = predict_logits(self.module_, X, self.batch_size, device)
        return torch.softmax(logits.double(), dim=1).numpy()  # (N, C)

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.module_.state_dict(), directory / WEIGHTS_FILE)
        # The trained weights replace any pretrained start: reloading must not need that file.
        options = {k: v for k, v in self.model_options.items() if k != "pretrained"}
        write_manifest(directory, {
            "kind": self.kind, "name": self.model, "num_classes": len(self.classes_),
            "in_channels": self.in_channels_, "options": options,
            "classes": self.classes_.tolist(), "settings": self._settings(),
            "history": getattr(self, "history_", []),
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> NetClassifier:
        """Rebuild the saved network and its weights; ``device`` overrides the saved one."""
        manifest = read_manifest(directory, kind=cls.kind)
        settings = {**manifest.get("settings", {}), **({"device": device} if device else {})}
        try:
            clf = cls(manifest["name"], classes=manifest["classes"], **settings,
                      **manifest["options"])
        except TypeError as exc:  # a hand-edited model.json
            raise SpectroError(f"{directory}/model.json: bad settings ({exc})") from None
        state = load_state_dict_file(Path(directory) / WEIGHTS_FILE)
        # Built on the meta device and filled by assignment: no time spent on an init
        # the saved weights overwrite anyway.
        with torch.device("meta"):
            module = build(clf.model, int(manifest["num_classes"]), int(manifest["in_channels"]),
                           **clf.model_options)
        try:
            module.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise SpectroError(f"{directory}/{WEIGHTS_FILE} does not fit {clf.model}: "
                               f"{str(exc).splitlines()[0]}") from exc
        clf.module_ = module.to(select_device(clf.device)).eval()
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.history_ = manifest.get("history", [])
        return clf


def make_classifier(name: str, **kwargs: Any) -> Classifier:
    """A new, unfitted classifier: ``"svm"`` -> SVMClassifier, a network name -> NetClassifier.

    Raises
    ------
    SpectroError
        For an unknown name (listing the valid ones) or an SVM option it does not take.
    """
    if get_entry(name).kind == "svm":
        try:
            inspect.signature(SVMClassifier).bind(**kwargs)
        except TypeError as exc:
            raise SpectroError(f"svm: {exc}") from None
        return SVMClassifier(**kwargs)
    return NetClassifier(name, **kwargs)


_KINDS: dict[str, type[Classifier]] = {"net": NetClassifier, "svm": SVMClassifier}


def load_classifier(directory: str | Path) -> Classifier:
    """Load any classifier saved by ``save``; its ``model.json`` names the kind."""
    kind = read_manifest(directory)["kind"]
    if kind not in _KINDS:
        raise SpectroError(f"{directory}: unknown model kind {kind!r}; valid: {', '.join(_KINDS)}")
    return _KINDS[kind].load(directory)
