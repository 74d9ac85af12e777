"""The recorder the training loop calls back: what a run directory learns after each epoch.

:class:`RunRecorder` is handed to :meth:`spectro.training.loop.Trainer.fit` as its
epoch-end callback. It writes the resumable checkpoint, the best weights
(as a saved :class:`~spectro.training.classifier.NetClassifier`), ``metrics.csv``,
``curves.png`` and the status in ``run.json``; the loop itself never
touches a file.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional

import torch

from spectro.config import TrainConfig
from spectro.errors import Diverged, SpectroError
from spectro.plots.figures import plot_curves
from spectro.training.distributed import Distributed
from spectro.training.loop import LoopState, Trainer, get_rng_state
from spectro.training.run import METRIC_COLUMNS, save_checkpoint, save_dir, write_run_info
from spectro.utils.files import write_csv

try:  # the optional extra (pip install 'spectro[tensorboard]'); torch raises ImportError without it
    from torch.utils.tensorboard import SummaryWriter
except ImportError:
    SummaryWriter = None

__all__ = ["RunRecorder", "write_history", "epoch_line", "PLOT_EVERY_S", "TENSORBOARD_DIR", "TENSORBOARD_TAGS",
           "check_tensorboard"]

PLOT_EVERY_S = 60.0  # seconds between redraws of curves.png while training
#: Where ``--tensorboard`` writes its event files, inside the run directory.
TENSORBOARD_DIR = "tensorboard"
#: TensorBoard tag of each metrics.csv column it logs per epoch.
TENSORBOARD_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
                    "val_accuracy": "accuracy/val", "val_macro_f1": "macro_f1/val", "lr": "lr"}


def check_tensorboard(config: TrainConfig) -> None:
    """``--tensorboard`` without the package is one line, before any file is written."""
    if config.tensorboard and SummaryWriter is None:
        raise SpectroError("--tensorboard needs the tensorboard package: pip install 'spectro[tensorboard]'")


def write_history(run_dir: str, history: list[dict], *, title: str, plot: bool = True) -> None:
    """metrics.csv, and with ``plot`` curves.png."""
    write_csv(os.path.join(run_dir, "metrics.csv"), METRIC_COLUMNS,
              [{k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS} for r in history])
    if plot and history:
        plot_curves(history, os.path.join(run_dir, "curves.png"), title=title)


def epoch_line(row: dict, epochs: int, improved: bool) -> str:
    """One metrics.csv row as the line printed after each epoch (``*``: a new best); no val columns
    when the run has no validation set."""
    def f(v: Any, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)

    val = (f"val loss {f(row['val_loss'])}  val acc {f(row['val_accuracy'])}  val F1 {f(row['val_macro_f1'])}  "
           if row.get("val_loss") is not None or row.get("val_accuracy") is not None else "")
    return (f"epoch {row['epoch']}/{epochs}  loss {f(row['train_loss'])}  acc {f(row['train_accuracy'])}  "
            f"{val}lr {f(row['lr'], '.2e')}  {row['seconds']:.1f} s  {row['samples_per_s']:.0f}/s"
            + ("  *" if improved else ""))


class RunRecorder:
    """Write a network's progress into its run directory; rank 0 writes, every rank takes part.

    Parameters
    ----------
    run_dir : str
    store : Store
        Recorded in run.json (path, fingerprint, size).
    config : TrainConfig
    split : spectro.dataset.splits.Split
    classifier : NetClassifier
        Holds the network being trained (``init_module``); saved as ``model/``
        whenever an epoch improves on the best.
    trainer : Trainer
    state : LoopState
    dist : Distributed
    say : callable
        Prints one line (see :func:`spectro.utils.console.printer`).
    on_epoch : callable, optional
        ``on_epoch(row, module)`` after the epoch's files are written; True stops training.
    """

    def __init__(self, run_dir: str, store: Any, config: TrainConfig, split: Any, classifier: Any,
                 trainer: Trainer, state: LoopState, dist: Distributed, say: Callable[[str], None],
                 on_epoch: Optional[Callable[[dict, Any], Optional[bool]]] = None) -> None:
        self.run_dir, self.store, self.cfg, self.split = run_dir, store, config, split
        self.classifier, self.trainer, self.state, self.dist = classifier, trainer, state, dist
        self.say, self.on_epoch = say, on_epoch
        self.title = f"{config.model} on {os.path.basename(os.path.normpath(store.path))}"
        self._last_plot = time.monotonic()
        #: Epochs done at the last checkpoint written (the one a resume starts from).
        self.saved_epoch = state.epoch
        check_tensorboard(config)
        self.tensorboard = SummaryWriter(os.path.join(run_dir, TENSORBOARD_DIR)) \
            if config.tensorboard and dist.is_main else None

    def close(self) -> None:
        """Flush and close the TensorBoard log, if any."""
        if self.tensorboard is not None:
            self.tensorboard.close()

    def checkpoint(self) -> None:
        """``checkpoints/last.pt``: everything a resume needs (every rank's RNG state gathered).

        Raises
        ------
        Diverged
            When a weight is NaN or infinite (an optimizer step can break them
            before the loss shows it): the previous checkpoint is kept.
        """
        module = self.trainer.module
        finite = all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())
        if not bool(self.dist.max_(torch.tensor([float(not finite)], device=self.trainer.device)).item() == 0):
            raise Diverged(f"the weights stopped being finite (NaN or Inf) by epoch {self.state.epoch}")
        rngs = self.dist.gather(get_rng_state())
        if self.dist.is_main:
            save_checkpoint(os.path.join(self.run_dir, "checkpoints", "last.pt"), {
                "trainer": self.trainer.state_dict(), "loop": self.state.state_dict(), "rng": rngs,
                "model": self.trainer.module.state_dict(), "train_config": self.cfg.to_dict(),
            })
        self.saved_epoch = self.state.epoch

    def status(self, status: str, **fields: Any) -> None:
        """Record ``status`` (and where the loop stands) in run.json."""
        if self.dist.is_main:
            write_run_info(self.run_dir, self.store, self.cfg, self.split, status=status,
                           epochs_done=self.state.epoch, best_epoch=self.state.best_epoch,
                           precision=self.trainer.precision_note(), **fields)

    def history(self, *, plot: bool = True) -> None:
        if self.dist.is_main:
            write_history(self.run_dir, self.state.history, title=self.title, plot=plot)

    def on_epoch_end(self, row: dict, improved: bool) -> bool:
        """The loop's callback: checkpoint, best weights, metrics, curves, status; True stops training."""
        self.checkpoint()
        if self.dist.is_main:
            if improved:
                self.classifier.history_ = self.state.history
                save_dir(self.classifier.save, os.path.join(self.run_dir, "model"))
            # The figure costs ~0.2 s: redrawn once a minute, and at the end.
            plot = time.monotonic() - self._last_plot > PLOT_EVERY_S
            self.history(plot=plot)
            if plot:
                self._last_plot = time.monotonic()
            self.status("running")
            if self.tensorboard is not None:
                for column, tag in TENSORBOARD_TAGS.items():
                    if row.get(column) is not None:
                        self.tensorboard.add_scalar(tag, row[column], row["epoch"])
                self.tensorboard.flush()
            self.say(epoch_line(row, self.cfg.epochs, improved))
        return bool(self.on_epoch(row, self.trainer.module)) if self.on_epoch else False
