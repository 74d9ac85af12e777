"""``cross_validate``: one run per fold, each fold the test fold once, and their summary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from spectro.config import RUNTIME_FIELDS, TrainConfig
from spectro.dataset.splits import cv_splits
from spectro.errors import SpectroError
from spectro.metrics.scores import HEADLINE
from spectro.signals.store import Store, open_store
from spectro.training.classifier import classifier_class
from spectro.training.distributed import Distributed
from spectro.training.run import load_run, run_status
from spectro.training.train import check_store, config_with, default_out, train
from spectro.utils.device import select_device
from spectro.utils.files import read_json, write_csv, write_json

__all__ = ["cross_validate", "CVResult"]


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

    Each run validates as :func:`spectro.train` does (a seeded, group-aware
    hold-out of ``val_fraction`` of its training groups, or none when they
    are too few; a fold the source names validation). With ``resume``,
    finished folds are kept and the others continued or started.

    Returns
    -------
    CVResult or None
        None on ranks > 0 under torchrun. Mean and (sample) standard
        deviation are over folds of ``accuracy``, ``balanced_accuracy`` and
        ``macro_f1``.
    """
    dist = Distributed.from_env()
    if resume is not None:
        info = read_json(os.path.join(resume, "cv.json")) if os.path.isfile(os.path.join(resume, "cv.json")) \
            else None
        if not info:
            raise SpectroError(f"{resume} is not a cross-validation directory (no cv.json)")
        out = resume
        cfg = TrainConfig.from_dict(info["train_config"], source=os.path.join(resume, "cv.json"))
        store = store if store is not None else info["store"]
    else:
        if store is None:
            raise SpectroError("cross-validation needs a store")
        cfg = config_with(config, model, settings)
        if cfg.test_fold is not None or cfg.val_fold is not None:
            raise SpectroError("--cv chooses the test and validation folds itself; drop --test-fold/--val-fold")
    st = store if isinstance(store, Store) else open_store(store)
    check_store(st)
    # One process group for all the folds (torchrun): the runs share it.
    owner = classifier_class(cfg.model).parallel and dist.init(select_device(cfg.device, local_rank=dist.local_rank))
    try:
        result = _cross_validate(st, cfg, out, dist, progress, settings)
        dist.barrier()
        return result
    finally:
        if owner:
            dist.close()


def _cross_validate(st: Store, cfg: TrainConfig, out: Optional[str], dist: Distributed, progress: bool,
                    settings: dict) -> Optional[CVResult]:
    out = default_out(out, cfg.model, dist)
    if dist.is_main:
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "cv.json"), {"store": os.path.abspath(st.path), "train_config": cfg.to_dict(),
                                                  "folds": st.fold_ids})
    rows = []
    for split in cv_splits(st, val_fraction=cfg.val_fraction, seed=cfg.seed, min_holdout=cfg.min_holdout,
                           train_fraction=cfg.train_fraction):
        fold_dir = os.path.join(out, f"fold{split.test_fold}")
        fold_cfg = cfg.replace(test_fold=split.test_fold, val_fold=split.val_fold)
        status = run_status(fold_dir)
        if status == "done":
            run = load_run(fold_dir, device="cpu") if dist.is_main else None
        elif status is not None:
            run = train(st, resume=fold_dir, progress=progress,
                        **{k: v for k, v in settings.items() if k in RUNTIME_FIELDS})
        else:
            run = train(st, out=fold_dir, config=fold_cfg, progress=progress)
        if run is not None:
            t = run.test_metrics or {}
            rows.append({"fold": split.test_fold, "val_fold": split.val_fold, **{k: t.get(k) for k in HEADLINE}})
    if not dist.is_main:
        return None
    keys = list(HEADLINE)
    values = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in keys}
    mean = {k: float(v.mean()) for k, v in values.items()}
    std = {k: float(v.std(ddof=1)) if v.size > 1 else 0.0 for k, v in values.items()}
    table = rows + [{"fold": "mean", **mean}, {"fold": "std", **std}]
    write_csv(os.path.join(out, "cv.csv"), ["fold", "val_fold", *keys], table)
    write_json(os.path.join(out, "cv.json"), {"store": os.path.abspath(st.path), "train_config": cfg.to_dict(),
                                              "folds": st.fold_ids, "results": rows, "mean": mean, "std": std})
    return CVResult(out, rows, mean, std)
