"""Every default that changes a result, in one dict, and its short hash: what a stored output was made with.

A notebook's outputs, a README table or a benchmark row are only current
while the defaults that produced them are: the FeatureConfig and TrainConfig
defaults, the settings read from the data, the SVM's grid, features and
calibration, the augmentation policy and the run warnings' rule.
``notebooks/render.py`` stamps each notebook with :func:`defaults_stamp`,
and tests/test_notebooks.py fails, with the command that fixes it, when the
stamp no longer matches the code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from spectro import config as C
from spectro.config import FeatureConfig, TrainConfig
from spectro.dataset import augment
from spectro.models.catalog import COMPARE_ONLY, KINDS, MODELS
from spectro.models.svm import SVMClassifier
from spectro.training import health

__all__ = ["result_defaults", "defaults_stamp", "stamp_kinds"]

# TrainConfig settings that only add a log beside the run: no number changes with them.
_LOG_FIELDS = ("tensorboard",)
# Settings of the SVM that change where it runs or how fast, not what it predicts.
_SVM_RUNTIME = ("n_jobs", "chunk_size", "classes", "seed")


def result_defaults(kinds: Sequence[str] = KINDS) -> dict[str, Any]:
    """The defaults that decide the numbers a run reports, as plain JSON values.

    ``kinds``: the kinds of classifier the output was made with (:func:`stamp_kinds`); the SVM's
    own settings belong to the stamp only when an SVM is among them, so an output of networks alone
    stays current when only the SVM changes. Everything else is in every stamp.
    """
    svm = {k: list(v) if isinstance(v, tuple) else v
           for k, v in SVMClassifier().get_params().items() if k not in _SVM_RUNTIME}
    # identity(): an option added later and off by default keeps every stored stamp; turned on, it changes it.
    found = {
        "feature_config": FeatureConfig().identity(),
        "train_config": {k: v for k, v in TrainConfig().identity().items() if k not in _LOG_FIELDS},
        "inferred": {"max_rate": C.INFERRED_MAX_RATE, "max_duration": C.INFERRED_MAX_DURATION,
                     "window_s": C.INFERRED_WINDOW_SECONDS, "hop_s": C.INFERRED_HOP_SECONDS,
                     "folds": C.FOLDS, "seed": C.SEED},
        "optimizers": {k: list(v) for k, v in C.OPTIMIZER_DEFAULTS.items()},
        "augmentation": {"mask_fraction": augment.MASK_FRACTION, "n_masks": augment.N_MASKS,
                         "time_shift_fraction": C.TIME_SHIFT_FRACTION},
        **({"svm": svm} if "svm" in kinds else {}),
        "warnings": {"improving_by": health.IMPROVING_BY, "last_fraction": health.LAST_FRACTION,
                     "chance_margin": health.CHANCE_MARGIN},
    }
    if TrainConfig().gain_eq:
        found["augmentation"]["eq_terms"] = augment.EQ_TERMS
    return found


def defaults_stamp(kinds: Sequence[str] = KINDS) -> str:
    """Sixteen hex digits of :func:`result_defaults` (of ``kinds``): equal stamps, equal defaults."""
    blob = json.dumps(result_defaults(tuple(kinds)), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stamp_kinds(models: Iterable[str]) -> tuple[str, ...]:
    """The kinds of classifier (in :data:`~spectro.models.catalog.KINDS` order) behind ``models``.

    The rows compare adds (the ensemble, the reference script) train nothing of spectro's; a name the
    catalog does not know counts as every kind, so a stamp is never narrower than its output.
    """
    names = list(models)
    if any(m not in MODELS and m not in COMPARE_ONLY for m in names):
        return tuple(KINDS)
    found = {MODELS[m].kind for m in names if m in MODELS}
    return tuple(k for k in KINDS if k in found)
