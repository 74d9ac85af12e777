"""A training run on disk: :class:`RunDir`, the one owner of its files, and :func:`load_run`.

:class:`RunDir` writes and reads every file of the layout below (``eval/``
aside, which :func:`spectro.training.evaluate.evaluate` writes); run.json is
kept in memory and written whole, never read back by the process writing it.
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
    tensorboard/         with --tensorboard: the same rows as event files
    model/               the best classifier (spectro.models save format)
    checkpoints/last.pt  the latest state (weights, optimizer, scheduler,
                         scaler, RNG, position in the epoch): ``--resume``;
                         once the run is done, the last weights alone
    eval/                what ``spectro evaluate`` writes

Opening a run never executes code from it: configs are JSON, weights are
read with ``torch.load(weights_only=True)`` and the SVM through skops with
an allow-list of types, so a run someone sent you is safe to load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional

import numpy as np
import torch

from spectro.config import FeatureConfig, TrainConfig
from spectro.dataset.feed import normalise
from spectro.errors import SpectroError, first_line
from spectro.models.weights import check_finite_weights, save_tensors
from spectro.plots.figures import plot_curves
from spectro.training.classifier import classifier_class, load_classifier
from spectro.training.health import divergence_advice
from spectro.utils.device import versions
from spectro.utils.files import read_csv, read_json, swap_dir, write_csv, write_json
from spectro.utils.workers import process_alive

__all__ = ["Run", "RunDir", "load_run", "live_status", "RUN_FORMAT", "CHECKPOINT_FORMAT", "METRIC_COLUMNS",
           "TENSORBOARD_DIR", "read_run_info", "run_status", "save_checkpoint", "load_checkpoint", "save_dir",
           "read_run_json", "read_run_csv", "read_split", "write_split", "read_norm", "write_norm", "read_labels",
           "slim_checkpoint", "clear_run", "RUN_ENTRIES", "check_label_order", "diverged_advice"]

RUN_FORMAT = "spectro-run-1"
CHECKPOINT_FORMAT = "spectro-checkpoint-1"
#: Columns of metrics.csv, one row per epoch.
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                  "seconds", "samples_per_s"]
#: Where ``--tensorboard`` writes its event files, inside the run directory.
TENSORBOARD_DIR = "tensorboard"


# ---------------------------------------------------------------------------
# Reading and writing the pieces of a run
# ---------------------------------------------------------------------------

def read_run_json(path: str) -> Any:
    """A JSON file of a run; a missing or broken one is one line naming it."""
    return read_json(path, what="spectro run")


def read_config(cls: Any, path: str) -> Any:
    """A FeatureConfig or TrainConfig from its JSON file; an unusable one names the file."""
    return cls.from_dict(read_run_json(path), source=path)


def read_run_csv(path: str) -> list[dict[str, str]]:
    """A CSV file of a run; a missing one is one line naming it."""
    return read_csv(path, what="spectro run")


def write_split(path: str, store: Any, roles: np.ndarray) -> None:
    """``split.csv``: id, row, fold and role of every store row."""
    rows = [{"id": store.ids[i], "row": i, "fold": int(store.folds[i]), "role": roles[i]} for i in range(len(store))]
    write_csv(path, ["id", "row", "fold", "role"], rows)


def read_split(path: str) -> dict[str, list[str]]:
    """``role -> example ids`` from ``split.csv``."""
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for r in read_run_csv(os.path.join(path, "split.csv")):
        if r["role"] in out:
            out[r["role"]].append(r["id"])
    return out


def read_labels(run_dir: str, *, outputs: int, classes: Optional[Any] = None) -> list[str]:
    """``labels.json``: one class name (a string) per output of the model; anything else names the file.

    ``classes``: the model's own class names in output order (model.json); labels.json must list the
    same names in the same order, or every prediction would carry another class's name.
    """
    path = os.path.join(run_dir, "labels.json")
    labels = read_run_json(path)
    if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
        raise SpectroError(f"{path}: must be a list of class names (strings), got {json.dumps(labels)[:200]}")
    if len(labels) != outputs:
        raise SpectroError(f"{path}: {len(labels)} class names, but the model has {outputs} outputs")
    if len(set(labels)) != len(labels):
        raise SpectroError(f"{path}: class names must be distinct, got {labels}")
    names = list(classes) if classes is not None else []
    if names and all(isinstance(c, str) for c in names):  # a model fitted on class indices has no names to match
        check_label_order(path, labels, [str(c) for c in names])
    return labels


def check_label_order(path: str, labels: list[str], classes: list[str]) -> None:
    """``labels`` (``path``) and the model's ``classes`` name the same outputs in the same order."""
    if labels == classes:
        return
    where = next(i for i, (a, b) in enumerate(zip(labels, classes)) if a != b) if set(labels) == set(classes) else None
    why = (f"output {where} is {labels[where]!r} there but {classes[where]!r} in model/model.json"
           if where is not None else f"its classes {labels[:5]} are not model/model.json's {classes[:5]}")
    raise SpectroError(f"{path} does not match the model: {why}; restore labels.json from the run as trained")


