"""``train``: a store and a model name become a run directory.

One entry point for every model kind: networks go through
:class:`spectro.training.loop.Trainer` (GPU first, AMP, DDP under torchrun,
checkpoints and exact resume) with a :class:`spectro.training.recorder.RunRecorder`
writing the run, the SVM through its own ``fit``; both write the same run
layout (:mod:`spectro.training.run`) and are scored by the same
:func:`spectro.training.evaluate.evaluate`. Cross-validation is :mod:`spectro.training.cv`.

Splits: the test fold never influences training. Normalisation statistics
come from the training rows alone, model selection and early stopping
look at the validation fold alone, and the test fold is scored once, at the
end, with the best weights.

(This module is ``training``, not ``train``, and ``evaluation`` not
``evaluate``: a submodule named like the function would shadow
``spectro.train`` / ``spectro.evaluate`` once imported.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from spectro.config import RUNTIME_FIELDS, TrainConfig
from spectro.dataset.feed import NormalisedRows, StoreImages, class_weights, norm_stats
from spectro.dataset.splits import Split, make_split, rows_of_ids
from spectro.errors import Diverged, SpectroError, TrainingInterrupted, cannot_write
from spectro.metrics.scores import HEADLINE, compute_metrics
from spectro.models.weights import load_state_dict_file
from spectro.models.zoo import build
from spectro.signals.store import Store, open_store
from spectro.training.classifier import NetClassifier, classifier_class
from spectro.training.distributed import Distributed
from spectro.training.evaluate import evaluate
from spectro.training.health import divergence_advice, run_warnings, unseen_classes
from spectro.training.loop import LoopState, StopSignal, Trainer, set_rng_state
from spectro.training.recorder import RunRecorder, check_tensorboard, write_history
from spectro.training.run import (
    diverged_advice,
    Run,
    load_checkpoint,
    load_run,
    read_config,
    read_norm,
    read_run_info,
    read_split,
    run_status,
    save_dir,
    slim_checkpoint,
    write_norm,
    write_run_info,
    write_split,
)
from spectro.utils.console import note, printer
from spectro.utils.device import choose_precision, select_device
from spectro.utils.files import exclusive, write_json

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
    on_epoch: Optional[Callable[[dict, torch.nn.Module], Optional[bool]]] = None,
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
        ``on_epoch(row, model)`` after each epoch's checkpoint is written;
        returning True stops training there, resumably.

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
    # The run directory is locked (rank 0) from before its first file to the end: two `train`s
    # into one folder do not race; the second says another process is writing there.
    job: _Job | None = None
    with contextlib.ExitStack() as lock:
        try:
            if not classifier_class(cfg.model).iterative:
                if not dist.is_main:
                    return None  # one process fits a classifier fitted once; the others have nothing to do
                job = _resume_job(resume, store, cfg, lock) if resume is not None \
                    else _new_job(store, out, cfg, Distributed(), given, lock)
                return _fit_once(job, progress, given=set(given))
            device = select_device(cfg.device, local_rank=dist.local_rank)
            owner = dist.init(device)
            try:
                job = _resume_job(resume, store, cfg, lock) if resume is not None \
                    else _new_job(store, out, cfg, dist, given, lock)
                state, status, signalled = _train_net(job, dist, device, progress, on_epoch)
                # No process leaves (or starts the next fold) while another still talks to it.
                dist.barrier()
            finally:
                if owner:
                    dist.close()
            return _finish(job, dist, state, status, printer(progress and dist.is_main), signalled)
        except OSError as err:
            failure = _write_failure(err, job)
            if failure is None:
                raise
            raise failure from None


def _write_failure(err: OSError, job: _Job | None) -> SpectroError | None:
    """A full disk or a read-only place: one line, and the run marked ``failed`` (None: another OSError).

    Every file of a run is written atomically, so the last checkpoint is whole and a resume
    continues from it once there is room.
    """
    resumable = job is not None and os.path.isfile(os.path.join(job.run_dir, "checkpoints", "last.pt"))
    advice = (f"free some space (or make it writable), then continue with: spectro train --resume {job.run_dir}"
              if resumable else "free some space or choose another --out")
    failure = cannot_write(err, advice)
    if failure is not None and job is not None:
        with contextlib.suppress(OSError):  # the disk may still be too full for run.json
            write_run_info(job.run_dir, job.store, job.cfg, job.split, status="failed", error=str(failure))
    return failure


# ---------------------------------------------------------------------------
# Preparing a job: new or resumed
# ---------------------------------------------------------------------------

@dataclass
class _Job:
    run_dir: str
    store: Store
    cfg: TrainConfig
    split: Split
    mean: np.ndarray
    std: np.ndarray
    checkpoint: Optional[dict]
    resumed: bool


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


def _new_job(store, out, cfg: TrainConfig, dist: Distributed, given: frozenset = frozenset(),
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
    iterative = classifier_class(cfg.model).iterative
    if not iterative and split.val.size:
        # Fitted once, it validates inside its own (group-aware) inner search: it trains on every non-test row.
        split = Split(np.union1d(split.train, split.val), np.zeros(0, np.int64), split.test, split.test_fold, None)
    if np.unique(st.y[split.train]).size < 2:
        raise SpectroError(f"the training folds of {st.path} hold a single class; choose other folds")
    cfg = cfg.replace(test_fold=split.test_fold, val_fold=split.val_fold)  # record what was resolved
    if iterative:
        cfg = _check_net(cfg, st, split, dist, given)
    run_dir = default_out(out, cfg.model, dist)
    if lock is not None and dist.is_main:
        lock.enter_context(exclusive(run_dir, what="run"))
    if os.path.isfile(os.path.join(run_dir, "run.json")):
        if not _stillborn(run_dir):
            raise SpectroError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                               "or choose another --out")
        if dist.is_main:
            note(f"{run_dir} holds a run that stopped before its first checkpoint; starting it afresh")
            shutil.rmtree(run_dir)
        dist.barrier()
    if os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise SpectroError(f"--out {run_dir} exists and is not an empty directory")
    mean, std = norm_stats(st.features, split.train)
    dist.barrier()  # every process has checked run_dir before rank 0 writes into it
    if dist.is_main:
        existed = os.path.isdir(run_dir)
        try:
            os.makedirs(run_dir, exist_ok=True)
            write_json(os.path.join(run_dir, "train_config.json"), cfg.to_dict())
            write_json(os.path.join(run_dir, "feature_config.json"), st.config.to_dict())
            write_json(os.path.join(run_dir, "labels.json"), list(st.labels))
            write_norm(os.path.join(run_dir, "norm.json"), mean, std)
            write_split(os.path.join(run_dir, "split.csv"), st, split.role_of_rows(len(st)))
            write_run_info(run_dir, st, cfg, split, status="running", epochs_done=0)
        except OSError:  # a full disk before the run began: leave nothing that blocks the next try
            for name in os.listdir(run_dir) if os.path.isdir(run_dir) else []:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(run_dir, name))
            if not existed:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    dist.barrier()
    return _Job(run_dir, st, cfg, split, mean, std, None, False)


def _check_net(cfg: TrainConfig, st: Store, split: Split, dist: Distributed, given: frozenset) -> TrainConfig:
    """Model options, pretrained file and batch size of a network, checked before any file is written."""
    try:
        with torch.device("meta"):  # shapes only: no memory, no time
            build(cfg.model, len(st.labels), int(st.features.shape[1]), **cfg.model_options)
    except TypeError as err:
        raise SpectroError(f"{cfg.model}: bad --option ({err})") from None
    if cfg.pretrained is not None:
        load_state_dict_file(cfg.pretrained)  # a missing or unusable file fails here, in one line
    check_tensorboard(cfg)
    if cfg.gain_eq > 0 and not (st.config.db and getattr(st.config, "compression", "db") == "db"):
        raise SpectroError(f"--gain-eq adds decibels, but the images of {st.path} are not in dB; "
                           "preprocess with dB images or train without --gain-eq")
    per_process = split.train.size // dist.world_size
    if cfg.batch_size > per_process:
        if "batch_size" in given:
            raise SpectroError(f"batch size {cfg.batch_size} is larger than the {per_process} training "
                               "examples" + (" per process" if dist.enabled else "") + "; lower --batch-size")
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
    info = read_run_info(run_dir)
    if info.get("status") == "diverged":  # the same weights and settings diverge again
        raise SpectroError(f"{run_dir} diverged ({info.get('error')}); {diverged_advice(run_dir, info)}")
    if lock is not None and Distributed.from_env().is_main:
        lock.enter_context(exclusive(run_dir, what="run"))
    st = store if isinstance(store, Store) else open_store(store or info["store"]["path"])
    fingerprint = info["store"]["fingerprint"]
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
    ckpt_path = os.path.join(run_dir, "checkpoints", "last.pt")
    checkpoint = load_checkpoint(ckpt_path) if os.path.isfile(ckpt_path) else None
    return _Job(run_dir, st, cfg, split, mean, std, checkpoint, True)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------

def _train_net(job: _Job, dist: Distributed, device: torch.device, progress: bool,
               on_epoch) -> tuple[LoopState, str, bool]:
    """Run the loop; return where it ended, ``"done"`` or ``"interrupted"``, and whether by a signal."""
    cfg, st, run_dir = job.cfg, job.store, job.run_dir
    precision = choose_precision(device.type, cfg.amp, cfg.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    say = printer(progress and dist.is_main)
    labels = list(st.labels)
    train_data = StoreImages(st.features, st.y, job.split.train)
    val_data = StoreImages(st.features, st.y, job.split.val)
    weight = class_weights(st.y[job.split.train], len(labels)) if cfg.balance else None
    cuda_ids = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):  # the caller's RNG is left as it was
        torch.manual_seed(cfg.seed)
        clf = NetClassifier.from_config(cfg, classes=labels)
        # A resumed run's weights come from its checkpoint, not from the pretrained file.
        module = clf.init_module(len(labels), int(st.features.shape[1]), pretrained=not job.checkpoint)
        trainer = Trainer(module, cfg, train_data, val_data, mean=job.mean, std=job.std, device=device,
                          precision=precision, dist=dist, num_classes=len(labels), class_weight=weight,
                          progress=progress)
        state = LoopState()
        if job.checkpoint and "trainer" not in job.checkpoint:  # finished: the last weights were kept alone
            state = LoopState.from_state_dict(job.checkpoint["loop"])
            say(f"{run_dir} already finished its {state.epoch} epochs; nothing to resume")
            return state, "done", False
        if job.checkpoint:
            trainer.load_state_dict(job.checkpoint["trainer"])
            state = LoopState.from_state_dict(job.checkpoint["loop"])
            rngs = job.checkpoint["rng"]
            if len(rngs) == dist.world_size:
                set_rng_state(rngs[dist.rank])
            else:  # another number of processes: a fresh stream per rank and epoch
                torch.manual_seed(cfg.seed + 1000 * state.epoch + dist.rank)
            if state.epoch >= cfg.epochs:
                say(f"{run_dir} already finished its {cfg.epochs} epochs; nothing to resume")
            else:
                say(f"resuming {run_dir} at epoch {state.epoch + 1}, batch {state.batch}")
        else:
            torch.manual_seed(cfg.seed + dist.rank)  # augmentation: one stream per process
        say(f"training {cfg.model} on {device} ({precision.describe()}"
            f"{f', {dist.world_size} processes' if dist.enabled else ''}): {job.split.train.size} train, "
            f"{job.split.val.size} validation ({_val_source(job.split, cfg)}), {job.split.test.size} test "
            f"(fold {job.split.test_fold}) examples -> {run_dir}")
        recorder = RunRecorder(run_dir, st, cfg, job.split, clf, trainer, state, dist, say, on_epoch)
        status, signalled = "done", False
        try:
            with StopSignal() as stop:
                outcome = trainer.fit(state, stop=lambda: stop.requested, on_epoch_end=recorder.on_epoch_end)
            if outcome == "stopped":
                status = "interrupted"
                if state.batch:  # mid-epoch: the epoch-end checkpoint is older than this
                    recorder.checkpoint()
                signalled = bool(dist.max_(torch.tensor([float(stop.requested)], device=device)).item())
            elif outcome == "early_stop":
                say(f"early stop: no better validation macro-F1 for {cfg.early_stop} epochs "
                    f"(best epoch {state.best_epoch})")
        except Diverged as err:
            advice = divergence_advice(cfg.to_dict(), precision=precision.name, lr=cfg.learning_rate)
            recorder.status("diverged", error=str(err), precision=precision.name, advice=advice)
            kept = f"the last good checkpoint (epoch {recorder.saved_epoch}) is kept in {run_dir}" \
                if recorder.saved_epoch else "no epoch finished, so there is no checkpoint"
            raise SpectroError(f"training diverged: {err}; {kept}; {advice}") from None
        except KeyboardInterrupt:
            recorder.status("interrupted")
            raise
        finally:
            recorder.close()
    return state, status, signalled


def _finish(job: _Job, dist: Distributed, state: LoopState, status: str, say, signalled: bool) -> Optional[Run]:
    """Record the outcome; when done, score the test fold once with the best weights (rank 0)."""
    if not dist.is_main:
        return None
    run_dir, st, cfg = job.run_dir, job.store, job.cfg
    write_history(run_dir, state.history, title=f"{cfg.model} on {os.path.basename(os.path.normpath(st.path))}")
    where = f"epoch {state.epoch}" + (f", batch {state.batch}" if state.batch else "")
    last = os.path.join(run_dir, "checkpoints", "last.pt")
    if status == "done" and os.path.isfile(last):
        slim_checkpoint(last)  # the run keeps its best and last weights only
    write_run_info(run_dir, st, cfg, job.split, status=status, epochs_done=state.epoch, best_epoch=state.best_epoch,
                   stopped_at=where if status == "interrupted" else None, error=None,
                   warnings=_warnings(job, state.history, iterative=True))
    if status == "interrupted":
        msg = f"stopped at {where}; continue with: spectro train --resume {run_dir}"
        if signalled:
            raise TrainingInterrupted(msg)
        say(msg)
        return load_run(run_dir, device="cpu") if os.path.isdir(os.path.join(run_dir, "model")) else None
    return _score_test(job, say)


def _warnings(job: _Job, history: list, *, iterative: bool) -> list[dict]:
    """Still improving, at chance, classes that only the test examples hold (see :mod:`spectro.training.health`)."""
    y = job.store.y
    counts = np.bincount(y[job.split.train])
    return (run_warnings(history, majority_rate=float(counts.max() / counts.sum()), iterative=iterative)
            + unseen_classes(y[job.split.train], y[job.split.test], job.store.labels))


def _score_test(job: _Job, say) -> Run:
    run = load_run(job.run_dir, device="cpu")
    if job.split.test.size:
        metrics = evaluate(run, "test", job.store)
        test = {k: metrics[k] for k in HEADLINE} | {"n": metrics["n"]}
        write_run_info(job.run_dir, job.store, job.cfg, job.split, test=test)
        run.info = read_run_info(job.run_dir)
        say(f"test fold {job.split.test_fold}: accuracy {test['accuracy']:.4f}, balanced accuracy "
            f"{test['balanced_accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} ({test['n']} examples); "
            f"report in {os.path.join(job.run_dir, 'eval')}")
    for w in run.info.get("warnings") or []:  # shown even when quiet: they qualify every number above
        note(f"{run.info.get('model')}: {w['text']}")
    return run


# ---------------------------------------------------------------------------
# Classifiers fitted once (the SVM)
# ---------------------------------------------------------------------------

def _fit_once(job: _Job, progress: bool, given: set) -> Optional[Run]:
    """Fit a classifier that is not trained epoch by epoch on every training row, streamed from the store."""
    say = printer(progress)
    cfg, st, labels = job.cfg, job.store, list(job.store.labels)
    cls = classifier_class(cfg.model)
    ignored = sorted(given & set(cls.ignores))
    if ignored:
        note(f"the {cfg.model} ignores {', '.join(ignored)} (settings of networks)")
    if job.resumed and os.path.isfile(os.path.join(job.run_dir, "model", "model.json")):
        say(f"{job.run_dir}: the {cfg.model} was already fitted")
        return _score_test(job, say)
    t0 = time.perf_counter()
    names = np.asarray(labels, dtype=object)
    # Normalised slice by slice as the classifier reads it: the training rows are never in memory whole.
    X, y = NormalisedRows(st.features, job.split.train, job.mean, job.std), st.y[job.split.train]
    say(f"fitting {cfg.model} on {len(y)} examples ({len(labels)} classes) -> {job.run_dir}")
    clf = cls.from_config(cfg, classes=labels)
    clf.fit(X, names[y], groups=st.groups[job.split.train])  # group-aware inner search
    seconds = time.perf_counter() - t0
    train_m = compute_metrics(y, clf.predict_proba(X), labels)
    row = {"epoch": 1, "lr": None, "train_loss": train_m["log_loss"], "train_accuracy": train_m["accuracy"],
           "val_loss": None, "val_accuracy": None, "val_macro_f1": None, "seconds": seconds,
           "samples_per_s": len(y) / seconds}
    save_dir(clf.save, os.path.join(job.run_dir, "model"))
    write_history(job.run_dir, [row], title=f"{cfg.model} on {os.path.basename(st.path)}")
    write_run_info(job.run_dir, st, cfg, job.split, status="done", epochs_done=1, best_epoch=1,
                   warnings=_warnings(job, [row], iterative=False))
    found = clf.describe_fit()
    say(f"fitted in {seconds:.1f} s: {found + '; ' if found else ''}training accuracy {train_m['accuracy']:.4f}")
    return _score_test(job, say)
