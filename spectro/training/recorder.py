"""The run recorder: the callback through which every fit writes its run directory.

:class:`RunRecorder` is the :class:`~spectro.models.base.FitCallback` that
``spectro train`` hands to ``Classifier.fit``, whatever the kind: after
each epoch (once, for a classifier fitted once) it writes the resumable
checkpoint, the best classifier, ``metrics.csv``, ``curves.png``, the status
in ``run.json`` and, with ``--tensorboard``, the event files, all through
:class:`~spectro.training.run.RunDir`; it turns Ctrl-C and SIGTERM into a
request to stop. The loop itself never touches a file.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable, Optional

from spectro.config import TrainConfig
from spectro.errors import SpectroError
from spectro.models.base import EpochEnd, FitCallback
from spectro.training.distributed import Distributed
from spectro.training.run import RunDir
from spectro.utils.console import say
from spectro.utils.signals import StopSignals

try:  # the optional extra (pip install 'spectro[tensorboard]'); torch raises ImportError without it
    from torch.utils.tensorboard import SummaryWriter
except ImportError:
    SummaryWriter = None

__all__ = ["RunRecorder", "StopSignal", "epoch_line", "fit_line", "PLOT_EVERY_S", "TENSORBOARD_TAGS", "check_tensorboard"]

PLOT_EVERY_S = 60.0  # seconds between redraws of curves.png while training
#: TensorBoard tag of each metrics.csv column it logs per epoch.
TENSORBOARD_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
                    "val_accuracy": "accuracy/val", "val_macro_f1": "macro_f1/val", "lr": "lr"}


def check_tensorboard(config: TrainConfig) -> None:
    """``--tensorboard`` without the package is one line, before any file is written."""
    if config.tensorboard and SummaryWriter is None:
        raise SpectroError("--tensorboard needs the tensorboard package: pip install 'spectro[tensorboard]'")


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


def fit_line(row: dict, found: str) -> str:
    """The line after the one fit of a classifier fitted once (no resume state): what it found, no epochs."""
    return f"fitted in {row['seconds']:.1f} s: {found + '; ' if found else ''}training accuracy {row['train_accuracy']:.4f}"


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


class RunRecorder(FitCallback):
    """Write a fit's progress into its run directory; rank 0 writes, every rank takes part.

    Parameters
    ----------
    run : RunDir
    config : TrainConfig
    about : str
        The split, for the line that opens training ("480 train, 0 validation (...), 120 test ...").
    dist : Distributed
    say : callable
        Prints one line (see :func:`spectro.utils.console.printer`).
    resumed : bool
        The run continues an earlier one.
    on_epoch : callable, optional
        ``on_epoch(row, module)`` after the epoch's files are written; True stops training.
    tensorboard : bool
        Also log each row for TensorBoard (rank 0).
    """

    def __init__(self, run: RunDir, config: TrainConfig, about: str, dist: Distributed, say: Callable[[str], None],
                 *, resumed: bool = False,
                 on_epoch: Optional[Callable[[dict, Any], Optional[bool]]] = None, tensorboard: bool = False) -> None:
        self.run, self.cfg, self.about, self.dist, self.say = run, config, about, dist, say
        self.resumed, self.on_epoch = resumed, on_epoch
        #: Ctrl-C and SIGTERM, caught once a fit that can stop resumably begins (see :class:`StopSignal`).
        self.stop: Optional[StopSignal] = None
        self.title = f"{config.model} on {os.path.basename(os.path.normpath(run.info['store']['path']))}"
        self.epochs = config.epochs
        self._last_plot = time.monotonic()
        #: Epochs done at the last checkpoint written (the one a resume starts from).
        self.saved_epoch = int(run.info.get("epochs_done") or 0) if resumed else 0
        #: Where the fit stands, for run.json: epochs done and the best of them.
        self.epochs_done, self.best_epoch = self.saved_epoch, int(run.info.get("best_epoch") or 0) if resumed else 0
        #: This process saved the best classifier (it holds the best weights itself).
        self.saved_model = False
        self.history: list[dict] = []
        #: What the fit computes in (the policy and any layers kept in float32), for run.json.
        self.precision: Optional[str] = None
        self.tensorboard = SummaryWriter(run.tensorboard_path) if tensorboard and dist.is_main else None

    def close(self) -> None:
        """Restore the signal handlers; flush and close the TensorBoard log, if any."""
        if self.stop is not None:
            self.stop.__exit__(None, None, None)
        if self.tensorboard is not None:
            self.tensorboard.close()

    @property
    def signalled(self) -> bool:
        """Ctrl-C or SIGTERM asked this process to stop."""
        return bool(self.stop is not None and self.stop.requested)

    # -- the callback --------------------------------------------------------
    def on_fit_start(self, what: str, *, epoch: int = 0, batch: int = 0, epochs: int = 1,
                     resumable: bool = False, precision: Optional[str] = None, data: Optional[str] = None) -> None:
        self.epochs, self.precision = epochs, precision
        if resumable and self.stop is None:  # a first signal stops at a batch boundary, resumably
            self.stop = StopSignal().__enter__()
        if self.resumed and epoch >= epochs:
            self.say(f"{self.run.path} already finished its {epochs} epochs; nothing to resume")
        elif self.resumed:
            self.say(f"resuming {self.run.path} at epoch {epoch + 1}, batch {batch}")
        self.say(f"training {what}: {self.about} -> {self.run.path}" + (f"; data {data}" if data else ""))

    def stop_requested(self) -> bool:
        return self.signalled

    def on_stop(self, end: EpochEnd) -> None:
        self.checkpoint(end)

    def on_epoch_end(self, end: EpochEnd) -> bool:
        """Checkpoint, best classifier, metrics, curves, status; True stops training."""
        self.checkpoint(end)
        row, clf = end.row, end.classifier
        self.history = clf.history_
        self.epochs_done = row["epoch"]
        if end.improved:
            self.best_epoch = row["epoch"]
        if self.dist.is_main:
            if end.improved:
                self.run.save_model(clf)
                self.saved_model = True
            # The figure costs ~0.2 s: redrawn once a minute, and at the end.
            plot = time.monotonic() - self._last_plot > PLOT_EVERY_S
            self.run.write_history(self.history, title=self.title, plot=plot)
            if plot:
                self._last_plot = time.monotonic()
            self.status("running")
            if self.tensorboard is not None:
                for column, tag in TENSORBOARD_TAGS.items():
                    if row.get(column) is not None:
                        self.tensorboard.add_scalar(tag, row[column], row["epoch"])
                self.tensorboard.flush()
            self.say(epoch_line(row, self.epochs, end.improved) if end.resume_state is not None
                     else fit_line(row, clf.describe_fit()))
        return bool(self.on_epoch(row, clf.network)) if self.on_epoch else False

    # -- what it writes ------------------------------------------------------
    def checkpoint(self, end: EpochEnd) -> None:
        """``checkpoints/last.pt``: everything a resume needs; nothing for a fit that has no resume state.

        Raises
        ------
        Diverged
            From the fit's resume state, when a weight is NaN or infinite: the previous checkpoint is kept.
        """
        if end.resume_state is None:
            return
        state = end.resume_state()  # every rank: the RNG states are gathered
        if self.dist.is_main:
            self.run.save_checkpoint(state, self.cfg)
        self.saved_epoch = state["loop"]["epoch"]

    def status(self, status: str, **fields: Any) -> None:
        """Record ``status`` (and where the fit stands) in run.json."""
        if self.dist.is_main:
            where = {"precision": self.precision} if self.precision is not None else {}
            self.run.record(status=status, epochs_done=self.epochs_done, best_epoch=self.best_epoch, **where,
                            **fields)
