"""NetClassifier: any registered network behind the one classifier interface; and the one place
where a model's kind matters.

:func:`classifier_class` maps a model name's kind (from
:mod:`spectro.models.catalog`) to its class; :func:`make_classifier` (a new
one) and :func:`load_classifier` (a saved one, by the ``kind`` in its
``model.json``) go through the same table. Everything else asks the class
(:class:`~spectro.models.base.Classifier`'s ``inner_selection``, ``parallel``,
``ignores``, ``n_parameters``, ``export_onnx``...), never the name. A new kind of model
is a class implementing that interface and one entry in ``_KINDS``.

NetClassifier follows scikit-learn's estimator contract: ``__init__`` stores
explicit keyword parameters only (their defaults are
:class:`~spectro.config.TrainConfig`'s, the one home of every training
setting), ``fit`` returns ``self`` and learned state ends in ``_``; so
``get_params``, ``set_params`` and ``sklearn.base.clone`` work on it as on
the SVM.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from spectro.config import TrainConfig
from spectro.dataset.feed import NormalisedRows, StoreImages, class_weights
from spectro.errors import Diverged, SpectroError, first_line
from spectro.models.base import (
    ONNX_EXTRA,
    Classifier,
    EpochEnd,
    FitCallback,
    FitResult,
    OnnxGraph,
    Stop,
    as_images,
    eval_mode,
    iter_batches,
    read_manifest,
    write_manifest,
)
from spectro.models.catalog import model_info
from spectro.models.svm import SVMClassifier
from spectro.models.weights import load_state_dict_file, save_tensors
from spectro.models.zoo import build
from spectro.training.distributed import Distributed
from spectro.training.loop import LoopState, Trainer, get_rng_state, set_rng_state
from spectro.utils.device import choose_precision, select_device

__all__ = ["NetClassifier", "classifier_class", "make_classifier", "load_classifier", "predict_logits"]

WEIGHTS_FILE = "weights.pt"
_DEFAULT = TrainConfig()


@torch.inference_mode()
def predict_logits(model: nn.Module, X: Any, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits [shape=(N, C)] on the CPU, in eval mode, one batch of X at a time."""
    model.eval()
    out = [model(torch.from_numpy(batch).to(device, non_blocking=True)).float().cpu()
           for batch in iter_batches(X, batch_size)]
    return torch.cat(out)


