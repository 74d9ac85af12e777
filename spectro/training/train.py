"""``train``: a store and a model name become a run directory, through one ``Classifier.fit``.

One driver for every model kind, as torchvision's ``references/classification/train.py``:
prepare the job (check the settings and the store, split, normalise, lay out
the run folder, or reopen an interrupted one), call the classifier's ``fit``
with a :class:`~spectro.training.recorder.RunRecorder` as its callback (the
networks epoch by epoch, data-parallel under torchrun and exactly resumable;
the SVM in one fit it reports as one epoch), then finish the run: its
history, status and warnings, and the test fold scored once by
:func:`spectro.training.evaluate.evaluate`. Which class serves a model is
asked once, of :func:`spectro.training.classifier.classifier_class`; the run
folder is :class:`spectro.training.run.RunDir`'s. Cross-validation is
:mod:`spectro.training.cv`.

Splits: the test fold never influences training. Normalisation statistics
come from the training rows alone, model selection and early stopping
look at the validation fold alone, and the test fold is scored once, at the
end, with the best weights.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from spectro.config import RUNTIME_FIELDS, TrainConfig
from spectro.dataset.feed import NormalisedRows, norm_stats
from spectro.dataset.splits import Split, make_split, rows_of_ids
from spectro.errors import Diverged, SpectroError, TrainingInterrupted, cannot_write
from spectro.metrics.scores import HEADLINE
from spectro.models.base import Classifier, Stop
from spectro.signals.store import Store, open_store
from spectro.training.classifier import classifier_class
from spectro.training.distributed import Distributed
from spectro.training.evaluate import evaluate
from spectro.training.health import divergence_advice, run_warnings, unseen_classes
from spectro.training.recorder import RunRecorder, check_tensorboard
from spectro.training.run import Run, RunDir, clear_run, diverged_advice, load_run, read_config, read_norm, read_run_info, read_split, run_status
from spectro.utils.console import note, printer
from spectro.utils.device import select_device
from spectro.utils.files import exclusive

__all__ = ["train", "TrainingInterrupted", "check_store", "default_out", "changed_settings", "config_with"]


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def train(
    store: Union[str, Store, None] = None,
    model: Optional[str] = None,
    out: Optional[str] = None,
    *,
    config: Optional[TrainConfig] = None,
    resume: Optional[str] = None,
    progress: bool = True,
    on_epoch: Optional[Callable[[dict, Any], Optional[bool]]] = None,
    **settings: Any,
) -> Optional[Run]:
    """Train ``model`` on ``store`` into the run directory ``out``.

    Parameters
    ----------
    store : str or Store
        The feature store (optional with ``resume``: the run remembers it).
    model : str
        A registered model name, e.g. ``"resnet18"``, ``"cnn"``, ``"svm"``.
    out : str, optional
        Run directory; default ``runs/<model>-<date>-<time>``. Must not hold a run.
    config : TrainConfig, optional
        Base settings; ``settings`` (any TrainConfig field) override it.
    resume : str, optional
        Continue this interrupted run from its last checkpoint with its own
        settings (only ``device`` and ``workers`` may change).
    progress : bool
        Progress bar and one line per epoch on stderr.
    on_epoch : callable, optional
        ``on_epoch(row, network)`` after each epoch's checkpoint is written
        (``network``: the ``nn.Module``, None for the SVM); returning True
        stops training there, resumably.

    Returns
    -------
    Run or None
        The trained run (see :func:`spectro.training.run.load_run`); None on the
        processes of rank > 0 under torchrun. ``run.status`` is ``"done"``,
        or ``"interrupted"`` when ``on_epoch`` stopped it.

    Raises
    ------
    SpectroError
        Bad settings or store (one class, missing fold, unknown model, batch
        larger than the training set, resuming against a store with another
        FeatureConfig) and a loss that stops being finite (the last good
        checkpoint is kept).
    TrainingInterrupted
        After Ctrl-C, once a resumable checkpoint is saved.
    """
    dist = Distributed.from_env()
    if resume is not None:
        cfg = _resumed_config(resume, model, config, settings)
    else:
        cfg = config_with(config, model, settings)
    given = frozenset(settings) | frozenset(changed_settings(config))
    cls = classifier_class(cfg.model)  # the one dispatch point: what follows asks the class, never the name
    if not cls.parallel:
        if not dist.is_main:
            return None  # one process fits it; the others have nothing to do
        dist = Distributed()
    # The run directory is locked (rank 0) from before its first file to the end: two `train`s
    # into one folder do not race; the second says another process is writing there.
    job: _Job | None = None
    with contextlib.ExitStack() as lock:
        try:
            owner = cls.parallel and dist.init(select_device(cfg.device, local_rank=dist.local_rank))
            try:
                job = _resume_job(resume, store, cfg, lock) if resume is not None \
                    else _new_job(store, out, cfg, cls, dist, given, lock)
                fitted = _fit(job, cls, dist, progress, on_epoch, given)
                # No process leaves (or starts the next fold) while another still talks to it.
                dist.barrier()
            finally:
                if owner:
                    dist.close()
            return _finish(job, dist, fitted, printer(progress and dist.is_main))
        except OSError as err:
            failure = _write_failure(err, job)
            if failure is None:
                raise
            raise failure from None


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _write_failure(err: OSError, job: _Job | None) -> SpectroError | None:
    """A full disk or a read-only place: one line, and the run marked ``failed`` (None: another OSError).

    Every file of a run is written atomically, so the last checkpoint is whole and a resume
    continues from it once there is room.
    """
    resumable = job is not None and os.path.isfile(job.run.checkpoint_path)
    # Space and permissions have different fixes: a read-only folder is not helped by freeing space.
    fix = "free some space" if err.errno in _NO_SPACE else "it is not writable: make it writable"
    advice = (f"{fix}, then continue with: spectro train --resume {job.run.path}" if resumable
              else f"{fix} or choose another --out")
    failure = cannot_write(err, advice)
    if failure is not None and job is not None:
        with contextlib.suppress(OSError):  # the disk may still be too full for run.json
            job.run.record(status="failed", error=str(failure))
    return failure


# ---------------------------------------------------------------------------
# Preparing a job: new or resumed
# ---------------------------------------------------------------------------

@dataclass
class _Job:
    """A run ready to fit: its folder, store, settings, split and normalisation; where a resume starts."""

    run: RunDir
    store: Store
    cfg: TrainConfig
    split: Split
    mean: np.ndarray
    std: np.ndarray
    resumed: bool = False
    checkpoint: Optional[dict] = None  # the resume state of an interrupted fit
    finished: bool = False  # resumed, but nothing is left to fit


def config_with(config: Optional[TrainConfig], model: Optional[str], settings: dict) -> TrainConfig:
    """``config`` (or the defaults) with ``model`` and ``settings`` applied; an unknown model fails here."""
    cfg = config or TrainConfig()
    changes = dict(settings)
    if model is not None:
        changes["model"] = model
    cfg = cfg.replace(**changes)
    classifier_class(cfg.model)  # an unknown name fails here, listing the valid ones
    return cfg


def changed_settings(config: Optional[TrainConfig]) -> set:
    """Fields of ``config`` that differ from the defaults (what a user chose)."""
    if config is None:
        return set()
    default = TrainConfig(model=config.model).to_dict()
    return {k for k, v in config.to_dict().items() if default[k] != v}


def _val_source(split: Split, cfg: TrainConfig) -> str:
    if split.val_fold is not None:
        return f"fold {split.val_fold}"
    if split.val.size:
        return f"hold-out of {cfg.val_fraction:.0%} of the training groups"
    if cfg.val_fraction > 0:
        about = round(cfg.val_fraction * split.train.size)
        if about < cfg.min_holdout:
            return (f"none: a hold-out of {cfg.val_fraction:.0%} would hold about {about} clips, fewer than "
                    f"{cfg.min_holdout} (--min-holdout), too few to pick an epoch by; every training row "
                    "trains and the last epoch is kept")
        return (f"none: the training groups are too few for a hold-out of about {cfg.val_fraction:.0%}; "
                "the last epoch is kept")
    return "none"


def check_store(st: Store) -> None:
    """A store a classifier can learn from: two classes or more."""
    present = np.unique(st.y)
    if present.size < 2:
        name = st.labels[present[0]] if present.size else "none"
        raise SpectroError(f"store {st.path} has a single class ({name}): a classifier needs two or more")


def default_out(out: Optional[str], model: str, dist: Distributed) -> str:
    """``out``, or ``runs/MODEL-DATE-TIME`` (one name for every process)."""
    if out is None:
        out = dist.broadcast(os.path.join("runs", f"{model}-{datetime.now():%Y%m%d-%H%M%S}"))
    return out


def _new_job(store, out, cfg: TrainConfig, cls: type[Classifier], dist: Distributed, given: frozenset = frozenset(),
             lock: Optional[contextlib.ExitStack] = None) -> _Job:
    """Check everything on every process, then rank 0 lays out the run directory.

    Everything that can fail is checked before the directory exists (model
    options, the pretrained file, the batch size), so a refused run leaves
    nothing behind that blocks the next try.
    """
    if store is None:
        raise SpectroError("training needs a store (--store STORE)")
    st = store if isinstance(store, Store) else open_store(store)
    check_store(st)
    st.check_finite()  # a NaN image would poison the normalisation and every epoch
    split = make_split(st, cfg.test_fold, cfg.val_fold, val_fraction=cfg.val_fraction, seed=cfg.seed,
                       min_holdout=cfg.min_holdout, train_fraction=cfg.train_fraction)
    if cls.inner_selection and split.val.size:
        # It validates inside its own (group-aware) inner search: it trains on every non-test row.
        split = Split(np.union1d(split.train, split.val), np.zeros(0, np.int64), split.test, split.test_fold, None)
    if np.unique(st.y[split.train]).size < 2:
        raise SpectroError(f"the training folds of {st.path} hold a single class; choose other folds")
    cfg = cfg.replace(test_fold=split.test_fold, val_fold=split.val_fold)  # record what was resolved
    cfg = _check_settings(cfg, cls, st, split, dist, given)
    run = RunDir(default_out(out, cfg.model, dist))
    if lock is not None and dist.is_main:
        lock.enter_context(exclusive(run.path, what="run"))
    if os.path.isfile(run.file("run.json")):
        if not _stillborn(run.path):
            raise SpectroError(f"{run.path} already holds a run; continue it with --resume {run.path} "
                               "or choose another --out")
        if dist.is_main:
            kept = clear_run(run.path)  # only what spectro wrote: the user's files beside it stay
            note(f"{run.path} holds a run that stopped before its first checkpoint; starting it afresh"
                 + (f" (kept what spectro did not write: {', '.join(kept[:5])})" if kept else ""))
        dist.barrier()
    elif os.path.exists(run.path) and (not os.path.isdir(run.path) or os.listdir(run.path)):
        raise SpectroError(f"--out {run.path} exists and is not an empty directory")
    mean, std = norm_stats(st.features, split.train)
    dist.barrier()  # every process has checked the folder before rank 0 writes into it
    if dist.is_main:
        run.create(st, cfg, split, mean, std)
    else:
        run.describe(st, cfg, split)
    dist.barrier()
    return _Job(run, st, cfg, split, mean, std)


def _check_settings(cfg: TrainConfig, cls: type[Classifier], st: Store, split: Split, dist: Distributed,
                    given: frozenset) -> TrainConfig:
    """The settings the classifier uses, checked before any file is written; a batch larger than the
    training set is lowered (when it is the default) or refused."""
    cls.check_config(cfg, num_classes=len(st.labels), in_channels=int(st.features.shape[1]))
    uses = set(TrainConfig.__dataclass_fields__) - set(cls.ignores)
    if "tensorboard" in uses:
        check_tensorboard(cfg)
    if "gain_eq" in uses and cfg.gain_eq > 0 and not (st.config.db and getattr(st.config, "compression", "db") == "db"):
        raise SpectroError(f"gain_eq adds decibels, but the images of {st.path} are not in dB; "
                           "preprocess with dB images or train without gain_eq")
    per_process = split.train.size // dist.world_size
    if "batch_size" in uses and cfg.batch_size > per_process:
        if "batch_size" in given:
            raise SpectroError(f"batch size {cfg.batch_size} is larger than the {per_process} training "
                               "examples" + (" per process" if dist.enabled else "") + "; lower batch_size")
        if dist.is_main:
            note(f"{split.train.size} training examples: batch size {per_process} "
                 f"(the default {cfg.batch_size} is larger than the training set)")
        cfg = cfg.replace(batch_size=max(1, per_process))
    return cfg


def _stillborn(run_dir: str) -> bool:
    """A run that failed before it wrote a checkpoint or a model, and whose process is gone."""
    if os.path.exists(os.path.join(run_dir, "checkpoints", "last.pt")) or os.path.exists(os.path.join(run_dir, "model")):
        return False
    return run_status(run_dir) in ("interrupted", "diverged", "failed")


def _resumed_config(run_dir: str, model, config, settings) -> TrainConfig:
    """The run's own TrainConfig; asking for other settings is an error, except where it runs."""
    read_run_info(run_dir)
    cfg = read_config(TrainConfig, os.path.join(run_dir, "train_config.json"))
    asked = dict(settings)
    if model is not None:
        asked["model"] = model
    if config is not None:
        asked.update({k: getattr(config, k) for k in changed_settings(config)})
    differ = {k: v for k, v in asked.items() if k not in RUNTIME_FIELDS and getattr(cfg, k, v) != v}
    if differ:
        k, v = next(iter(differ.items()))
        raise SpectroError(f"--resume continues {run_dir} with its own settings; {k}={v!r} differs from its "
                           f"{getattr(cfg, k)!r} (start a new run to change it)")
    return cfg.replace(**{k: v for k, v in asked.items() if k in RUNTIME_FIELDS})


