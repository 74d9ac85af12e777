"""Folds assigned when a store is built: stratified, and group-aware when groups are known.

Folds are assigned per source *file*, never per image: every window cut
from one recording inherits that recording's fold, and with known groups
(speaker, session, machine) a whole group stays in one fold, so a clip and
its neighbour never sit on both sides of a split.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

__all__ = ["assign_folds"]


def assign_folds(
    labels: Sequence[str],
    groups: Optional[Sequence[str]] = None,
    *,
    k: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Stratified (and group-aware when ``groups`` is given) folds ``1..k``.

    Parameters
    ----------
    labels : sequence of str [shape=(n,)]
        One label per file.
    groups : sequence of str [shape=(n,)], optional
        One group per file; files sharing a group share a fold.
    k : int
        Number of folds; lowered to the number of groups (or files), or to
        the size of the largest class, when that is smaller.
    seed : int
        Shuffling seed: equal inputs and seed give equal folds.

    Returns
    -------
    folds : np.ndarray [shape=(n,), dtype=int64], values in ``1..k``
    """
    n = len(labels)
    y = np.asarray(labels)
    g = np.asarray(groups) if groups is not None else np.arange(n)
    # More folds than groups, or than the largest class has members, cannot
    # be stratified: lower k (config.json records the k actually used).
    k = min(k, len(np.unique(g)), int(np.unique(y, return_counts=True)[1].max()) if n else 0)
    folds = np.ones(n, dtype=np.int64)
    if k < 2:
        return folds
    with warnings.catch_warnings():
        # "The least populated class has only m members": legal, just uneven.
        warnings.simplefilter("ignore", UserWarning)
        if groups is None:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), y)
        else:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), y, g)
        for fold, (_, test) in enumerate(splits, start=1):
            folds[test] = fold
    return folds
