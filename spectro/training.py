"""``train`` and ``cross_validate``: a store and a model name become a run directory.

One entry point for every model kind: networks go through
:class:`spectro.trainer.Trainer` (GPU first, AMP, DDP under torchrun,
checkpoints and exact resume), the SVM through its own ``fit``; both write
the same run layout (:mod:`spectro.run`) and are scored by the same
:func:`spectro.evaluation.evaluate`.

Splits: the test fold never influences training. Normalisation statistics
come from the training rows alone, model selection and early stopping
look at the validation fold alone, and the test fold is scored once, at the
end, with the best weights.

(This module is ``training``, not ``train``, and ``evaluation`` not
``evaluate``: a submodule named like the function would shadow
``spectro.train`` / ``spectro.evaluate`` once imported.)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from .data import Split, StoreImages, class_weights, cv_splits, make_split, norm_stats
from .errors import SpectroError
from .evaluation import compute_metrics, evaluate
from .run import (NET_ONLY_FIELDS, RUNTIME_FIELDS, Run, TrainConfig, load_checkpoint, load_run, read_json,
                  read_norm, read_run_info, read_split, run_status, save_checkpoint, save_dir, write_history,
                  write_csv, write_json, write_norm, write_run_info, write_split)
from .store import Store, open_store
from .trainer import (Distributed, Diverged, LoopState, StopSignal, Trainer, choose_precision, get_rng_state,
                      select_device, set_rng_state)

__all__ = ["train", "cross_validate", "fit_arrays", "TrainingInterrupted", "CVResult"]

PLOT_EVERY_S = 60.0  # seconds between redraws of curves.png while training


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped training after a resumable checkpoint was saved."""


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
        The trained run (see :func:`spectro.run.load_run`); None on the
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
    from .models.registry import get_entry

    dist = Distributed.from_env()
    if resume is not None:
        cfg = _resumed_config(resume, model, config, settings)
    else:
        cfg = _config(config, model, settings)
    if get_entry(cfg.model).kind == "svm":
        if not dist.is_main:
            return None  # one process fits an SVM; the others have nothing to do
        job = _resume_job(resume, store, cfg) if resume is not None else _new_job(store, out, cfg, Distributed())
        return _train_svm(job, progress, given=set(settings) | _changed(config))
    device = select_device(cfg.device, local_rank=dist.local_rank)
    owner = dist.init(device)
    try:
        job = _resume_job(resume, store, cfg) if resume is not None else _new_job(store, out, cfg, dist)
        state, status, signalled = _train_net(job, dist, device, progress, on_epoch)
        # No process leaves (or starts the next fold) while another still talks to it.
        dist.barrier()
    finally:
        if owner:
            dist.close()
    return _finish(job, dist, state, status, _printer(progress and dist.is_main), signalled)


@dataclass
class CVResult:
    """Per-fold test metrics of a cross-validation and their mean and standard deviation."""

    path: str
    folds: list[dict]
    mean: dict
    std: dict


def cross_validate(
    store: Union[str, Store, None] = None,
    model: Optional[str] = None,
    out: Optional[str] = None,
    *,
    config: Optional[TrainConfig] = None,
    resume: Optional[str] = None,
    progress: bool = True,
    **settings: Any,
) -> Optional[CVResult]:
    """One run per fold, each fold the test fold once: ``OUT/fold<k>/``; summary in ``OUT/cv.csv``.

    The validation fold of each run is the fold before its test fold. With
    ``resume``, finished folds are kept and the others continued or started.

    Returns
    -------
    CVResult or None
        None on ranks > 0 under torchrun. Mean and (sample) standard
        deviation are over folds of ``accuracy``, ``balanced_accuracy`` and
        ``macro_f1``.
    """
    from .models.registry import get_entry

    dist = Distributed.from_env()
    if resume is not None:
        info = read_json(os.path.join(resume, "cv.json")) if os.path.isfile(os.path.join(resume, "cv.json")) \
            else None
        if not info:
            raise SpectroError(f"{resume} is not a cross-validation directory (no cv.json)")
        out = resume
        cfg = TrainConfig.from_dict(info["train_config"])
        store = store if store is not None else info["store"]
    else:
        if store is None:
            raise SpectroError("cross-validation needs a store")
        cfg = _config(config, model, settings)
        if cfg.test_fold is not None or cfg.val_fold is not None:
            raise SpectroError("--cv chooses the test and validation folds itself; drop --test-fold/--val-fold")
    st = store if isinstance(store, Store) else open_store(store)
    _check_store(st)
    # One process group for all the folds (torchrun): the runs share it.
    owner = get_entry(cfg.model).kind == "net" and dist.init(select_device(cfg.device, local_rank=dist.local_rank))
    try:
        result = _cross_validate(st, cfg, out, dist, progress, settings)
        dist.barrier()
        return result
    finally:
        if owner:
            dist.close()