def _resume_job(run_dir: str, store, cfg: TrainConfig, lock: Optional[contextlib.ExitStack] = None) -> _Job:
    run = RunDir.open(run_dir)
    if run.info.get("status") == "diverged":  # the same weights and settings diverge again
        raise SpectroError(f"{run_dir} diverged ({run.info.get('error')}); {diverged_advice(run_dir, run.info)}")
    if lock is not None and Distributed.from_env().is_main:
        lock.enter_context(exclusive(run_dir, what="run"))
    st = store if isinstance(store, Store) else open_store(store or run.info["store"]["path"])
    fingerprint = run.info["store"]["fingerprint"]
    if st.config.fingerprint() != fingerprint:
        raise SpectroError(f"cannot resume {run_dir} against store {st.path}: it was built with another "
                           f"FeatureConfig (fingerprint {st.config.fingerprint()}, the run's is {fingerprint})")
    rows = {}
    for role, ids in read_split(run_dir).items():
        try:
            rows[role] = rows_of_ids(st, ids, what=f"{role} examples of the run")
        except SpectroError as err:
            raise SpectroError(f"cannot resume {run_dir}: {err}") from None
    split = Split(rows["train"], rows["val"], rows["test"], cfg.test_fold, cfg.val_fold)
    mean, std = read_norm(run_dir)
    run.describe(st, cfg, split)
    checkpoint, finished = run.resume_point()
    return _Job(run, st, cfg, split, mean, std, resumed=True, checkpoint=checkpoint, finished=finished)


