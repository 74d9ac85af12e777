"""The training loop of every network: one epoch at a time, on any device, precision and process count.

:class:`Trainer` owns a network and everything that changes while it learns
(optimizer, scheduler, gradient scaler); :class:`LoopState` is where the loop
stands (epochs done, batches done in the current one, running sums, history,
best score). Both have plain ``state_dict``s, so a checkpoint written at any
batch boundary resumes exactly: the batches of an epoch are a pure function
of (seed, epoch) (:func:`spectro.dataset.feed.epoch_batches`), and the RNG state is
saved with them.

This module knows nothing of files: a run directory is written by the
recorder (:mod:`spectro.training.recorder`) that :meth:`Trainer.fit` calls back after
each epoch. :func:`fit_arrays` is the same loop on in-memory arrays, behind
:class:`spectro.training.classifier.NetClassifier`. The precision policy lives in
:mod:`spectro.utils.device`, the process group in :mod:`spectro.training.distributed`.
"""

from __future__ import annotations

import math
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from spectro.config import TrainConfig
from spectro.dataset.augment import Augment, mixup
from spectro.dataset.feed import StoreImages, epoch_batches, make_loader, normalise, shard
from spectro.errors import Diverged, SpectroError
from spectro.metrics.scores import metrics_from_confusion
from spectro.training.distributed import Distributed
from spectro.utils.signals import StopSignals
from spectro.utils.console import say
from spectro.utils.device import Precision, choose_precision, select_device

__all__ = ["lr_factor", "Trainer", "LoopState", "Diverged", "StopSignal", "get_rng_state", "set_rng_state",
           "fit_arrays"]

#: Steps between checks of the loss (finite?) and of a stop request: each check waits for the device.
CHECK_EVERY = 10


# ---------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------

def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps, then ``cosine`` decay to 0 at
    ``total`` or ``step``: x0.1 at 50% and again at 75% of ``total``.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return 0.1 ** ((step >= 0.5 * total) + (step >= 0.75 * total))
    raise ValueError(f"no factor for schedule {schedule!r}")


# ---------------------------------------------------------------------------
# Where the loop stands
# ---------------------------------------------------------------------------

@dataclass
class LoopState:
    """Position and bookkeeping of the loop: all plain values, saved in checkpoints.

    ``epoch`` epochs are done and ``batch`` batches of the next one; the
    ``run_*`` fields are the running sums of that partial epoch.
    """

    epoch: int = 0
    batch: int = 0
    run_loss: float = 0.0
    run_correct: int = 0
    run_seen: int = 0
    run_seconds: float = 0.0
    history: list = field(default_factory=list)
    best_score: Optional[list] = None  # [val macro-F1, -val loss]: larger is better
    best_epoch: int = 0
    bad_epochs: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, d: dict) -> "LoopState":
        return cls(**d)

    def reset_running(self) -> None:
        self.batch, self.run_loss, self.run_correct, self.run_seen, self.run_seconds = 0, 0.0, 0, 0, 0.0

    def record(self, row: dict) -> bool:
        """Append an epoch's row; return True when it is the best so far.

        Best: highest validation macro-F1, ties going to the lower validation
        loss; without a validation fold every epoch is the latest best.
        """
        self.history.append(row)
        if row.get("val_macro_f1") is None:
            score = [float(row["epoch"]), 0.0]
        else:
            score = [row["val_macro_f1"], -row["val_loss"]]
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, row["epoch"], 0
            return True
        self.bad_epochs += 1
        return False