def _cross_validate(st: Store, cfg: TrainConfig, out: Optional[str], dist: Distributed, progress: bool,
                    settings: dict) -> Optional[CVResult]:
    out = _default_out(out, cfg.model, dist)
    if dist.is_main:
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "cv.json"), {"store": os.path.abspath(st.path), "train_config": cfg.to_dict(),
                                                  "folds": st.fold_ids})
    rows = []
    for split in cv_splits(st):
        fold_dir = os.path.join(out, f"fold{split.test_fold}")
        fold_cfg = cfg.replace(test_fold=split.test_fold, val_fold=split.val_fold)
        status = run_status(fold_dir)
        if status == "done":
            run = load_run(fold_dir, device="cpu") if dist.is_main else None
        elif status is not None:
            run = train(st, resume=fold_dir, progress=progress, **_runtime(settings))
        else:
            run = train(st, out=fold_dir, config=fold_cfg, progress=progress)
        if run is not None:
            t = run.test_metrics or {}
            rows.append({"fold": split.test_fold, "val_fold": split.val_fold, **{k: t.get(k) for k in _HEADLINE}})
    if not dist.is_main:
        return None
    keys = list(_HEADLINE)
    values = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in keys}
    mean = {k: float(v.mean()) for k, v in values.items()}
    std = {k: float(v.std(ddof=1)) if v.size > 1 else 0.0 for k, v in values.items()}
    table = rows + [{"fold": "mean", **mean}, {"fold": "std", **std}]
    write_csv(os.path.join(out, "cv.csv"), ["fold", "val_fold", *keys], table)
    write_json(os.path.join(out, "cv.json"), {"store": os.path.abspath(st.path), "train_config": cfg.to_dict(),
                                              "folds": st.fold_ids, "results": rows, "mean": mean, "std": std})
    return CVResult(out, rows, mean, std)


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


def _config(config: Optional[TrainConfig], model: Optional[str], settings: dict) -> TrainConfig:
    cfg = config or TrainConfig()
    changes = dict(settings)
    if model is not None:
        changes["model"] = model
    try:
        cfg = cfg.replace(**changes)
    except TypeError:
        fields = set(TrainConfig.__dataclass_fields__)
        raise SpectroError(f"unknown training setting(s): {sorted(set(changes) - fields)}") from None
    from .models.registry import get_entry

    get_entry(cfg.model)  # an unknown name fails here, listing the valid ones
    return cfg


def _changed(config: Optional[TrainConfig]) -> set:
    """Fields of ``config`` that differ from the defaults (what a user chose)."""
    if config is None:
        return set()
    default = TrainConfig(model=config.model).to_dict()
    return {k for k, v in config.to_dict().items() if default[k] != v}


def _runtime(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k in RUNTIME_FIELDS}


def _check_store(st: Store) -> None:
    present = np.unique(st.y)
    if present.size < 2:
        name = st.labels[present[0]] if present.size else "none"
        raise SpectroError(f"store {st.path} has a single class ({name}): a classifier needs two or more")


def _default_out(out: Optional[str], model: str, dist: Distributed) -> str:
    if out is None:
        out = dist.broadcast(os.path.join("runs", f"{model}-{datetime.now():%Y%m%d-%H%M%S}"))
    return out