# ---------------------------------------------------------------------------
# The fit: one call for every kind
# ---------------------------------------------------------------------------

@dataclass
class _Fitted:
    """What a fit left: the classifier (None when nothing was left to fit) and its recorder."""

    classifier: Optional[Classifier]
    recorder: Optional[RunRecorder]


def _fit(job: _Job, cls: type[Classifier], dist: Distributed, progress: bool, on_epoch, given: frozenset) -> _Fitted:
    """``Classifier.fit`` on the training rows, streamed from the store, with the run's recorder as callback."""
    cfg, st, split = job.cfg, job.store, job.split
    say = printer(progress and dist.is_main)
    ignored = sorted(given & set(cls.ignores))
    if ignored and dist.is_main:
        note(f"the {cfg.model} ignores {', '.join(ignored)} (settings of networks)")
    if job.finished:
        done = int(job.run.info.get("epochs_done") or 0)
        say(f"{job.run.path} already finished its {done} epoch{'' if done == 1 else 's'}; nothing to resume")
        return _Fitted(None, None)
    names = np.asarray(st.labels, dtype=object)
    # Normalised slice by slice as the classifier reads it (a network: on the device): never in memory whole.
    X = NormalisedRows(st.features, split.train, job.mean, job.std)
    X_val = NormalisedRows(st.features, split.val, job.mean, job.std) if split.val.size else None
    clf = cls.from_config(cfg, classes=list(st.labels))
    recorder = RunRecorder(job.run, cfg, _about(split, cfg), dist, say, resumed=job.resumed, on_epoch=on_epoch,
                           tensorboard=cfg.tensorboard and "tensorboard" not in cls.ignores)
    try:
        clf.fit(X, names[st.y[split.train]], X_val=X_val, y_val=None if X_val is None else names[st.y[split.val]],
                groups=st.groups[split.train], callbacks=[recorder], resume=job.checkpoint, progress=progress)
    except Diverged as err:
        advice = divergence_advice(cfg.to_dict(), precision=getattr(err, "precision", None), lr=cfg.learning_rate)
        recorder.status("diverged", error=str(err), advice=advice)
        kept = f"the last good checkpoint (epoch {recorder.saved_epoch}) is kept in {job.run.path}" \
            if recorder.saved_epoch else "no epoch finished, so there is no checkpoint"
        raise SpectroError(f"training diverged: {err}; {kept}; {advice}") from None
    except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError on CUDA, MPS and XPU alike
        device = select_device(cfg.device, local_rank=dist.local_rank)
        recorder.status("failed", error=f"out of memory on {device} at batch size {cfg.batch_size}")
        raise SpectroError(out_of_memory_advice(device, cfg.batch_size, job.run.path, recorder.saved_epoch)) from None
    except SpectroError:
        if not os.path.isfile(job.run.checkpoint_path):  # refused by the data before anything was kept
            _discard(job)
        raise
    except KeyboardInterrupt:
        recorder.status("interrupted")
        raise
    finally:
        recorder.close()
    return _Fitted(clf, recorder)


