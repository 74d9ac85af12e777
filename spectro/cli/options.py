"""How each :class:`~spectro.config.TrainConfig` field looks on the command line: its help section,
its help text and argparse's extras (``metavar``, ``const``, another flag name).

The value of a setting, its default and its choices live in the dataclass alone; this table is
presentation. :func:`spectro.cli.parsers.add_training_options` makes one option per field of
``train`` and ``compare`` from it (tests/cli/test_cli.py fails for a field that has no row).
"""

from __future__ import annotations

from typing import Any

from spectro.config import GAIN_EQ_DB, OPTIMIZER_DEFAULTS, TIME_SHIFT_FRACTION

__all__ = ["TRAINING_HELP", "GROUPS"]

#: Help sections, in the order ``--help`` lists them.
GROUPS = ("optimisation", "augmentation", "split", "hardware", "model", "run")


def _by_optimizer(i: int) -> str:
    return ", ".join(f"{v[i]:g} {k}" for k, v in OPTIMIZER_DEFAULTS.items())


#: field -> (group, help, argparse extras). The help's "(default ...)" is added from the dataclass.
TRAINING_HELP: dict[str, tuple[str, str, dict[str, Any]]] = {
    "model": ("model", "model name (see spectro models)", {}),
    "model_options": ("model", "model option KEY=VALUE, e.g. stem=small or dropout=0.2 (repeatable)",
                      {"flag": "--option"}),
    "epochs": ("optimisation", "passes over the training rows", {}),
    "batch_size": ("optimisation", "images per step", {}),
    "optimizer": ("optimisation", "SGD with Nesterov momentum 0.9, or AdamW", {}),
    "lr": ("optimisation", f"peak learning rate (default: the optimizer's, {_by_optimizer(0)})", {}),
    "weight_decay": ("optimisation", f"(default: the optimizer's, {_by_optimizer(1)})", {}),
    "schedule": ("optimisation", "warm-up then cosine decay to 0; OneCycle; or x0.1 at 50% and 75% of training", {}),
    "warmup_epochs": ("optimisation", "linear warm-up (cosine and step schedules)", {}),
    "label_smoothing": ("optimisation", "label smoothing of the loss", {}),
    "grad_clip": ("optimisation", "clip the gradient norm to NORM", {"metavar": "NORM"}),
    "test_fold": ("split", "the fold held out for testing (default: the fold named test, else the highest)",
                  {"metavar": "K"}),
    "val_fold": ("split", "validate on this whole fold (default: the fold the source names validation, else a "
                 "hold-out of --val-fraction of the training groups)", {"metavar": "K"}),
    "val_fraction": ("split", "share of the training folds' groups held out for validation when there is no "
                     "validation fold (0: none); stratified, group-aware, seeded", {"metavar": "F"}),
    "min_holdout": ("split", "no hold-out when it would hold fewer clips than N: every training row trains and "
                    "the last epoch is kept (0: always hold out)", {"metavar": "N"}),
    "train_fraction": ("split", "train on a seeded, class-stratified, nested share F of the training groups "
                       "(a learning curve's point; 1: all)", {"metavar": "F"}),
    "device": ("hardware", "auto (CUDA, then MPS, then CPU), cuda, cuda:N, mps or cpu", {}),
    "amp": ("hardware", "mixed precision (default: on where it pays: CUDA, MPS, CPUs with AMX)", {}),
    "channels_last": ("hardware", "NHWC memory format (default: on with CUDA, on the CPU and with mixed "
                      "precision)", {}),
    "specaugment": ("augmentation", "SpecAugment frequency and time masks", {}),
    "mixup": ("augmentation", "mixup with Beta(ALPHA, ALPHA); 0: off", {"metavar": "ALPHA"}),
    "time_shift": ("augmentation", "random circular time shift of up to FRACTION of the width (given alone: "
                   f"{TIME_SHIFT_FRACTION}); 0: off", {"metavar": "FRACTION", "const": TIME_SHIFT_FRACTION}),
    "gain_eq": ("augmentation", "random gain and smooth EQ curve of up to DB decibels per example, as another "
                f"microphone or room would give (given alone: {GAIN_EQ_DB:g}); dB images only; 0: off",
                {"metavar": "DB", "const": GAIN_EQ_DB}),
    "balance": ("augmentation", "weight the loss by inverse class frequency", {}),
    "early_stop": ("optimisation", "stop after PATIENCE epochs without a better validation macro-F1",
                   {"metavar": "PATIENCE"}),
    "seed": ("run", "seeds the weights, the batches, the augmentation and the hold-out", {}),
    "workers": ("hardware", "DataLoader processes (default 0 on the CPU, 4 on a GPU)", {}),
    "pretrained": ("model", "start from this local checkpoint", {"metavar": "PATH"}),
    "tensorboard": ("run", "also log loss, accuracy, macro-F1 and lr per epoch for TensorBoard in "
                    "RUN/tensorboard (pip install 'spectro[tensorboard]')", {}),
}
