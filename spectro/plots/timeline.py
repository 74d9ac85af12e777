"""The figure of a long recording: its spectrogram with the predicted labels over time.

matplotlib's ``Figure`` API only (no pyplot, no backend switch): the caller
owns the backend, and a figure never lingers in a global registry.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.plots.figures import save_figure
from spectro.signals.features import frequencies

__all__ = ["plot_timeline", "png_name"]


def plot_timeline(image: np.ndarray, cfg: FeatureConfig, *, starts: np.ndarray, ends: np.ndarray,
                  window_proba: np.ndarray, labels: Sequence[str], title: str, path: str) -> str:
    """Write a PNG: the spectrogram on top, each window's label and probability below.

    Parameters
    ----------
    image : np.ndarray [shape=(F, T)]
        Spectrogram of the whole recording (same FeatureConfig as the windows).
    starts, ends : np.ndarray [shape=(k,)]
        Window bounds in seconds.
    window_proba : np.ndarray [shape=(k, C)]
    labels : sequence of str
        Class names of the C columns.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    SpectroError
        ``path`` cannot be written (a read-only folder, a full disk).
    """
    fig = Figure(figsize=(max(6.0, min(24.0, 2.0 + 0.6 * len(starts))), 5.0), constrained_layout=True)
    ax_img, ax_lab = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    seconds = image.shape[1] * cfg.hop_length / cfg.sample_rate
    freqs = frequencies(cfg)
    mesh = ax_img.imshow(image, origin="lower", aspect="auto", cmap="magma",
                         extent=(0.0, seconds, 0, len(freqs)))
    ticks = np.linspace(0, len(freqs) - 1, 5).astype(int)
    ax_img.set_yticks(ticks + 0.5, [f"{freqs[i]:.0f}" for i in ticks])
    ax_img.set_ylabel(f"frequency (Hz, {cfg.freq_scale})")
    fig.colorbar(mesh, ax=ax_img, label="PCEN" if cfg.compression == "pcen" else "dB" if cfg.db else "level")
    ax_img.set_title(title, fontsize=9)

    best = window_proba.argmax(axis=1)
    colours = _colours(len(labels))
    # Overlapping windows: each one in its own lane (row) so none hides another.
    hop = float(starts[1] - starts[0]) if len(starts) > 1 else float(ends[0] - starts[0])
    lanes = max(1, int(np.ceil((ends[0] - starts[0]) / hop - 1e-9))) if hop > 0 else 1
    for i, (a, b, j) in enumerate(zip(starts, ends, best)):
        lane = i % lanes
        p = float(window_proba[i, j])
        ax_lab.barh(lane, b - a, left=a, height=0.8, color=colours[j], alpha=0.35 + 0.65 * p, edgecolor="k",
                    linewidth=0.3)
        ax_lab.text((a + b) / 2, lane, f"{labels[j]}\n{p:.2f}", ha="center", va="center", fontsize=7)
    ax_lab.set_yticks([])
    ax_lab.set_ylim(-0.6, lanes - 0.4)
    ax_lab.set_xlabel("time (s)")
    ax_lab.set_ylabel("prediction")
    ax_lab.set_xlim(0.0, max(seconds, float(ends.max())))
    try:
        save_figure(fig, path)
    except OSError as err:  # a read-only or full folder: one line, no half-written PNG (save_figure removed it)
        raise SpectroError(f"cannot write {path}: {err.strerror or err}; give --png a folder you can write "
                           "to") from None
    return path


def png_name(source: str) -> str:
    """A file name for the figure of ``source`` (its base name, made safe)."""
    base = os.path.splitext(os.path.basename(source))[0] or "signal"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base) + ".png"


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