def _new_job(store, out, cfg: TrainConfig, dist: Distributed) -> _Job:
    """Check everything on every process, then rank 0 lays out the run directory."""
    if store is None:
        raise SpectroError("training needs a store (--store STORE)")
    st = store if isinstance(store, Store) else open_store(store)
    _check_store(st)
    split = make_split(st, cfg.test_fold, cfg.val_fold)
    if np.unique(st.y[split.train]).size < 2:
        raise SpectroError(f"the training folds of {st.path} hold a single class; choose other folds")
    cfg = cfg.replace(test_fold=split.test_fold, val_fold=split.val_fold)  # record what was resolved
    run_dir = _default_out(out, cfg.model, dist)
    if os.path.isfile(os.path.join(run_dir, "run.json")):
        raise SpectroError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                           "or choose another --out")
    if os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise SpectroError(f"--out {run_dir} exists and is not an empty directory")
    mean, std = norm_stats(st.features, split.train)
    dist.barrier()  # every process has checked run_dir before rank 0 writes into it
    if dist.is_main:
        os.makedirs(run_dir, exist_ok=True)
        write_json(os.path.join(run_dir, "train_config.json"), cfg.to_dict())
        write_json(os.path.join(run_dir, "feature_config.json"), st.config.to_dict())
        write_json(os.path.join(run_dir, "labels.json"), list(st.labels))
        write_norm(os.path.join(run_dir, "norm.json"), mean, std)
        write_split(os.path.join(run_dir, "split.csv"), st, split.role_of_rows(len(st)))
        write_run_info(run_dir, st, cfg, split, status="running", epochs_done=0)
    dist.barrier()
    return _Job(run_dir, st, cfg, split, mean, std, None, False)


def _resumed_config(run_dir: str, model, config, settings) -> TrainConfig:
    """The run's own TrainConfig; asking for other settings is an error, except where it runs."""
    read_run_info(run_dir)
    cfg = TrainConfig.from_dict(read_json(os.path.join(run_dir, "train_config.json")))
    asked = dict(settings)
    if model is not None:
        asked["model"] = model
    if config is not None:
        asked.update({k: getattr(config, k) for k in _changed(config)})
    differ = {k: v for k, v in asked.items() if k not in RUNTIME_FIELDS and getattr(cfg, k, v) != v}
    if differ:
        k, v = next(iter(differ.items()))
        raise SpectroError(f"--resume continues {run_dir} with its own settings; {k}={v!r} differs from its "
                           f"{getattr(cfg, k)!r} (start a new run to change it)")
    return cfg.replace(**_runtime(asked))


