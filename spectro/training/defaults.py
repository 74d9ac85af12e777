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
from typing import Any

from spectro import config as C
from spectro.config import FeatureConfig, TrainConfig
from spectro.dataset import augment
from spectro.models.svm import SVMClassifier
from spectro.training import health

__all__ = ["result_defaults", "defaults_stamp"]

# TrainConfig settings that only add a log beside the run: no number changes with them.
_LOG_FIELDS = ("tensorboard",)
# Settings of the SVM that change where it runs or how fast, not what it predicts.
_SVM_RUNTIME = ("n_jobs", "chunk_size", "classes", "seed")


def result_defaults() -> dict[str, Any]:
    """The defaults that decide the numbers a run reports, as plain JSON values."""
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
        "svm": svm,
        "warnings": {"improving_by": health.IMPROVING_BY, "last_fraction": health.LAST_FRACTION,
                     "chance_margin": health.CHANCE_MARGIN},
    }
    if TrainConfig().gain_eq:
        found["augmentation"]["eq_terms"] = augment.EQ_TERMS
    return found


def defaults_stamp() -> str:
    """Sixteen hex digits of :func:`result_defaults`: equal stamps, equal defaults."""
    blob = json.dumps(result_defaults(), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