def _discard(job: _Job) -> None:
    """Remove what a new run wrote before its fit was refused (the user's files stay); mark a resumed one failed.

    Nothing is left to resume, and a resume would be refused the same way.
    """
    if job.resumed:
        with contextlib.suppress(OSError):
            job.run.record(status="failed", error="the fit was refused")
        return
    with contextlib.suppress(OSError):
        if not clear_run(job.run.path):
            os.rmdir(job.run.path)


def out_of_memory_advice(device: torch.device, batch_size: int, run_dir: str, saved_epoch: int) -> str:
    """The one line for a run that ran out of device memory: what to change, and what was kept."""
    if device.type == "cuda":
        torch.cuda.empty_cache()  # what the failed step held goes back before anything else is tried
    kept = (f"the last good checkpoint (epoch {saved_epoch}) is kept in {run_dir}" if saved_epoch
            else "no epoch finished, so there is no checkpoint")
    smaller = f"--batch-size {batch_size // 2}" if batch_size > 1 else "a smaller model or image"
    return f"out of memory on {device} at batch size {batch_size}: train again with {smaller}; {kept}"


def _about(split: Split, cfg: TrainConfig) -> str:
    return (f"{split.train.size} train, {split.val.size} validation ({_val_source(split, cfg)}), "
            f"{split.test.size} test (fold {split.test_fold}) examples")


