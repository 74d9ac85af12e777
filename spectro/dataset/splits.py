"""Splits: which rows of a store train, validate and test.

The store records a fold per example (:mod:`spectro.signals.folds` assigns
them when the source gives none); a split holds out a test fold, and a
validation fold or a small group-aware hold-out of the training groups.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from spectro.config import MIN_HOLDOUT, VAL_FRACTION
from spectro.errors import SpectroError

__all__ = ["Split", "ROLES", "default_folds", "make_split", "holdout", "nested_groups", "cv_splits", "rows_of_ids",
           "MAX_HOLDOUT_EXCESS"]

#: A hold-out larger than this many times its fraction is not made: with few
#: groups (2 sound sets: one is half the data) validation goes instead.
MAX_HOLDOUT_EXCESS = 1.5


@dataclass(frozen=True)
class Split:
    """Row numbers of the store on each side of a split.

    ``test`` rows are never looked at while training: not for early stopping,
    not for model selection, not for normalisation statistics. ``val`` may be
    empty (a store of two folds); the last epoch is then the one kept.

    Attributes
    ----------
    train, val, test : np.ndarray [dtype=int64], sorted row numbers
    test_fold, val_fold : int or None
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_fold: Optional[int]
    val_fold: Optional[int]

    def role_of_rows(self, n: int) -> np.ndarray:
        """``"train"``, ``"val"``, ``"test"`` or ``""`` for each of the ``n`` store rows."""
        roles = np.full(n, "", dtype=object)
        for name in ROLES:
            roles[getattr(self, name)] = name
        return roles


ROLES = ("train", "val", "test")


def default_folds(store: Any, test_fold: Optional[int] = None,
                  val_fold: Optional[int] = None) -> tuple[int, Optional[int]]:
    """Resolve the test and validation folds of ``store``.

    Folds named by the source (Speech Commands: ``testing``/``validation``
    lists) win: the fold named like "test" is the test fold and the one named
    like "valid" the validation fold. Otherwise the test fold is the highest
    fold id, and there is no validation *fold* unless one is asked for:
    :func:`make_split` then validates on a small hold-out of the training
    groups instead (a whole fold would cost a fifth of the training data).

    Raises
    ------
    SpectroError
        A fold that does not exist, a validation fold equal to the test fold,
        or a store of one fold (nothing left to train on).
    """
    folds = list(store.fold_ids)
    names = {int(k): str(v).lower() for k, v in (store.meta.get("folds", {}).get("names") or {}).items()}
    for which, fold in (("test", test_fold), ("validation", val_fold)):
        if fold is not None and fold not in folds:
            raise SpectroError(f"{which} fold {fold} does not exist; the store has folds {folds}")
    if len(folds) < 2:
        # preprocess records why the store got a single fold, and what gives more (--folds alone may not).
        advice = (store.meta.get("folds") or {}).get("advice") or (
            "rebuild it with two folds or more: more files per class, or a group rule that gives two groups or more")
        raise SpectroError(f"the store has a single fold ({folds[0] if folds else 'none'}): nothing would be "
                           f"left to train on after holding out a test fold; {advice}")
    named_test = [f for f, n in names.items() if n.startswith("test") and f in folds]
    named_val = [f for f, n in names.items() if n.startswith("valid") and f in folds]
    if test_fold is None:
        test_fold = named_test[0] if named_test else folds[-1]
    if val_fold is None and named_val and named_val[0] != test_fold:
        val_fold = named_val[0]
    if val_fold == test_fold:
        raise SpectroError(f"the validation fold must differ from the test fold, both are {test_fold}")
    return test_fold, val_fold


def make_split(store: Any, test_fold: Optional[int] = None, val_fold: Optional[int] = None, *,
               val_fraction: float = VAL_FRACTION, seed: int = 0, min_holdout: int = MIN_HOLDOUT,
               train_fraction: float = 1.0) -> Split:
    """The :class:`Split` of ``store`` for these folds (see :func:`default_folds`).

    Validation is the fold ``val_fold`` when one is given (or named by the
    source); otherwise a seeded, stratified, group-aware hold-out of about
    ``val_fraction`` of the training folds' groups (:func:`holdout`), so that
    validation costs little data and never shares a speaker, kit or
    recording with training or test. ``val_fraction=0``: no validation;
    nor when the hold-out would hold fewer than ``min_holdout`` clips.
    ``train_fraction < 1`` keeps a seeded, class-stratified, nested subset of
    about that share of the training groups (:func:`nested_groups`, a
    learning curve's point), and draws the hold-out inside it.
    """
    test_fold, val_fold = default_folds(store, test_fold, val_fold)
    folds = np.asarray(store.folds)
    test = np.flatnonzero(folds == test_fold)
    y, groups = np.asarray(store.y), _groups(store)
    if val_fold is not None:
        val = np.flatnonzero(folds == val_fold)
        train = np.flatnonzero((folds != test_fold) & (folds != val_fold))
        train = train[nested_groups(y[train], groups[train], train_fraction, seed=seed)]
    else:
        rest = np.flatnonzero(folds != test_fold)
        rest = rest[nested_groups(y[rest], groups[rest], train_fraction, seed=seed)]
        val = holdout(y[rest], groups[rest], fraction=val_fraction, seed=seed,
                      min_rows=min_holdout)
        val = rest[val]
        train = np.setdiff1d(rest, val)
    if train.size == 0:
        raise SpectroError(f"no training rows left after holding out test fold {test_fold} "
                           f"and validation fold {val_fold}")
    return Split(train.astype(np.int64), val.astype(np.int64), test.astype(np.int64), test_fold, val_fold)