def write_norm(path: str, mean: np.ndarray, std: np.ndarray) -> None:
    write_json(path, {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()})


def read_norm(run_dir: str) -> tuple[np.ndarray, np.ndarray]:
    d = read_run_json(os.path.join(run_dir, "norm.json"))
    try:
        mean, std = np.asarray(d["mean"], dtype=np.float32), np.asarray(d["std"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise SpectroError(f"{run_dir}/norm.json does not hold per-frequency mean and std") from None
    if mean.shape != std.shape or mean.ndim != 2 or not np.all(std > 0):
        raise SpectroError(f"{run_dir}/norm.json: mean and std must be (channels, frequencies), std > 0")
    return mean, std


def live_status(info: dict) -> str:
    """run.json's status, with ``running`` read as ``interrupted`` when its process is gone (same host)."""
    status = info.get("status", "unknown")
    proc = info.get("process") or {}
    if status == "running" and proc.get("host") == socket.gethostname() and not process_alive(proc.get("pid")):
        return "interrupted"
    return status



def run_status(run_dir: str) -> Optional[str]:
    """The status in run.json (``running``, ``done``, ``interrupted``, ``diverged``), None without one."""
    if not os.path.isfile(os.path.join(run_dir, "run.json")):
        return None
    return live_status(read_run_json(os.path.join(run_dir, "run.json")))


#: Everything spectro writes inside a run directory (see the module docstring); nothing else is ever removed.
RUN_ENTRIES = ("run.json", "train_config.json", "feature_config.json", "labels.json", "norm.json", "split.csv",
               "metrics.csv", "curves.png", "model", "model.tmp", "checkpoints", "eval", "tensorboard")


def clear_run(run_dir: str) -> list[str]:
    """Remove what spectro wrote in ``run_dir`` (a run that died early) and return the names it kept.

    Only :data:`RUN_ENTRIES`, the hidden temporary files of atomic writes
    (``.tmp-*``) and the backups of directory swaps (``.model.old-*``) go; a
    user's notes or data beside them stay where they are.
    """
    kept = []
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        if name in RUN_ENTRIES or name.startswith(".tmp-") or name.startswith(".model.old-"):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        else:
            kept.append(name)
    return kept


def save_checkpoint(path: str, obj: dict) -> None:
    """Write a training checkpoint (plain containers of tensors and numbers) atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_tensors({"format": CHECKPOINT_FORMAT, **obj}, path)


def slim_checkpoint(path: str) -> None:
    """Keep only the last weights (and the loop's record) of a finished run's checkpoint.

    The optimizer's state (two more copies of the weights for AdamW, one for
    SGD's momentum), the scheduler and the RNG states serve a resume alone;
    a finished run has nothing to resume, so its folder holds the best and
    the last weights only.
    """
    ckpt = load_checkpoint(path)
    save_checkpoint(path, {k: ckpt[k] for k in ("loop", "model", "train_config") if k in ckpt} | {"finished": True})


def load_checkpoint(path: str) -> dict:
    """A training checkpoint, read weights-only: it cannot run code."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything else is "not a usable checkpoint"
        raise SpectroError(f"refusing to load {path}: not a weights-only spectro checkpoint "
                           f"({first_line(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or not isinstance(ckpt.get("model"), dict):
        raise SpectroError(f"{path} is not a spectro training checkpoint")
    check_finite_weights(ckpt["model"], path)  # before any work: a resume from it would diverge at once
    return ckpt


def save_dir(save: Callable[[str], Any], path: str) -> None:
    """``save(tmp)`` then swap ``tmp`` in for ``path``: a crash never leaves a half-written model."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save(tmp)
        swap_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a full disk: no half-written copy left behind
        raise


# ---------------------------------------------------------------------------
# The run folder
# ---------------------------------------------------------------------------

class RunDir:
    """A run folder, written and read through here alone (the layout in this module's docstring).

    ``info`` is run.json as this process knows it: :meth:`record` updates it
    and writes it whole, so the file is never read back by the process writing it.
    """

    def __init__(self, path: str, info: Optional[dict] = None) -> None:
        self.path = path
        self.info: dict = dict(info or {})

    @classmethod
    def open(cls, path: str) -> RunDir:
        """An existing run (one read of run.json, checked to be a spectro run)."""
        return cls(path, read_run_info(path))

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @property
    def checkpoint_path(self) -> str:
        return self.file("checkpoints", "last.pt")

    @property
    def model_path(self) -> str:
        return self.file("model")

    @property
    def tensorboard_path(self) -> str:
        return self.file(TENSORBOARD_DIR)

    def has_model(self) -> bool:
        return os.path.isfile(os.path.join(self.model_path, "model.json"))

    def create(self, store: Any, cfg: TrainConfig, split: Any, mean: np.ndarray, std: np.ndarray) -> None:
        """Lay out a new run: its configs, labels, normalisation, split and a ``running`` run.json.

        A full disk before the run began leaves nothing that blocks the next try.
        """
        existed = os.path.isdir(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
            write_json(self.file("train_config.json"), cfg.to_dict())
            write_json(self.file("feature_config.json"), store.config.to_dict())
            write_json(self.file("labels.json"), list(store.labels))
            write_norm(self.file("norm.json"), mean, std)
            write_split(self.file("split.csv"), store, split.role_of_rows(len(store)))
            self.describe(store, cfg, split)
            self.record(status="running", epochs_done=0)
        except OSError:  # only what spectro wrote goes
            with contextlib.suppress(OSError):
                clear_run(self.path)
            if not existed:
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    def describe(self, store: Any, cfg: TrainConfig, split: Any) -> None:
        """What the run is (model, store, folds, versions), for run.json; written with the next :meth:`record`."""
        self.info.update({
            "format": RUN_FORMAT, "model": cfg.model, "kind": classifier_class(cfg.model).kind,
            "store": {"path": os.path.abspath(store.path), "fingerprint": store.config.fingerprint(),
                      "examples": len(store)},
            "folds": {"test": split.test_fold, "val": split.val_fold,
                      "train": sorted(set(store.folds[split.train].tolist()))},
            "examples": {"train": int(split.train.size), "val": int(split.val.size), "test": int(split.test.size)},
            "versions": versions(),
        })
        self.info.setdefault("created", datetime.now().isoformat(timespec="seconds"))

    def record(self, **fields: Any) -> None:
        """Update run.json with ``fields`` (status, epochs done, best epoch, test metrics, ...)."""
        self.info.update(fields)
        if self.info.get("status") == "running":  # who runs it: a later reader can tell a dead run from a live one
            self.info["process"] = {"pid": os.getpid(), "host": socket.gethostname()}
        write_json(self.file("run.json"), self.info)

    def write_history(self, history: list[dict], *, title: str, plot: bool = True) -> None:
        """metrics.csv, and with ``plot`` curves.png."""
        write_csv(self.file("metrics.csv"), METRIC_COLUMNS,
                  [{k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS} for r in history])
        if plot and history:
            plot_curves(history, self.file("curves.png"), title=title)

    def save_model(self, classifier: Any) -> None:
        """``model/``: the classifier as it stands (the best so far)."""
        save_dir(classifier.save, self.model_path)

    def save_checkpoint(self, state: dict, cfg: TrainConfig) -> None:
        """``checkpoints/last.pt``: a fit's resume state and the TrainConfig."""
        save_checkpoint(self.checkpoint_path, {**state, "train_config": cfg.to_dict()})

    def slim_checkpoint(self) -> None:
        if os.path.isfile(self.checkpoint_path):
            slim_checkpoint(self.checkpoint_path)

    def resume_point(self) -> tuple[Optional[dict], bool]:
        """``(resume state or None, finished)`` of an interrupted run.

        Finished: a checkpoint that kept the last weights alone, or a classifier fitted once
        (no checkpoint) that was saved.
        """
        if not os.path.isfile(self.checkpoint_path):
            return None, self.has_model()
        ckpt = load_checkpoint(self.checkpoint_path)
        return (ckpt, False) if "trainer" in ckpt else (None, True)


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
        return normalise(images, self.mean, self.std)

    def predict_proba(self, images: Any, *, chunk: int = 2048, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities [shape=(N, len(labels))] of raw images [shape=(N, C, F, T)].

        Read ``chunk`` images at a time, so a memory-mapped array never sits in memory whole;
        ``batch_size`` images go through a network at once (None: its training batch size).
        """
        n = len(images)
        expected = tuple(self.mean.shape) + (self.feature_config.n_frames,)
        if n and tuple(images.shape[1:]) != expected:
            raise SpectroError(f"images shaped {tuple(images.shape[1:])}; this run expects {expected}")
        parts = [self.classifier.predict_proba(self.normalise(images[s:s + chunk]), batch_size=batch_size)
                 for s in range(0, n, chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)))

    def predict(self, images: Any) -> np.ndarray:
        """Class names [shape=(N,)] of raw images."""
        return np.asarray(self.labels, dtype=object)[np.argmax(self.predict_proba(images), axis=1)]

    @property
    def status(self) -> str:
        """``done``, ``running``, ``interrupted`` (also a ``running`` run whose process died) or ``diverged``."""
        return live_status(self.info)

    @property
    def test_metrics(self) -> Optional[dict]:
        """Headline test metrics written at the end of training (None if not yet)."""
        return self.info.get("test")


def read_run_info(path: str) -> dict:
    """run.json of ``path``, checked to be a spectro run."""
    if not os.path.isdir(path):
        raise SpectroError(f"run not found: {path}")
    info = read_run_json(os.path.join(path, "run.json"))
    if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
        raise SpectroError(f"{path} is not a spectro run (run.json has no {RUN_FORMAT!r} format)")
    return info


def diverged_advice(path: str, info: dict) -> str:
    """What to do about the diverged run ``path`` (run.json ``info``): its recorded advice, or one made from
    its train_config.json (:func:`~spectro.training.health.divergence_advice`)."""
    if info.get("advice"):
        return str(info["advice"])
    try:
        cfg = read_run_json(os.path.join(path, "train_config.json"))
    except SpectroError:
        cfg = {}
    return divergence_advice(cfg if isinstance(cfg, dict) else {}, precision=info.get("precision"))


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
    if weights not in ("best", "last"):
        raise SpectroError(f"weights must be 'best' or 'last', got {weights!r}")
    info = read_run_info(path)
    model_dir = os.path.join(path, "model")
    if not os.path.isfile(os.path.join(model_dir, "model.json")):
        status = live_status(info)
        if status != info.get("status"):  # run.json says running, but its process is gone (killed)
            status += f": the process that trained it ({(info.get('process') or {}).get('pid')}) is gone"
        if status == "diverged":
            raise SpectroError(f"{path} has no trained model: its training diverged ({info.get('error')}); "
                               + diverged_advice(path, info))
        raise SpectroError(f"{path} has no trained model yet (status: {status}); "
                           f"continue it with: spectro train --resume {path}")
    clf = load_classifier(model_dir, device=device)
    if weights == "last":
        clf.load_last_weights(os.path.join(path, "checkpoints", "last.pt"))
    labels = read_labels(path, outputs=len(clf.classes_), classes=clf.classes_)
    mean, std = read_norm(path)
    return Run(
        path=path, classifier=clf, labels=labels,
        feature_config=read_config(FeatureConfig, os.path.join(path, "feature_config.json")),
        train_config=read_config(TrainConfig, os.path.join(path, "train_config.json")),
        mean=mean, std=std, info=info,
    )
