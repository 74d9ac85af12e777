"""Paired tests for two classifiers scored on the same examples.

Pure functions of arrays, no files: :func:`mcnemar_exact` (is one model
right where the other is wrong more often than chance?), :func:`holm`
(several such tests at once), and a bootstrap that resamples *groups*
(speakers, sessions, recordings) rather than single examples, because clips
of one speaker are not independent: their errors come together, and a test
that treats them as independent is too sure of itself.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import binomtest

__all__ = ["mcnemar_exact", "holm", "bootstrap_weights", "paired_bootstrap_diff", "percentile_interval"]


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Exact (binomial) McNemar test of two classifiers on the same examples.

    Parameters
    ----------
    correct_a, correct_b : np.ndarray [shape=(N,), dtype=bool]
        Whether model A (B) got example i right.

    Returns
    -------
    p : float
        Two-sided p-value of ``binomtest(b, b + c, 0.5)``; 1.0 when the models
        never disagree.
    b : int
        Examples A got right and B wrong.
    c : int
        Examples A got wrong and B right.
    """
    a = np.asarray(correct_a, dtype=bool)
    bb = np.asarray(correct_b, dtype=bool)
    if a.shape != bb.shape:
        raise ValueError(f"correct_a and correct_b differ in shape: {a.shape} vs {bb.shape}")
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    # Only the discordant pairs carry information; under H0 each is A's win with probability 1/2.
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return p, b, c


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (controls the family-wise error rate).

    Sort the m p-values ascending, multiply the k-th (0-based) by ``m - k``,
    make the sequence non-decreasing and cap it at 1. A hypothesis is rejected
    at level alpha when its adjusted p-value is <= alpha (Holm, 1979).

    Parameters
    ----------
    pvalues : sequence of float [shape=(m,)]

    Returns
    -------
    np.ndarray [shape=(m,)]
        Adjusted p-values in the input order.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def bootstrap_weights(groups: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """How often each example is drawn when whole groups are resampled with replacement.

    Parameters
    ----------
    groups : np.ndarray [shape=(N,)]
        Group of each example (any hashable values). With every example its
        own group this is the ordinary bootstrap.
    n_boot : int
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_boot, N), dtype=float64]
        Row r: the multiplicity of each example in resample r (an example's
        weight is its group's draw count).
    """
    _, code = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    g = int(code.max()) + 1 if code.size else 0
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot) if g else np.zeros((n_boot, 0))
    return counts[:, code].astype(np.float64)  # (n_boot, N)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``samples`` [shape=(B,)]."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(s, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray, groups: np.ndarray, *,
                          n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B, with a bootstrap interval over groups.

    Both models are scored on the same resampled examples in each draw (a
    paired bootstrap), and whole groups are drawn, so the interval reflects how
    much the difference would move with other speakers (sessions, recordings),
    not just other clips of the same ones. With a single group (a test fold
    of one speaker) every group draw is the same set, a zero-width interval
    that claims a certainty no test set has; examples are drawn instead.

    Parameters
    ----------
    correct_a, correct_b : np.ndarray [shape=(N,), dtype=bool]
    groups : np.ndarray [shape=(N,)]
    n_boot, seed : int
    level : float
        Coverage of the percentile interval.

    Returns
    -------
    diff, low, high : float
        The observed difference and its interval; the difference is
        significant at ``1 - level`` when the interval excludes 0.
    """
    d = np.asarray(correct_a, dtype=np.float64) - np.asarray(correct_b, dtype=np.float64)  # (N,) in {-1, 0, 1}
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    if np.unique(np.asarray(groups).astype(str)).size < 2:
        groups = np.arange(d.size)  # one group: each example is its own
    w = bootstrap_weights(groups, n_boot=n_boot, seed=seed)  # (B, N)
    total = w.sum(axis=1)
    samples = np.divide(w @ d, total, out=np.full(n_boot, np.nan), where=total > 0)
    low, high = percentile_interval(samples, level)
    return float(d.mean()), low, high
