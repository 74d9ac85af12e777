"""A long recording in a few lines: runs of windows with the same label merged into segments.

"0-150 s normal, 150-300 s inner_race" says what 3,000 window lines do not. Pure arithmetic on a
prediction's windows, shared by the table, the CSV, the JSON and the timeline figure.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["merge_segments", "format_segments"]


def merge_segments(starts: np.ndarray, ends: np.ndarray, window_proba: np.ndarray,
                   labels: Sequence[str]) -> list[dict[str, Any]]:
    """Runs of consecutive windows whose most probable class is the same.

    Parameters
    ----------
    starts, ends : np.ndarray [shape=(k,)]
        Window bounds in seconds, in time order.
    window_proba : np.ndarray [shape=(k, C)]
    labels : sequence of str

    Returns
    -------
    list of dict
        ``start``, ``end`` (seconds), ``label``, ``windows`` (how many) and ``probability`` (the mean
        probability of that label over them). A segment ends where the next one starts (overlapping
        windows: the segments still tile the recording); the last ends with its last window.
    """
    k = len(starts)
    if k == 0:
        return []
    best = np.asarray(window_proba).argmax(axis=1)  # (k,)
    cuts = np.flatnonzero(np.diff(best)) + 1  # first window of every segment after the first
    firsts, lasts = np.r_[0, cuts], np.r_[cuts - 1, k - 1]
    out = []
    for n, (a, b) in enumerate(zip(firsts, lasts)):
        end = starts[firsts[n + 1]] if n + 1 < len(firsts) else ends[b]
        j = int(best[a])
        out.append({"start": round(float(starts[a]), 4), "end": round(float(end), 4), "label": labels[j],
                    "windows": int(b - a + 1), "probability": float(np.mean(window_proba[a:b + 1, j]))})
    return out


def format_segments(segments: Sequence[dict[str, Any]], *, limit: int = 20) -> str:
    """``0-150 s normal, 150-300 s inner_race``; past ``limit`` segments, how many more."""
    def sec(v: float) -> str:
        return f"{v:.2f}".rstrip("0").rstrip(".")

    shown = ", ".join(f"{sec(s['start'])}-{sec(s['end'])} s {s['label']}" for s in segments[:limit])
    more = len(segments) - limit
    return shown + (f", ... and {more} more segments (--format json lists them all)" if more > 0 else "")