class NetClassifier(Classifier, BaseEstimator):
    """A registered network (``resnet18``, ``cnn``, ...) as a classifier.

    Trained by spectro's one loop (:class:`spectro.training.loop.Trainer`), in a
    notebook as under ``spectro train``: mixed precision where it pays, warm-up +
    cosine schedule, batches read straight from a memmap, data-parallel under
    torchrun, exact resume and, with validation data, the weights of the best
    validation epoch restored at the end. Images are used as given, except a
    :class:`~spectro.dataset.feed.NormalisedRows` view of a store (what
    ``spectro train`` passes): its raw float16 rows go to the device and are
    normalised there.

    Parameters
    ----------
    model : str
        Registered network name (see :func:`spectro.models.list_models`).
    model_options : dict or None
        Passed to the network builder, e.g. ``{"stem": "small"}``.
    epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup_epochs, label_smoothing, grad_clip,
    amp, channels_last, specaugment, mixup, time_shift, gain_eq, balance, early_stop, device, workers, seed,
    pretrained
        As in :class:`~spectro.config.TrainConfig`, with its defaults.
    classes : array-like or None
        All class labels in column order; default ``np.unique(y)``.

    Attributes
    ----------
    classes_ : np.ndarray [shape=(C,)]
    module_ : nn.Module
        The trained network.
    in_channels_ : int
    history_ : list of dict
        Per-epoch losses (the columns of metrics.csv).
    fit_result_ : FitResult
        How the fit ended (:class:`~spectro.models.base.Stop`) and where.
    """

    kind = "net"
    parallel = True

    def __init__(
        self, model: str = _DEFAULT.model, *, model_options: Optional[dict] = None,
        epochs: int = _DEFAULT.epochs, batch_size: int = _DEFAULT.batch_size,
        optimizer: str = _DEFAULT.optimizer, lr: Optional[float] = _DEFAULT.lr,
        weight_decay: Optional[float] = _DEFAULT.weight_decay, schedule: str = _DEFAULT.schedule,
        warmup_epochs: float = _DEFAULT.warmup_epochs, label_smoothing: float = _DEFAULT.label_smoothing,
        grad_clip: Optional[float] = _DEFAULT.grad_clip, amp: Optional[bool] = _DEFAULT.amp,
        channels_last: Optional[bool] = _DEFAULT.channels_last, specaugment: bool = _DEFAULT.specaugment,
        mixup: float = _DEFAULT.mixup, time_shift: float = _DEFAULT.time_shift,
        gain_eq: float = _DEFAULT.gain_eq, balance: bool = _DEFAULT.balance,
        early_stop: Optional[int] = _DEFAULT.early_stop, device: str = _DEFAULT.device,
        workers: Optional[int] = _DEFAULT.workers, seed: int = _DEFAULT.seed,
        pretrained: Optional[str] = _DEFAULT.pretrained,
        classes: Optional[Sequence[Any]] = None,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.label_smoothing = label_smoothing
        self.grad_clip = grad_clip
        self.amp = amp
        self.channels_last = channels_last
        self.specaugment = specaugment
        self.mixup = mixup
        self.time_shift = time_shift
        self.gain_eq = gain_eq
        self.balance = balance
        self.early_stop = early_stop
        self.device = device
        self.workers = workers
        self.seed = seed
        self.pretrained = pretrained
        self.classes = classes

    # -- settings ------------------------------------------------------------
    def train_config(self) -> TrainConfig:
        """These parameters as a (validated) :class:`TrainConfig`."""
        params = self.get_params()
        params.pop("classes")
        params["model_options"] = dict(params["model_options"] or {})
        return TrainConfig(**params)

    @classmethod
    def create(cls, name: str, **kwargs: Any) -> NetClassifier:
        """The network ``name``; keyword arguments that are not parameters are model options
        (``create("resnet18", epochs=5, stem="small")``)."""
        params = set(inspect.signature(cls).parameters)
        options = {k: v for k, v in kwargs.items() if k not in params}
        settings = {k: v for k, v in kwargs.items() if k in params}
        if options:
            settings["model_options"] = {**(settings.get("model_options") or {}), **options}
        return cls(name, **settings)

    @classmethod
    def from_config(cls, config: TrainConfig, *, classes: Optional[Sequence[Any]] = None) -> NetClassifier:
        """A classifier with the settings of ``config`` (the fields NetClassifier has)."""
        names = set(inspect.signature(cls).parameters) - {"classes"}
        return cls(**{k: v for k, v in config.to_dict().items() if k in names}, classes=classes)

    @classmethod
    def check_config(cls, config: TrainConfig, *, num_classes: int, in_channels: int) -> None:
        """Model options and the pretrained file, checked before any file is written."""
        try:
            with torch.device("meta"):  # shapes only: no memory, no time
                build(config.model, num_classes, in_channels, **config.model_options)
        except TypeError as err:
            raise SpectroError(f"{config.model}: bad --option ({err})") from None
        if config.pretrained is not None:
            load_state_dict_file(config.pretrained)  # a missing or unusable file fails here, in one line

    def init_module(self, num_classes: int, in_channels: int, *, pretrained: bool = True) -> nn.Module:
        """Build the untrained network (from ``pretrained`` when set and asked) and hold it as ``module_``.

        Sets ``classes_`` from ``classes`` and ``in_channels_``: a network being
        trained elsewhere (``spectro train``) can be saved at any epoch.
        """
        start = {"pretrained": self.pretrained} if pretrained and self.pretrained else {}
        self.module_ = build(self.model, num_classes, in_channels, **(self.model_options or {}), **start)
        self.classes_ = np.asarray(self.classes) if self.classes is not None else np.arange(num_classes)
        self.in_channels_ = int(in_channels)
        self.history_: list = []
        return self.module_

    # -- the interface -------------------------------------------------------
    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, groups: Any = None,
            callbacks: Sequence[FitCallback] = (), resume: Optional[dict] = None,
            progress: bool = False) -> NetClassifier:
        # ``groups`` is part of the one interface (the SVM's inner search uses it);
        # a network trains on every row as given, so it is accepted and ignored.
        X, classes, y_idx = self._fit_inputs(X, y)
        train_data, mean, std = _feed(X, y_idx)
        val_data = None
        if X_val is not None and y_val is not None and len(y_val):
            val_data, _, _ = _feed(as_images(X_val, X.shape[1]), self._encode(y_val, classes))
        config = self.train_config()
        config = config.replace(batch_size=min(config.batch_size, len(y_idx)))  # one batch at most, not an error
        dist = Distributed.from_env()
        device = select_device(self.device, local_rank=dist.local_rank)
        precision = choose_precision(device.type, config.amp, config.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        weight = class_weights(y_idx, len(classes)) if self.balance else None
        # The one fork of the RNG: the seed fixes the initial weights, then each process's
        # augmentation stream (or the resumed one), without disturbing the caller's RNG.
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            # A resumed fit's weights come from its state, not from the pretrained file.
            module = self.init_module(len(classes), int(X.shape[1]), pretrained=resume is None)
            self.classes_ = classes
            trainer = Trainer(module, config, train_data, val_data, mean=mean, std=std, device=device,
                              precision=precision, dist=dist, num_classes=len(classes), class_weight=weight,
                              progress=progress)
            state = _start(trainer, resume, dist)
            self.history_ = state.history  # grows epoch by epoch: a save at any epoch holds it so far
            what = f"{self.model} on {device} ({trainer.precision_note()}" + (
                f", {dist.world_size} processes)" if dist.enabled else ")")
            for callback in callbacks:
                callback.on_fit_start(what, epoch=state.epoch, batch=state.batch, epochs=config.epochs,
                                      resumable=True, precision=trainer.precision_note(),
                                      data=trainer.residency.reason)
            try:
                stop = self._run(trainer, state, dist, val_data is not None, callbacks)
            except Diverged as err:
                err.mixed_precision = precision.dtype is not None  # the advice then says --no-amp
                err.precision = precision.name
                raise
        # The weights keep the memory format they trained in (channels_last where it was on), as save()
        # writes them and load() reads them: the fitted classifier and a reloaded one compute alike.
        self.module_, self.history_ = module.eval(), state.history
        self.fit_result_ = FitResult(stop, epochs=state.epoch, batch=state.batch, best_epoch=state.best_epoch)
        return self

    def _run(self, trainer: Trainer, state: LoopState, dist: Distributed, keep_best: bool,
             callbacks: Sequence[FitCallback]) -> Stop:
        """The loop from ``state`` to its end, each epoch reported to ``callbacks``; how it stopped."""
        best: dict = {}

        def resume_state() -> dict:
            return _resume_state(trainer, state, dist)

        def on_epoch_end(row: dict, improved: bool) -> bool:
            if improved and keep_best:
                best.update({k: v.detach().clone() for k, v in trainer.module.state_dict().items()})
            end = EpochEnd(row, improved, self, resume_state)
            return any([bool(callback.on_epoch_end(end)) for callback in callbacks])  # every one hears

        def stop_requested() -> bool:
            return any(callback.stop_requested() for callback in callbacks)

        outcome = trainer.fit(state, stop=stop_requested, on_epoch_end=on_epoch_end)
        stop = Stop(outcome)
        if stop is Stop.STOPPED:
            if state.batch:  # mid-epoch: the epoch-end state is older than this
                for callback in callbacks:
                    callback.on_stop(EpochEnd(None, False, self, resume_state))
            if dist.max_(torch.tensor([float(stop_requested())], device=trainer.device)).item():
                stop = Stop.SIGNALLED
        if best:
            trainer.module.load_state_dict(best)
        return stop

    def predict_proba(self, X: Any, *, batch_size: Optional[int] = None) -> np.ndarray:
        self._check_fitted()
        X = as_images(X, self.in_channels_)
        device = next(self.module_.parameters()).device
        logits = predict_logits(self.module_, X, batch_size or self.batch_size, device)
        return torch.softmax(logits.double(), dim=1).numpy()  # (N, C)

    def to_device(self, device: str) -> NetClassifier:
        """Move the fitted network to ``device`` (as :meth:`load` with ``device`` places it)."""
        self._check_fitted()
        self.device = device
        self.module_ = self.module_.to(select_device(device))
        return self

    @property
    def network(self) -> nn.Module | None:
        return getattr(self, "module_", None)

    def embed(self, X: Any, *, batch_size: Optional[int] = None) -> np.ndarray:
        """The pooled last feature map [shape=(N, num_features)]: ``forward_head(forward_features(x), pre_logits=True)``."""
        self._check_fitted()
        X = as_images(X, self.in_channels_)
        net = self.module_
        param = next(net.parameters())
        with eval_mode(net), torch.inference_mode():
            out = [net.forward_head(net.forward_features(torch.from_numpy(b).to(param.device, param.dtype)),
                                    pre_logits=True).double().cpu().numpy()
                   for b in iter_batches(X, batch_size or self.batch_size)]
        return np.concatenate(out)

    def save(self, directory: str | Path) -> Path:
        directory = self._save_dir(directory)
        save_tensors(self.module_.state_dict(), directory / WEIGHTS_FILE)
        # The trained weights replace any pretrained start: reloading must not need that file.
        settings = {k: v for k, v in self.get_params().items()
                    if k not in ("model", "model_options", "classes", "pretrained")}
        write_manifest(directory, {
            "kind": self.kind, "name": self.model, "num_classes": len(self.classes_),
            "in_channels": self.in_channels_, "options": dict(self.model_options or {}),
            "classes": self.classes_.tolist(), "settings": settings,
            "history": getattr(self, "history_", []),
        })
        return directory

    def n_parameters(self) -> int:
        """Learned weights plus the floating-point buffers (BatchNorm's running statistics) it predicts with."""
        self._check_fitted()
        buffers = sum(b.numel() for b in self.module_.buffers() if b.is_floating_point())
        return int(sum(p.numel() for p in self.module_.parameters()) + buffers)

    def load_last_weights(self, path: str) -> None:
        """The weights of the last epoch, from training checkpoint ``path``, in place of the best ones."""
        self._check_fitted()
        self.module_.load_state_dict(load_state_dict_file(path))

    def export_onnx(self, path: str, *, image_shape: tuple[int, int, int], opset: int) -> OnnxGraph:
        """The network plus a softmax (outputs ``logits`` and ``probabilities``), through torch.onnx (dynamo).

        The batch axis is dynamic; the time axis too when the network accepts
        other widths (adaptive pooling), checked by running them.
        """
        self._check_fitted()
        net = self.module_.float().eval()
        model = _WithProbabilities(net).eval()
        channels, n_freq, n_frames = image_shape
        widths = _accepted_widths(net, channels, n_freq, n_frames)
        shapes = {0: torch.export.Dim("batch", min=1)}
        if len(widths) > 1:
            shapes[3] = torch.export.Dim("time", min=min(widths))
        try:
            with torch.no_grad():
                torch.onnx.export(model, (torch.zeros(2, channels, n_freq, n_frames),), path, dynamo=True,
                                  input_names=["image"], output_names=["logits", "probabilities"],
                                  dynamic_shapes={"image": shapes}, opset_version=opset, verbose=False)
        except ImportError as err:
            raise SpectroError(f"ONNX export needs the onnx extra ({err.name} is missing): {ONNX_EXTRA}") from None
        except Exception as err:  # noqa: BLE001 - the exporter raises many types; one line says which
            raise SpectroError(f"torch.onnx.export failed for {self.model}: {first_line(err)}") from err

        def reference(x: np.ndarray) -> list[np.ndarray]:
            with torch.no_grad():
                return [t.numpy() for t in model(torch.from_numpy(x))]

        return OnnxGraph(["logits", "probabilities"], reference, widths, "PyTorch")

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> NetClassifier:
        """Rebuild the saved network and its weights; ``device`` overrides the saved one."""
        manifest = read_manifest(directory, kind=cls.kind)
        settings = {**manifest.get("settings", {}), **({"device": device} if device else {})}
        clf = cls._from_manifest(directory, manifest["name"], model_options=manifest["options"], **settings)
        state = load_state_dict_file(Path(directory) / WEIGHTS_FILE)
        # Built on the meta device and filled by assignment: no time spent on an init
        # the saved weights overwrite anyway.
        with torch.device("meta"):
            module = build(clf.model, int(manifest["num_classes"]), int(manifest["in_channels"]),
                           **(clf.model_options or {}))
        try:
            module.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            raise SpectroError(f"{directory}/{WEIGHTS_FILE} does not fit {clf.model}: {first_line(exc)}") from exc
        clf.module_ = module.to(select_device(clf.device)).eval()
        clf.classes_ = np.asarray(manifest["classes"])
        clf.in_channels_ = int(manifest["in_channels"])
        clf.history_ = manifest.get("history", [])
        return clf


def _feed(X: Any, y_idx: np.ndarray) -> tuple[StoreImages, np.ndarray, np.ndarray]:
    """What the loop reads, and the normalisation it applies on the device.

    A :class:`NormalisedRows` view of a store is read as it is stored (float16 rows, half the bytes to
    the device) and normalised there with its own mean and std, as :func:`~spectro.dataset.feed.normalise`
    would on the CPU; any other array is used as given.
    """
    if isinstance(X, NormalisedRows):
        labels = np.zeros(len(X.features), dtype=np.int64)  # by store row
        labels[X.rows] = y_idx
        return StoreImages(X.features, labels, X.rows), X.mean, X.std
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    c, f = X.shape[1], X.shape[2]
    return (StoreImages(X, y_idx, np.arange(len(y_idx))), np.zeros((c, f), np.float32),
            np.ones((c, f), np.float32))


def _start(trainer: Trainer, resume: Optional[dict], dist: Distributed) -> LoopState:
    """Where the loop starts: from the beginning, or exactly where ``resume`` stopped (weights, optimizer,
    position, RNG); the RNG is seeded for augmentation either way."""
    seed = trainer.cfg.seed
    if resume is None:
        torch.manual_seed(seed + dist.rank)  # augmentation: one stream per process
        return LoopState()
    trainer.load_state_dict(resume["trainer"])
    state = LoopState.from_state_dict(resume["loop"])
    rngs = resume["rng"]
    if len(rngs) == dist.world_size:
        set_rng_state(rngs[dist.rank])
    else:  # another number of processes: a fresh stream per rank and epoch
        torch.manual_seed(seed + 1000 * state.epoch + dist.rank)
    return state


def _resume_state(trainer: Trainer, state: LoopState, dist: Distributed) -> dict:
    """Everything an exact resume needs (every rank's RNG state gathered); every rank calls it.

    Raises
    ------
    Diverged
        When a weight is NaN or infinite (an optimizer step can break them before the loss shows it).
    """
    module = trainer.module
    finite = all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())
    if dist.max_(torch.tensor([float(not finite)], device=trainer.device)).item() != 0:
        raise Diverged(f"the weights stopped being finite (NaN or Inf) by epoch {state.epoch}")
    return {"trainer": trainer.state_dict(), "loop": state.state_dict(), "rng": dist.gather(get_rng_state()),
            "model": module.state_dict()}