# ---------------------------------------------------------------------------
# Finishing the run
# ---------------------------------------------------------------------------

def _finish(job: _Job, dist: Distributed, fitted: _Fitted, say) -> Optional[Run]:
    """Record the outcome; when done, score the test fold once with the best weights (rank 0)."""
    if not dist.is_main:
        return None
    run, st, cfg, clf = job.run, job.store, job.cfg, fitted.classifier
    if clf is None:  # resumed, nothing left to fit: the run's own best classifier scores the test fold
        run.record(status="done", error=None)
        return _score_test(job, load_run(run.path, device="cpu"), say)
    result, history = clf.fit_result_, clf.history_
    run.write_history(history, title=f"{cfg.model} on {os.path.basename(os.path.normpath(st.path))}")
    where = f"epoch {result.epochs}" + (f", batch {result.batch}" if result.batch else "")
    if not result.stop.resumable:
        run.slim_checkpoint()  # the run keeps its best and last weights only
    run.record(status="interrupted" if result.stop.resumable else "done", epochs_done=result.epochs,
               best_epoch=result.best_epoch, stopped_at=where if result.stop.resumable else None, error=None,
               warnings=_warnings(job, history, curve=not clf.inner_selection))
    trained = _in_memory(job, clf, fitted.recorder)
    if result.stop.resumable:
        msg = f"stopped at {where}; continue with: spectro train --resume {run.path}"
        if result.stop is Stop.SIGNALLED:
            stop = fitted.recorder.stop if fitted.recorder is not None else None
            raise TrainingInterrupted(msg, signum=stop.signum if stop is not None else signal.SIGINT)
        say(msg)
        return trained if trained is not None or not run.has_model() else load_run(run.path, device="cpu")
    return _score_test(job, trained if trained is not None else load_run(run.path, device="cpu"), say)


