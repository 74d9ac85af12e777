"""A training run on disk: its typed :class:`TrainConfig`, its layout, and :func:`load_run`.

Layout of a run directory::

    run.json             what this is: model, status, epochs done, best epoch,
                         folds, store path and fingerprint, test metrics,
                         software versions
    train_config.json    the TrainConfig
    feature_config.json  the store's FeatureConfig (how raw audio becomes an image)
    labels.json          class names in label-id order
    norm.json            per-frequency mean and std of the training rows
    split.csv            id, row, fold and role (train/val/test) of every store row
    metrics.csv          one row per epoch; curves.png draws it
    model/               the best classifier (spectro.models save format)
    checkpoints/last.pt  the latest state (weights, optimizer, scheduler,
                         scaler, RNG, position in the epoch): ``--resume``
    eval/                what ``spectro evaluate`` writes

Opening a run never executes code from it: configs are JSON, weights are
read with ``torch.load(weights_only=True)`` and the SVM through skops with
an allow-list of types, so a run someone sent you is safe to load.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

import numpy as np

from .config import FeatureConfig
from .env import versions
from .errors import SpectroError
from .files import read_csv as _read_csv
from .files import read_json as _read_json
from .files import write_csv, write_json  # noqa: F401 - re-exported for training and evaluation

__all__ = ["TrainConfig", "Run", "load_run", "RUN_FORMAT", "CHECKPOINT_FORMAT", "METRIC_COLUMNS", "NET_ONLY_FIELDS",
           "RUNTIME_FIELDS", "write_run_info", "read_run_info", "run_status", "save_checkpoint", "load_checkpoint",
           "save_dir", "write_history"]

RUN_FORMAT = "spectro-run-1"
CHECKPOINT_FORMAT = "spectro-checkpoint-1"
#: Columns of metrics.csv, one row per epoch.
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                  "seconds", "samples_per_s"]
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "step")
DEVICES = ("auto", "cuda", "mps", "cpu")
# Defaults that depend on the optimizer: (learning rate, weight decay).
OPTIMIZER_DEFAULTS = {"sgd": (0.05, 5e-4), "adamw": (1e-3, 0.05)}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; the CLI passes only what a user set.

    Attributes
    ----------
    model : str
        A registered model name (``spectro.models.list_models()``).
    model_options : dict
        Passed to the model builder (e.g. ``{"stem": "small"}``) or the SVM.
    epochs, batch_size : int
    optimizer : {"sgd", "adamw"}
        SGD with Nesterov momentum 0.9, or AdamW.
    lr, weight_decay : float or None
        None: the optimizer's default (SGD 0.05 / 5e-4, AdamW 1e-3 / 0.05),
        see :attr:`learning_rate` and :attr:`decay`.
    schedule : {"cosine", "onecycle", "step"}
        Per-step learning rate: linear warm-up then cosine decay to 0;
        torch's OneCycleLR; or warm-up then x0.1 at 50% and 75% of training.
    warmup_epochs : float
        Linear warm-up length (cosine and step; onecycle has its own).
    label_smoothing : float
    grad_clip : float or None
        Clip the gradient norm to this value.
    test_fold, val_fold : int or None
        None: see :func:`spectro.data.default_folds`.
    device : {"auto", "cuda", "mps", "cpu"}
        auto: CUDA, then MPS, then CPU. ``cuda:1`` etc. are accepted.
    amp : bool or None
        Mixed precision (bf16 autocast; fp16 with a GradScaler on GPUs
        without bf16). None: on where it pays: CUDA, MPS, and CPUs with AMX
        (on AVX-512 BF16 alone it trains slower than float32; see
        :func:`spectro.trainer.choose_precision`).
    channels_last : bool or None
        None: on with CUDA, on the CPU and with mixed precision.
    specaugment : bool
        Frequency and time masks (see :class:`spectro.data.Augment`).
    mixup : float
        Mixup alpha; 0 is off.
    time_shift : float
        Random circular time shift of up to this fraction of the width; 0 is off.
    balance : bool
        Weight the loss by inverse class frequency.
    early_stop : int or None
        Stop after this many epochs without a better validation macro-F1.
    seed : int
    workers : int or None
        DataLoader processes; None: 0 on the CPU (the memory-mapped loader
        is far faster than training), 4 on a GPU.
    pretrained : str or None
        A local checkpoint to start from (its first conv adapted to 1 channel).
    """

    model: str = "resnet18"
    model_options: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    grad_clip: Optional[float] = None
    test_fold: Optional[int] = None
    val_fold: Optional[int] = None
    device: str = "auto"
    amp: Optional[bool] = None
    channels_last: Optional[bool] = None
    specaugment: bool = False
    mixup: float = 0.0
    time_shift: float = 0.0
    balance: bool = False
    early_stop: Optional[int] = None
    seed: int = 0
    workers: Optional[int] = None
    pretrained: Optional[str] = None

    def __post_init__(self) -> None:
        def bad(msg: str) -> SpectroError:
            return SpectroError(f"invalid training setting: {msg}")

        if self.epochs < 1:
            raise bad(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise bad(f"batch size must be at least 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise bad(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise bad(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr is not None and not self.lr > 0:
            raise bad(f"learning rate must be positive, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise bad(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.warmup_epochs < 0:
            raise bad(f"warmup epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise bad(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise bad(f"gradient clip must be positive, got {self.grad_clip}")
        if self.device.split(":")[0] not in DEVICES:
            raise bad(f"device must be one of {DEVICES} (or cuda:N), got {self.device!r}")
        if self.mixup < 0:
            raise bad(f"mixup alpha must be >= 0, got {self.mixup}")
        if not 0 <= self.time_shift <= 0.5:
            raise bad(f"time shift must be a fraction in [0, 0.5], got {self.time_shift}")
        if self.early_stop is not None and self.early_stop < 1:
            raise bad(f"early-stop patience must be at least 1 epoch, got {self.early_stop}")
        if self.workers is not None and self.workers < 0:
            raise bad(f"workers must be >= 0, got {self.workers}")
        if not isinstance(self.model_options, dict):
            raise bad(f"model options must be a dict, got {self.model_options!r}")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default."""
        return self.lr if self.lr is not None else OPTIMIZER_DEFAULTS[self.optimizer][0]

    @property
    def decay(self) -> float:
        """``weight_decay``, or the optimizer's default."""
        return self.weight_decay if self.weight_decay is not None else OPTIMIZER_DEFAULTS[self.optimizer][1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SpectroError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


#: Settings that only networks use: the SVM accepts and ignores them (with one note).
NET_ONLY_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "warmup_epochs",
                   "label_smoothing", "grad_clip", "device", "amp", "channels_last", "specaugment", "mixup",
                   "time_shift", "balance", "early_stop", "workers", "pretrained")
#: Settings a resumed run may change: where it runs, not what it computes.
RUNTIME_FIELDS = ("device", "workers")


# ---------------------------------------------------------------------------
# Reading and writing the pieces of a run
# ---------------------------------------------------------------------------

def read_json(path: str) -> Any:
    return _read_json(path, what="spectro run")


def read_csv(path: str) -> list[dict[str, str]]:
    return _read_csv(path, what="spectro run")


def write_split(path: str, store: Any, roles: np.ndarray) -> None:
    """``split.csv``: id, row, fold and role of every store row."""
    rows = [{"id": store.ids[i], "row": i, "fold": int(store.folds[i]), "role": roles[i]} for i in range(len(store))]
    write_csv(path, ["id", "row", "fold", "role"], rows)


def read_split(path: str) -> dict[str, list[str]]:
    """``role -> example ids`` from ``split.csv``."""
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for r in read_csv(os.path.join(path, "split.csv")):
        if r["role"] in out:
            out[r["role"]].append(r["id"])
    return out


def write_norm(path: str, mean: np.ndarray, std: np.ndarray) -> None:
    write_json(path, {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()})


def read_norm(run_dir: str) -> tuple[np.ndarray, np.ndarray]:
    d = read_json(os.path.join(run_dir, "norm.json"))
    try:
        mean, std = np.asarray(d["mean"], dtype=np.float32), np.asarray(d["std"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise SpectroError(f"{run_dir}/norm.json does not hold per-frequency mean and std") from None
    if mean.shape != std.shape or mean.ndim != 2 or not np.all(std > 0):
        raise SpectroError(f"{run_dir}/norm.json: mean and std must be (channels, frequencies), std > 0")
    return mean, std


def write_run_info(run_dir: str, st: Any, cfg: TrainConfig, split: Any, **fields: Any) -> None:
    """Update run.json: what the run is (model, store, folds, versions) and ``fields`` (status, ...)."""
    from .models.registry import get_entry

    path = os.path.join(run_dir, "run.json")
    info = read_json(path) if os.path.isfile(path) else {}
    info.update({
        "format": RUN_FORMAT, "model": cfg.model, "kind": get_entry(cfg.model).kind,
        "store": {"path": os.path.abspath(st.path), "fingerprint": st.config.fingerprint(), "examples": len(st)},
        "folds": {"test": split.test_fold, "val": split.val_fold,
                  "train": sorted(set(st.folds[split.train].tolist()))},
        "examples": {"train": int(split.train.size), "val": int(split.val.size), "test": int(split.test.size)},
        "versions": versions(),
    })
    info.setdefault("created", datetime.now().isoformat(timespec="seconds"))
    info.update(fields)
    write_json(path, info)


def run_status(run_dir: str) -> Optional[str]:
    """The status in run.json (``running``, ``done``, ``interrupted``, ``diverged``), None without one."""
    if not os.path.isfile(os.path.join(run_dir, "run.json")):
        return None
    return read_json(os.path.join(run_dir, "run.json")).get("status", "unknown")


def save_checkpoint(path: str, obj: dict) -> None:
    """Write a training checkpoint (plain containers of tensors and numbers) atomically."""
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    torch.save({"format": CHECKPOINT_FORMAT, **obj}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict:
    """A training checkpoint, read weights-only: it cannot run code."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything else is "not a usable checkpoint"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SpectroError(f"refusing to load {path}: not a weights-only spectro checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SpectroError(f"{path} is not a spectro training checkpoint")
    return ckpt


def save_dir(save: Callable[[str], Any], path: str) -> None:
    """``save(tmp)`` then swap ``tmp`` in for ``path``: a crash never leaves a half-written model."""
    tmp, old = path + ".tmp", path + ".old"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def write_history(run_dir: str, history: list[dict], *, title: str, plot: bool = True) -> None:
    """metrics.csv, and with ``plot`` curves.png."""
    write_csv(os.path.join(run_dir, "metrics.csv"), METRIC_COLUMNS,
              [{k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS} for r in history])
    if plot and history:
        from .plots import plot_curves

        plot_curves(history, os.path.join(run_dir, "curves.png"), title=title)


# ---------------------------------------------------------------------------
# A loaded run
# ---------------------------------------------------------------------------

@dataclass
class Run:
    """A trained run: classifier, normalisation, labels and FeatureConfig together.

    :meth:`predict_proba` takes images exactly as the store holds them (or as
    ``FeatureConfig`` makes them from raw audio) and normalises them itself,
    so no caller ever applies (or forgets) the normalisation.

    Attributes
    ----------
    path : str
    classifier : spectro.models.Classifier
        ``NetClassifier`` or ``SVMClassifier``: the same interface.
    labels : list of str
        Class names; column j of :meth:`predict_proba` is ``labels[j]``.
    feature_config : FeatureConfig
    train_config : TrainConfig
    mean, std : np.ndarray [shape=(C, F), dtype=float32]
    info : dict
        The whole of run.json (status, epochs, best epoch, test metrics, ...).
    """

    path: str
    classifier: Any
    labels: list[str]
    feature_config: FeatureConfig
    train_config: TrainConfig
    mean: np.ndarray
    std: np.ndarray
    info: dict

    def normalise(self, images: Any) -> np.ndarray:
        """Images [shape=(N, C, F, T)] -> float32, normalised per channel and frequency."""
        x = np.asarray(images, dtype=np.float32)
        return (x - self.mean[None, :, :, None]) / self.std[None, :, :, None]

    def predict_proba(self, images: Any, *, chunk: int = 2048) -> np.ndarray:
        """Class probabilities [shape=(N, len(labels))] of raw images [shape=(N, C, F, T)].

        Read ``chunk`` images at a time, so a memory-mapped array never sits in memory whole.
        """
        n = len(images)
        expected = tuple(self.mean.shape) + (self.feature_config.n_frames,)
        if n and tuple(images.shape[1:]) != expected:
            raise SpectroError(f"images shaped {tuple(images.shape[1:])}; this run expects {expected}")
        parts = [self.classifier.predict_proba(self.normalise(images[s:s + chunk])) for s in range(0, n, chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)))

    def predict(self, images: Any) -> np.ndarray:
        """Class names [shape=(N,)] of raw images."""
        return np.asarray(self.labels, dtype=object)[np.argmax(self.predict_proba(images), axis=1)]

    @property
    def status(self) -> str:
        return self.info.get("status", "unknown")

    @property
    def test_metrics(self) -> Optional[dict]:
        """Headline test metrics written at the end of training (None if not yet)."""
        return self.info.get("test")


def read_run_info(path: str) -> dict:
    """run.json of ``path``, checked to be a spectro run."""
    if not os.path.isdir(path):
        raise SpectroError(f"run not found: {path}")
    info = read_json(os.path.join(path, "run.json"))
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise SpectroError(f"{path} is not a spectro run (run.json has no {RUN_FORMAT!r} format)")
    return info


def load_run(path: str, *, weights: str = "best", device: Optional[str] = None) -> Run:
    """Open a trained run, executing nothing from it.

    Parameters
    ----------
    path : str
        The run directory.
    weights : {"best", "last"}
        The classifier saved at the best validation epoch, or the latest
        weights of ``checkpoints/last.pt`` (networks only).
    device : str, optional
        Where a network runs (default: CUDA when available, else CPU).

    Raises
    ------
    SpectroError
        Not a run, a run with no trained model yet, or a weights file that is
        not a plain weights-only checkpoint (e.g. a pickle that would run code).
    """
    from .models import NetClassifier, load_classifier
    from .models.weights import load_state_dict_file

    if weights not in ("best", "last"):
        raise SpectroError(f"weights must be 'best' or 'last', got {weights!r}")
    info = read_run_info(path)
    model_dir = os.path.join(path, "model")
    if not os.path.isfile(os.path.join(model_dir, "model.json")):
        raise SpectroError(f"{path} has no trained model yet (status: {info.get('status')}); "
                           f"continue it with: spectro train --resume {path}")
    clf = NetClassifier.load(model_dir, device=device) if device and info.get("kind") == "net" \
        else load_classifier(model_dir)
    if weights == "last":
        if info.get("kind") != "net":
            raise SpectroError(f"{path}: only networks have separate last weights")
        state = load_state_dict_file(os.path.join(path, "checkpoints", "last.pt"))
        clf.module_.load_state_dict(state)
    labels = read_json(os.path.join(path, "labels.json"))
    mean, std = read_norm(path)
    return Run(
        path=path, classifier=clf, labels=list(labels),
        feature_config=FeatureConfig.from_dict(read_json(os.path.join(path, "feature_config.json"))),
        train_config=TrainConfig.from_dict(read_json(os.path.join(path, "train_config.json"))),
        mean=mean, std=std, info=info,
    )