def _resume_job(run_dir: str, store, cfg: TrainConfig) -> _Job:
    info = read_run_info(run_dir)
    st = store if isinstance(store, Store) else open_store(store or info["store"]["path"])
    fingerprint = info["store"]["fingerprint"]
    if st.config.fingerprint() != fingerprint:
        raise SpectroError(f"cannot resume {run_dir} against store {st.path}: it was built with another "
                           f"FeatureConfig (fingerprint {st.config.fingerprint()}, the run's is {fingerprint})")
    position = {k: i for i, k in enumerate(st.ids.tolist())}
    rows = {}
    for role, ids in read_split(run_dir).items():
        missing = [k for k in ids if k not in position]
        if missing:
            raise SpectroError(f"cannot resume {run_dir}: {len(missing)} of its {role} examples are not in "
                               f"store {st.path} (e.g. {missing[0]!r})")
        rows[role] = np.sort(np.fromiter((position[k] for k in ids), dtype=np.int64))
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
    from .models import NetClassifier, build

    cfg, st, run_dir = job.cfg, job.store, job.run_dir
    precision = choose_precision(device.type, cfg.amp, cfg.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    say = _printer(progress and dist.is_main)
    labels = list(st.labels)
    train_data = StoreImages(st.features, st.y, job.split.train)
    val_data = StoreImages(st.features, st.y, job.split.val)
    weight = class_weights(st.y[job.split.train], len(labels)) if cfg.balance else None
    cuda_ids = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):  # the caller's RNG is left as it was
        torch.manual_seed(cfg.seed)
        pretrained = {} if job.checkpoint or cfg.pretrained is None else {"pretrained": cfg.pretrained}
        module = build(cfg.model, len(labels), in_channels=st.features.shape[1], **cfg.model_options, **pretrained)
        trainer = Trainer(module, cfg, train_data, val_data, mean=job.mean, std=job.std, device=device,
                          precision=precision, dist=dist, num_classes=len(labels), class_weight=weight,
                          progress=progress)
        state = LoopState()
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
            f"{job.split.val.size} validation (fold {job.split.val_fold}), {job.split.test.size} test "
            f"(fold {job.split.test_fold}) examples -> {run_dir}")

        title = f"{cfg.model} on {os.path.basename(os.path.normpath(st.path))}"
        last_plot = [time.monotonic()]

        def checkpoint_now() -> None:
            rngs = dist.gather(get_rng_state())
            if dist.is_main:
                save_checkpoint(os.path.join(run_dir, "checkpoints", "last.pt"), {
                    "trainer": trainer.state_dict(), "loop": state.state_dict(),
                    "rng": rngs, "model": trainer.module.state_dict(), "train_config": cfg.to_dict(),
                })

        def end_of_epoch(row: dict, improved: bool) -> bool:
            checkpoint_now()
            if dist.is_main:
                if improved:
                    clf = NetClassifier(cfg.model, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                        lr=cfg.learning_rate, weight_decay=cfg.decay, device="auto", seed=cfg.seed,
                                        classes=labels, **cfg.model_options)
                    clf.module_, clf.classes_ = trainer.module, np.asarray(labels)
                    clf.in_channels_, clf.history_ = int(st.features.shape[1]), state.history
                    save_dir(clf.save, os.path.join(run_dir, "model"))
                # The figure costs ~0.2 s: redrawn once a minute, and at the end (in _finish).
                plot = time.monotonic() - last_plot[0] > PLOT_EVERY_S
                write_history(run_dir, state.history, title=title, plot=plot)
                if plot:
                    last_plot[0] = time.monotonic()
                write_run_info(run_dir, st, cfg, job.split, status="running", epochs_done=state.epoch,
                            best_epoch=state.best_epoch)
                say(_epoch_line(row, cfg.epochs, improved))
            return bool(on_epoch(row, trainer.module)) if on_epoch else False

        status, signalled = "done", False
        try:
            with StopSignal() as stop:
                outcome = trainer.fit(state, stop=lambda: stop.requested, on_epoch_end=end_of_epoch)
            if outcome == "stopped":
                status = "interrupted"
                if state.batch:  # mid-epoch: the epoch-end checkpoint is older than this
                    checkpoint_now()
                signalled = bool(dist.max_(torch.tensor([float(stop.requested)], device=device)).item())
            elif outcome == "early_stop":
                say(f"early stop: no better validation macro-F1 for {cfg.early_stop} epochs "
                    f"(best epoch {state.best_epoch})")
        except Diverged as err:
            if dist.is_main:
                write_run_info(run_dir, st, cfg, job.split, status="diverged", epochs_done=state.epoch,
                            best_epoch=state.best_epoch, error=str(err))
            kept = f"the last good checkpoint (epoch {state.epoch}) is kept in {run_dir}" if state.epoch \
                else "no epoch finished, so there is no checkpoint"
            raise SpectroError(f"training diverged: {err}; {kept}; try a lower --lr"
                               + (" or --no-amp" if precision.dtype is not None else "")) from None
        except KeyboardInterrupt:
            if dist.is_main:
                write_run_info(run_dir, st, cfg, job.split, status="interrupted", epochs_done=state.epoch,
                            best_epoch=state.best_epoch)
            raise
    return state, status, signalled


def _finish(job: _Job, dist: Distributed, state: LoopState, status: str, say, signalled: bool) -> Optional[Run]:
    """Record the outcome; when done, score the test fold once with the best weights (rank 0)."""
    if not dist.is_main:
        return None
    run_dir, st, cfg = job.run_dir, job.store, job.cfg
    write_history(run_dir, state.history, title=f"{cfg.model} on {os.path.basename(os.path.normpath(st.path))}")
    where = f"epoch {state.epoch}" + (f", batch {state.batch}" if state.batch else "")
    write_run_info(run_dir, st, cfg, job.split, status=status, epochs_done=state.epoch, best_epoch=state.best_epoch,
                stopped_at=where if status == "interrupted" else None, error=None)
    if status == "interrupted":
        msg = f"stopped at {where}; continue with: spectro train --resume {run_dir}"
        if signalled:
            raise TrainingInterrupted(msg)
        say(msg)
        return load_run(run_dir, device="cpu") if os.path.isdir(os.path.join(run_dir, "model")) else None
    return _score_test(job, say)