def _in_memory(job: _Job, clf: Classifier, recorder: RunRecorder) -> Optional[Run]:
    """The run as this process holds it, or None when its best classifier is one an earlier process saved
    (a resume that improved on nothing): ``model/`` then holds it."""
    if not recorder.saved_model:
        return None
    clf.to_device("cpu")  # as load_run(device="cpu") gives it: the test fold is scored there
    return Run(path=job.run.path, classifier=clf, labels=list(job.store.labels), feature_config=job.store.config,
               train_config=job.cfg, mean=job.mean, std=job.std, info=job.run.info)


def _warnings(job: _Job, history: list, *, curve: bool) -> list[dict]:
    """Still improving, at chance, classes that only the test examples hold (see :mod:`spectro.training.health`)."""
    y = job.store.y
    counts = np.bincount(y[job.split.train])
    return (run_warnings(history, majority_rate=float(counts.max() / counts.sum()), curve=curve)
            + unseen_classes(y[job.split.train], y[job.split.test], job.store.labels))


def _score_test(job: _Job, run: Run, say) -> Run:
    if job.split.test.size:
        metrics = evaluate(run, "test", job.store)
        test = {k: metrics[k] for k in HEADLINE} | {"n": metrics["n"]}
        job.run.record(test=test)
        run.info = job.run.info
        say(f"test fold {job.split.test_fold}: accuracy {test['accuracy']:.4f}, balanced accuracy "
            f"{test['balanced_accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} ({test['n']} examples); "
            f"report in {job.run.file('eval')}")
    for w in run.info.get("warnings") or []:  # shown even when quiet: they qualify every number above
        note(f"{run.info.get('model')}: {w['text']}")
    return run
