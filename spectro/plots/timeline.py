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
from matplotlib.patches import Patch

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.plots.figures import save_figure
from spectro.signals.features import frequencies

__all__ = ["plot_timeline", "timeline_figure", "png_name"]


def plot_timeline(image: np.ndarray, cfg: FeatureConfig, *, starts: np.ndarray, ends: np.ndarray,
                  window_proba: np.ndarray, labels: Sequence[str], title: str, path: str,
                  segments: Sequence[dict] = ()) -> str:
    """Write a PNG: the spectrogram on top, below it a strip of the windows coloured by their label.

    No text per window (at 50 windows it would be cut, at 3,000 a smear): a colour legend names the
    classes, the shade is the window's probability, and a segment (a run of windows with one label)
    is named inside the strip where its name fits.

    Parameters
    ----------
    image : np.ndarray [shape=(F, T)]
        Spectrogram of the whole recording (same FeatureConfig as the windows).
    starts, ends : np.ndarray [shape=(k,)]
        Window bounds in seconds.
    window_proba : np.ndarray [shape=(k, C)]
    labels : sequence of str
        Class names of the C columns.
    segments : sequence of dict
        ``start``, ``end``, ``label`` of each run of equal windows
        (:func:`spectro.inference.segments.merge_segments`).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    SpectroError
        ``path`` cannot be written (a read-only folder, a full disk).
    """
    fig = timeline_figure(image, cfg, starts=starts, ends=ends, window_proba=window_proba, labels=labels,
                          title=title, segments=segments)
    try:
        save_figure(fig, path)
    except OSError as err:  # a read-only or full folder: one line, no half-written PNG (save_figure removed it)
        raise SpectroError(f"cannot write {path}: {err.strerror or err}; give --png a folder you can write "
                           "to") from None
    return path


def timeline_figure(image: np.ndarray, cfg: FeatureConfig, *, starts: np.ndarray, ends: np.ndarray,
                    window_proba: np.ndarray, labels: Sequence[str], title: str,
                    segments: Sequence[dict] = ()) -> Figure:
    """The figure :func:`plot_timeline` writes (same parameters, no path)."""
    width = max(6.0, min(24.0, 2.0 + 0.6 * len(starts)))
    fig = Figure(figsize=(width, 5.4), layout="constrained")
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

    x_max = max(seconds, float(ends.max()))
    lanes = _draw_windows(ax_lab, starts, ends, window_proba, _colours(len(labels)))
    _name_segments(ax_lab, segments, lanes, inches_per_second=0.8 * width / max(x_max, 1e-9))
    ax_lab.set_yticks([])
    ax_lab.set_ylim(-0.6, lanes - 0.4)
    ax_lab.set_xlabel("time (s)")
    ax_lab.set_ylabel("prediction")
    ax_lab.set_xlim(0.0, x_max)
    shown = sorted(set(window_proba.argmax(axis=1).tolist()))
    colours = _colours(len(labels))
    fig.legend(handles=[Patch(facecolor=colours[j], edgecolor="none", label=labels[j]) for j in shown],
               loc="outside lower center", ncols=min(len(shown), max(1, int(width // 1.6))), fontsize=8,
               frameon=False, title="predicted class (pale: low probability)", title_fontsize=8)
    return fig


def _draw_windows(ax, starts: np.ndarray, ends: np.ndarray, window_proba: np.ndarray, colours: list) -> int:
    """Each window a bar in its class's colour, its alpha the probability; overlapping windows in lanes
    (rows) of their own so none hides another. Returns the number of lanes."""
    best = window_proba.argmax(axis=1)
    hop = float(starts[1] - starts[0]) if len(starts) > 1 else float(ends[0] - starts[0])
    lanes = max(1, int(np.ceil((ends[0] - starts[0]) / hop - 1e-9))) if hop > 0 else 1
    edge = len(starts) <= 60  # outlines only while a window is wide enough to show one
    for lane in range(lanes):
        idx = np.arange(lane, len(starts), lanes)
        faces = [(*colours[best[i]][:3], 0.3 + 0.7 * float(window_proba[i, best[i]])) for i in idx]
        ax.broken_barh([(float(starts[i]), float(ends[i] - starts[i])) for i in idx], (lane - 0.4, 0.8),
                       facecolors=faces, edgecolors="k" if edge else "none", linewidth=0.3)
    return lanes


def _name_segments(ax, segments: Sequence[dict], lanes: int, *, inches_per_second: float) -> None:
    """The label of each segment wide enough to hold it, in the middle of the strip."""
    for seg in segments:
        wide = (seg["end"] - seg["start"]) * inches_per_second
        if wide >= 0.075 * len(seg["label"]) + 0.15:
            ax.text((seg["start"] + seg["end"]) / 2, (lanes - 1) / 2, seg["label"], ha="center", va="center",
                    fontsize=7, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7,
                                      "edgecolor": "none"}, clip_on=True)


def png_name(source: str) -> str:
    """A file name for the figure of ``source`` (its base name, made safe)."""
    base = os.path.splitext(os.path.basename(source))[0] or "signal"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base) + ".png"


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