def _score_test(job: _Job, say) -> Run:
    run = load_run(job.run_dir, device="cpu")
    if job.split.test.size:
        metrics = evaluate(run, "test", job.store)
        test = {k: metrics[k] for k in _HEADLINE} | {"n": metrics["n"]}
        write_run_info(job.run_dir, job.store, job.cfg, job.split, test=test)
        run.info = read_run_info(job.run_dir)
        say(f"test fold {job.split.test_fold}: accuracy {test['accuracy']:.4f}, balanced accuracy "
            f"{test['balanced_accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} ({test['n']} examples); "
            f"report in {os.path.join(job.run_dir, 'eval')}")
    return run


_HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")


# ---------------------------------------------------------------------------
# The SVM
# ---------------------------------------------------------------------------

def _train_svm(job: _Job, progress: bool, given: set) -> Optional[Run]:
    from .models import make_classifier

    say = _printer(progress)
    ignored = sorted(given & set(NET_ONLY_FIELDS))
    if ignored:
        print(f"spectro: note: the svm ignores {', '.join(ignored)} (settings of networks)", file=sys.stderr)
    cfg, st, labels = job.cfg, job.store, list(job.store.labels)
    if job.resumed and os.path.isfile(os.path.join(job.run_dir, "model", "model.json")):
        say(f"{job.run_dir}: the svm was already fitted")
        return _score_test(job, say)
    t0 = time.perf_counter()
    normalise = lambda rows: (np.asarray(st.features[rows], np.float32) - job.mean[None, :, :, None]) \
        / job.std[None, :, :, None]  # noqa: E731
    names = np.asarray(labels, dtype=object)
    X, y = normalise(job.split.train), st.y[job.split.train]
    say(f"fitting svm on {len(y)} examples ({len(labels)} classes) -> {job.run_dir}")
    clf = make_classifier("svm", seed=cfg.seed, classes=labels, **cfg.model_options)
    clf.fit(X, names[y], groups=st.groups[job.split.train])  # group-aware inner search
    seconds = time.perf_counter() - t0
    train_m = compute_metrics(y, clf.predict_proba(X), labels)
    row = {"epoch": 1, "lr": None, "train_loss": train_m["log_loss"], "train_accuracy": train_m["accuracy"],
           "val_loss": None, "val_accuracy": None, "val_macro_f1": None, "seconds": seconds,
           "samples_per_s": len(y) / seconds}
    if job.split.val.size:
        val_m = compute_metrics(st.y[job.split.val], clf.predict_proba(normalise(job.split.val)), labels)
        row.update(val_loss=val_m["log_loss"], val_accuracy=val_m["accuracy"], val_macro_f1=val_m["macro_f1"])
    save_dir(clf.save, os.path.join(job.run_dir, "model"))
    write_history(job.run_dir, [row], title=f"svm on {os.path.basename(st.path)}")
    write_run_info(job.run_dir, st, cfg, job.split, status="done", epochs_done=1, best_epoch=1)
    say(_epoch_line(row, 1, True))
    return _score_test(job, say)


def _printer(enabled: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if enabled:
            print(f"spectro: {msg}", file=sys.stderr, flush=True)
    return say


def _epoch_line(row: dict, epochs: int, improved: bool) -> str:
    def f(v: Any, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)

    return (f"epoch {row['epoch']}/{epochs}  loss {f(row['train_loss'])}  acc {f(row['train_accuracy'])}  "
            f"val loss {f(row['val_loss'])}  val acc {f(row['val_accuracy'])}  val F1 {f(row['val_macro_f1'])}  "
            f"lr {f(row['lr'], '.2e')}  {row['seconds']:.1f} s  {row['samples_per_s']:.0f}/s"
            + ("  *" if improved else ""))