def holdout(y: np.ndarray, groups: np.ndarray, *, fraction: float = VAL_FRACTION, seed: int = 0,
            min_rows: int = MIN_HOLDOUT) -> np.ndarray:
    """Positions of a stratified, group-aware hold-out of about ``fraction`` of the groups.

    One split of scikit-learn's ``StratifiedGroupKFold`` with ``round(1 /
    fraction)`` folds (fewer when there are fewer groups): whole groups only,
    class proportions kept as far as the groups allow. When the groups are
    too few or too large for that (the hold-out would exceed
    ``MAX_HOLDOUT_EXCESS * fraction`` of the rows, e.g. one of two sound
    sets), there is no hold-out: a model then trains on every training row
    and keeps its last epoch, rather than lose a group it needs to generalise.
    Nor when it would hold fewer than ``min_rows`` rows: a few dozen clips
    pick a noisy "best" epoch and cost a tenth of a small training set
    (``spectro.config.MIN_HOLDOUT``).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    groups : np.ndarray [shape=(n,)]
        Speaker, kit, recording...; rows of one group land on one side.
    fraction : float in [0, 1)
    seed : int
    min_rows : int
        The smallest hold-out worth having (0: any).

    Returns
    -------
    np.ndarray [dtype=int64], sorted positions into ``y`` (empty with ``fraction`` 0 or too few groups)
    """
    n_groups = len(np.unique(groups))
    if fraction <= 0 or n_groups < 2:
        return np.zeros(0, dtype=np.int64)
    # No more folds than groups, nor than the largest class has members (scikit-learn's limit).
    k = int(min(max(2, round(1 / fraction)), n_groups, np.unique(y, return_counts=True)[1].max()))
    if k < 2:
        return np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only m members": legal
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        _, val = next(splitter.split(np.zeros(len(y)), y, groups))
    if len(val) > MAX_HOLDOUT_EXCESS * fraction * len(y) or len(val) < min_rows:
        return np.zeros(0, dtype=np.int64)
    return np.sort(val).astype(np.int64)


def nested_groups(y: np.ndarray, groups: np.ndarray, fraction: float, *, seed: int = 0) -> np.ndarray:
    """Positions of the rows of about ``fraction`` of the groups: seeded, class-stratified and nested.

    The groups are put in one seeded order, each class's groups (by their most
    common class) spread evenly along it, and the first ``ceil(fraction *
    groups)`` are kept: for one seed, a smaller fraction's groups are always
    among a larger one's (a learning curve adds data, it never swaps it), and
    every class keeps about its share of groups.

    Parameters
    ----------
    y, groups : np.ndarray [shape=(n,)]
    fraction : float in (0, 1]
        1 keeps every row.
    seed : int

    Returns
    -------
    np.ndarray [dtype=int64], sorted positions into ``y``
    """
    if not 0 < fraction <= 1:
        raise SpectroError(f"a training fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return np.arange(len(y), dtype=np.int64)
    names, of_row = np.unique(groups, return_inverse=True)
    y = np.asarray(y)
    major = np.array([np.bincount(y[of_row == g]).argmax() for g in range(len(names))])
    rng = np.random.default_rng(seed)
    where = np.empty(len(names))
    for c in np.unique(major):
        members = rng.permutation(np.flatnonzero(major == c))
        where[members] = (np.arange(len(members)) + rng.random()) / len(members)  # spread along [0, 1)
    order = np.lexsort((rng.random(len(names)), where))
    keep = order[:max(1, int(np.ceil(fraction * len(names) - 1e-9)))]
    return np.flatnonzero(np.isin(of_row, keep)).astype(np.int64)


def cv_splits(store: Any, *, val_fraction: float = VAL_FRACTION, seed: int = 0,
              min_holdout: int = MIN_HOLDOUT, train_fraction: float = 1.0) -> list[Split]:
    """One :class:`Split` per fold, each fold the test fold once, validated as :func:`make_split` does."""
    return [make_split(store, fold, val_fraction=val_fraction, seed=seed, min_holdout=min_holdout,
                       train_fraction=train_fraction) for fold in store.fold_ids]


def _groups(store: Any) -> np.ndarray:
    """Each row's group: the store's groups (its source file where none is known), else each row its own."""
    groups = getattr(store, "groups", None)
    return np.asarray(groups) if groups is not None else np.arange(len(store.folds))


def rows_of_ids(store: Any, ids: Sequence[str], *, what: str = "examples") -> np.ndarray:
    """Sorted store row numbers of the example ``ids`` (as a run's split.csv records them).

    Raises
    ------
    SpectroError
        When some ids are not in the store, naming how many and the first.
    """
    position = {k: i for i, k in enumerate(np.asarray(store.ids).tolist())}
    missing = [k for k in ids if k not in position]
    if missing:
        raise SpectroError(f"{len(missing)} of the {len(ids)} {what} are not in store {store.path} "
                           f"(e.g. {missing[0]!r})")
    return np.sort(np.fromiter((position[k] for k in ids), dtype=np.int64, count=len(ids)))