def get_rng_state() -> dict:
    """This process's torch (CPU and CUDA), Python and numpy RNG states, as weights-only-loadable values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))


class StopSignal(StopSignals):
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into a request to stop at the next batch boundary.

    The loop then saves a resumable checkpoint. A second signal raises
    KeyboardInterrupt at once. Outside the main thread nothing is installed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requested = False
        self.signum = int(signal.SIGINT)  # the signal that asked (the exit status says which)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, int(signum)
        say(f"{signal.Signals(signum).name}: stopping after this batch to save a resumable checkpoint "
            "(again to abort at once)", fresh_line=True)


# ---------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------

class Trainer:
    """Train ``model`` on minibatches of a :class:`StoreImages`, validate on another.

    Parameters
    ----------
    model : nn.Module
        Maps normalised images (B, C, F, T) to logits (B, num_classes).
    config : TrainConfig
    train_data, val_data : StoreImages
        ``val_data`` may be None or empty (no validation).
    mean, std : np.ndarray [shape=(C, F)]
        Normalisation, applied on the device.
    device : torch.device
    precision : Precision
    dist : Distributed
    num_classes : int
    class_weight : np.ndarray [shape=(num_classes,)], optional
        Loss weights (``--balance``).
    progress : bool
        A progress bar on rank 0.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, train_data: StoreImages,
                 val_data: Optional[StoreImages], *, mean: np.ndarray, std: np.ndarray, device: torch.device,
                 precision: Precision, dist: Distributed, num_classes: int,
                 class_weight: Optional[np.ndarray] = None, progress: bool = False) -> None:
        self.cfg, self.device, self.precision, self.dist = config, device, precision, dist
        self.train_data, self.val_data, self.num_classes = train_data, val_data, num_classes
        self.progress = progress and dist.is_main
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)
        self.steps_per_epoch = len(self.batches(0))
        if self.steps_per_epoch == 0:
            raise SpectroError(
                f"batch size {config.batch_size} is larger than the {len(train_data)} training examples"
                + (f" ({len(train_data) // dist.world_size} per process)" if dist.enabled else "")
                + "; lower --batch-size")
        model = model.to(device)
        if precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.module = model  # the bare network: validation, checkpoints
        if dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.model = model  # what the training step calls
        self.optimizer = _optimizer(self.module, config)
        total = config.epochs * self.steps_per_epoch
        if config.schedule == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=config.learning_rate,
                                                                 total_steps=total)
        else:
            warmup = int(round(config.warmup_epochs * self.steps_per_epoch))
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda s: lr_factor(s, total=total, warmup=warmup, schedule=config.schedule))
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.scaler)
        weight = torch.as_tensor(class_weight, device=device) if class_weight is not None else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
        self.augment = Augment(tuple(train_data.features.shape[1:]), specaugment=config.specaugment,
                               time_shift=config.time_shift, gain_eq=config.gain_eq, std=self.std)
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.workers = config.workers if config.workers is not None else (4 if device.type == "cuda" else 0)
        # Running sums in float64 (exact resume, no drift over long epochs); MPS has no float64.
        self.acc_dtype = torch.float32 if device.type == "mps" else torch.float64

    # -- checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])

    # -- one epoch -----------------------------------------------------------
    def batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(len(self.train_data), self.cfg.batch_size, epoch=epoch, seed=self.cfg.seed,
                             shuffle=True, drop_last=True, rank=self.dist.rank, world_size=self.dist.world_size)

    def _autocast(self):
        p = self.precision
        return torch.autocast(self.device.type, dtype=p.dtype or torch.float32, enabled=p.dtype is not None)

    def train_epoch(self, state: LoopState, stop: Callable[[], bool]) -> bool:
        """Train epoch ``state.epoch`` from batch ``state.batch``; False when stopped early by ``stop``.

        Raises
        ------
        Diverged
            When the loss stops being finite; nothing is written by then.
        """
        self.model.train()
        batches = self.batches(state.epoch)
        loader = make_loader(self.train_data, batches[state.batch:], workers=self.workers,
                             pin_memory=self.device.type == "cuda")
        loss_sum = torch.tensor(state.run_loss, dtype=self.acc_dtype, device=self.device)
        correct = torch.tensor(state.run_correct, dtype=torch.int64, device=self.device)
        since_check = torch.zeros((), dtype=self.acc_dtype, device=self.device)
        bar = tqdm(total=len(batches), initial=state.batch, desc=f"epoch {state.epoch + 1}/{self.cfg.epochs}",
                   disable=None if self.progress else True, leave=False, file=sys.stderr, dynamic_ncols=True)
        t0 = time.perf_counter()
        stopped = False
        try:
            for i, (x, y) in enumerate(loader, start=state.batch):
                x = normalise(x.to(self.device, non_blocking=True), self.mean, self.std)  # (B, C, F, T) float32
                y = y.to(self.device, non_blocking=True)
                x = self.augment(x)
                lam, y_b = 1.0, y
                if self.cfg.mixup > 0:
                    x, y, y_b, lam = mixup(x, y, self.cfg.mixup)
                if self.precision.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self._autocast():
                    logits = self.model(x)
                    loss = self.criterion(logits, y)
                    if lam != 1.0:
                        loss = lam * loss + (1 - lam) * self.criterion(logits, y_b)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.cfg.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.grad_clip)
                self.last_lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                batch_loss = loss.detach().to(self.acc_dtype) * y.shape[0]
                loss_sum += batch_loss
                since_check += batch_loss
                correct += (logits.detach().argmax(1) == y).sum()
                state.batch, state.run_seen = i + 1, state.run_seen + y.shape[0]
                bar.update()
                if state.batch % CHECK_EVERY == 0 or state.batch == len(batches):
                    flags = self.dist.max_(torch.stack([(~torch.isfinite(since_check)).float(),
                                                        torch.tensor(float(stop()), device=self.device)]))
                    nonfinite, stop_now = (bool(v) for v in flags.tolist())
                    if nonfinite:
                        raise Diverged(f"the training loss stopped being finite (NaN or Inf) in epoch "
                                       f"{state.epoch + 1}, by batch {state.batch}")
                    since_check.zero_()
                    if self.progress:
                        bar.set_postfix(loss=f"{loss_sum.item() / max(state.run_seen, 1):.4f}")
                    if stop_now and state.batch < len(batches):
                        stopped = True
                        break
        finally:
            bar.close()
            state.run_seconds += time.perf_counter() - t0
            state.run_loss, state.run_correct = float(loss_sum.item()), int(correct.item())
        return not stopped

    def epoch_row(self, state: LoopState, val: dict, seconds: float) -> dict:
        """Reduce the running sums over ranks into one metrics.csv row."""
        sums = self.dist.sum_(torch.tensor([state.run_loss, state.run_correct, state.run_seen],
                                           dtype=self.acc_dtype, device=self.device)).tolist()
        seen = max(sums[2], 1.0)
        return {
            "epoch": state.epoch + 1,
            "lr": self.last_lr,
            "train_loss": sums[0] / seen,
            "train_accuracy": sums[1] / seen,
            "val_loss": val.get("loss"),
            "val_accuracy": val.get("accuracy"),
            "val_macro_f1": val.get("macro_f1"),
            "seconds": seconds,
            "samples_per_s": sums[2] / max(state.run_seconds, 1e-9),
        }

    @torch.no_grad()
    def validate(self) -> dict:
        """Loss, accuracy and macro-F1 on the validation data, each rank a share, reduced."""
        if self.val_data is None or len(self.val_data) == 0:
            return {}
        self.module.eval()
        positions = shard(np.arange(len(self.val_data)), self.dist.rank, self.dist.world_size)
        batches = [positions[i:i + self.cfg.batch_size] for i in range(0, positions.size, self.cfg.batch_size)]
        loader = make_loader(self.val_data, batches, workers=self.workers, pin_memory=self.device.type == "cuda")
        c = self.num_classes
        confusion = torch.zeros(c * c, dtype=self.acc_dtype, device=self.device)
        loss = torch.zeros(1, dtype=self.acc_dtype, device=self.device)
        for x, y in loader:
            x = normalise(x.to(self.device, non_blocking=True), self.mean, self.std)  # (B, C, F, T) float32
            y = y.to(self.device, non_blocking=True)
            if self.precision.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = self.module(x)
            logits = logits.float()
            loss += F.cross_entropy(logits, y, reduction="sum").to(self.acc_dtype)
            confusion += torch.bincount(y * c + logits.argmax(1), minlength=c * c).to(self.acc_dtype)
        self.dist.sum_(confusion)
        self.dist.sum_(loss)
        cm = confusion.view(c, c).cpu().numpy().astype(np.int64)  # (true, predicted)
        m = metrics_from_confusion(cm)
        return {"loss": float(loss.item()) / max(int(cm.sum()), 1), "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"]}

    # -- the loop ------------------------------------------------------------
    def fit(self, state: LoopState, *, stop: Callable[[], bool] = lambda: False,
            on_epoch_end: Optional[Callable[[dict, bool], bool]] = None) -> str:
        """Run epochs from ``state`` to the end.

        ``on_epoch_end(row, improved)`` runs on every rank after each epoch
        (write checkpoints there); returning True stops the loop (the decision
        of any rank stops all).

        Returns
        -------
        str
            ``"done"``, ``"early_stop"`` or ``"stopped"`` (``stop()`` or the
            callback; ``state`` then says where to resume).
        """
        while state.epoch < self.cfg.epochs:
            t0 = time.perf_counter() - state.run_seconds
            if not self.train_epoch(state, stop):
                return "stopped"
            val = self.validate()
            row = self.epoch_row(state, val, time.perf_counter() - t0)
            state.epoch += 1
            state.reset_running()
            improved = state.record(row)
            halt = bool(on_epoch_end(row, improved)) if on_epoch_end else False
            halt = bool(self.dist.max_(torch.tensor([float(halt or stop())], device=self.device)).item())
            if (self.cfg.early_stop is not None and val and state.bad_epochs >= self.cfg.early_stop
                    and state.epoch < self.cfg.epochs):
                return "early_stop"
            if halt and state.epoch < self.cfg.epochs:
                return "stopped"
        return "done"


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov, momentum 0.9) or AdamW; no weight decay on biases and BatchNorm parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def fit_arrays(model: torch.nn.Module, X: Any, y: np.ndarray, *, config: TrainConfig,
               X_val: Any = None, y_val: Optional[np.ndarray] = None, device: Optional[torch.device] = None,
               progress: bool = False) -> list[dict]:
    """Train ``model`` in place on in-memory (or memory-mapped) arrays; the loop behind ``NetClassifier.fit``.

    No normalisation (the images are used as given), no files. With
    validation data, the weights of the best validation epoch are restored
    at the end, as :func:`train` keeps its best checkpoint.

    Parameters
    ----------
    X : array [shape=(N, C, F, T)]; y : np.ndarray [shape=(N,), dtype=int64] class indices
    X_val, y_val : likewise, optional

    Returns
    -------
    list of dict
        One row per epoch (the columns of metrics.csv).
    """
    X, X_val = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for v in (X, X_val))
    y = np.asarray(y, dtype=np.int64)
    has_val = X_val is not None and y_val is not None and len(y_val) > 0
    # Classes: the network's output size (its last linear layer), at least every label seen.
    seen = int(max(y.max(), np.max(y_val) if has_val else 0)) + 1
    linear = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    num_classes = max(seen, linear[-1] if linear else 0)
    train_data = StoreImages(X, y, np.arange(len(y)))
    val_data = StoreImages(X_val, np.asarray(y_val, dtype=np.int64), np.arange(len(y_val))) if has_val else None
    config = config.replace(batch_size=min(config.batch_size, len(y)))  # arrays: one batch at most, not an error
    device = device or select_device(config.device)
    c, f = X.shape[1], X.shape[2]
    precision = choose_precision(device.type, config.amp, config.channels_last)
    trainer = Trainer(model, config, train_data, val_data, mean=np.zeros((c, f), np.float32),
                      std=np.ones((c, f), np.float32), device=device, precision=precision, dist=Distributed(),
                      num_classes=num_classes, progress=progress)
    state = LoopState()
    best: dict = {}

    def keep_best(row: dict, improved: bool) -> bool:
        if improved and val_data is not None:
            best.update({k: v.detach().clone() for k, v in trainer.module.state_dict().items()})
        return False

    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # augmentation and dropout; the caller's RNG is left as it was
        trainer.fit(state, on_epoch_end=keep_best)
    if best:
        trainer.module.load_state_dict(best)
    model.to(memory_format=torch.contiguous_format)
    return state.history