class _WithProbabilities(nn.Module):
    """The network plus a softmax, so the ONNX graph gives both logits and probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(image)  # (batch, C)
        return logits, torch.softmax(logits, dim=1)


def _accepted_widths(net: nn.Module, channels: int, n_freq: int, n_frames: int) -> list[int]:
    """Image widths to export and check: the trained one, plus others when the net accepts them."""
    others = [max(8, n_frames // 2 + 3), 2 * n_frames + 1]
    with torch.no_grad():
        try:
            for w in others:
                net(torch.zeros(1, channels, n_freq, w))
        except RuntimeError:  # a fixed-size layer (flatten + linear): the time axis stays fixed
            return [n_frames]
    return [n_frames, *others]


# The one place where a model's kind matters: kind (spectro.models.catalog) -> the class that serves it.
_KINDS: dict[str, type[Classifier]] = {"net": NetClassifier, "svm": SVMClassifier}


def classifier_class(name: str) -> type[Classifier]:
    """The :class:`~spectro.models.base.Classifier` class of model ``name`` (an unknown name is one line)."""
    return _KINDS[model_info(name).kind]


def make_classifier(name: str, **kwargs: Any) -> Classifier:
    """A new, unfitted classifier of model ``name`` (see :meth:`Classifier.create`).

    For a network, keyword arguments that are not NetClassifier parameters
    are model options (``make_classifier("resnet18", epochs=5, stem="small")``).

    Raises
    ------
    SpectroError
        For an unknown name (listing the valid ones) or an SVM option it does not take.
    """
    return classifier_class(name).create(name, **kwargs)


def load_classifier(directory: str | Path, device: Optional[str] = None) -> Classifier:
    """Load any classifier saved by ``save``; its ``model.json`` names the kind. ``device``: for a network."""
    kind = read_manifest(directory)["kind"]
    if kind not in _KINDS:
        raise SpectroError(f"{directory}: unknown model kind {kind!r}; valid: {', '.join(_KINDS)}")
    return _KINDS[kind].load(directory, device=device)
