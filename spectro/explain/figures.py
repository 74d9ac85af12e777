"""The explain figures: importance over frequency and time, maps over test images, embeddings, errors.

matplotlib's Figure API (no pyplot state); every function returns its
Figure and saves it when given ``path`` (:func:`spectro.plots.figures.save_figure`).
Frequency is in Hz and time in seconds throughout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import librosa.display
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from spectro.config import FeatureConfig
from spectro.plots.figures import new_figure, save_figure
from spectro.signals.features import frequencies

__all__ = ["IMPORTANCE_LABEL", "plot_embeddings", "plot_errors", "plot_importance", "plot_maps"]

IMPORTANCE_LABEL = "drop in true-class probability"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_HZ = FuncFormatter(lambda v, _: f"{v / 1000:.2g}k" if v >= 1000 else f"{v:.0f}")


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_importance(over_frequency: Mapping[str, np.ndarray], hz: np.ndarray, *,
                    over_time: Mapping[str, np.ndarray] | None = None, seconds: np.ndarray | None = None,
                    title: str = "", path: str | None = None, pixels: bool = False) -> Figure:
    """Mean occlusion importance over frequency (one line per model, shared axes), and over time if given.

    Parameters
    ----------
    over_frequency : dict of model -> np.ndarray [shape=(F,)]
    hz : np.ndarray [shape=(F,)]
        Centre frequency of each image row; drawn on a log axis when it spans more than a decade.
    over_time : dict of model -> np.ndarray [shape=(T,)], optional
    seconds : np.ndarray [shape=(T,)], optional
    pixels : bool
        ``hz`` and ``seconds`` are row and column numbers (images made elsewhere know no Hz or seconds).
    """
    panels = 2 if over_time else 1
    fig = new_figure(figsize=(6.5 * panels, 3.8))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    colours = _colours(len(over_frequency))
    ax = axes[0]
    for (m, curve), c in zip(over_frequency.items(), colours):
        ax.plot(hz, curve, "-", lw=2, color=c, label=m)
    if hz[0] > 0 and hz[-1] / hz[0] > 10 and not pixels:
        ax.set_xscale("log")
    if not pixels:
        ax.xaxis.set_major_formatter(_HZ)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set(xlabel="frequency (image row, pixels)" if pixels else "frequency (Hz)", ylabel=IMPORTANCE_LABEL, title="where in frequency each model looks",
           xlim=(hz[0], hz[-1]))
    if over_time:
        ax2 = axes[1]
        for (m, curve), c in zip(over_time.items(), colours):
            ax2.plot(seconds, curve, "-", lw=2, color=c, label=m)
        ax2.set(xlabel="time (image column, pixels)" if pixels else "time (s)", ylabel=IMPORTANCE_LABEL, title="when in the clip", xlim=(seconds[0], seconds[-1]))
    for a in axes:
        a.axhline(0, color="0.6", lw=0.8)
        a.grid(alpha=0.3)
        a.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def _spectrogram(ax: Any, image: np.ndarray, cfg: FeatureConfig, **kwargs: Any) -> Any:
    """``image`` [shape=(F, T)] on ``ax`` with time in seconds and frequency in Hz (the store's scale).

    Images made elsewhere know neither: their axes are in pixels, row 0 at the bottom.
    """
    if cfg.is_image:
        mesh = ax.imshow(np.asarray(image, np.float32), origin="lower", aspect="auto", interpolation="nearest",
                         **{k: v for k, v in kwargs.items() if k in ("cmap", "vmin", "vmax", "alpha")})
        ax.set_xlabel("time (pixels)", fontsize=8)
        ax.set_ylabel("frequency (pixels)", fontsize=8)
        ax.tick_params(labelsize=7)
        return mesh
    kw: dict[str, Any] = {"sr": cfg.sample_rate, "hop_length": cfg.hop_length, "x_axis": "s", "ax": ax, **kwargs}
    if cfg.freq_scale == "mel":
        kw.update(y_axis="mel", fmin=cfg.f_low, fmax=cfg.f_high)
    elif cfg.freq_scale == "linear":
        kw.update(y_axis="linear")
    else:
        kw.update(y_axis="log", y_coords=frequencies(cfg))
    mesh = librosa.display.specshow(np.asarray(image, np.float32), **kw)
    ax.yaxis.set_major_formatter(_HZ)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("Hz", fontsize=8)
    ax.tick_params(labelsize=7)
    return mesh


def plot_maps(images: np.ndarray, maps: Mapping[str, np.ndarray], cfg: FeatureConfig, *,
              titles: Sequence[str] | None = None, title: str = "",
              path: str | None = None) -> Figure:
    """Test images (first column) and each map over them (one column per map: "svm occlusion", "cnn Grad-CAM").

    Parameters
    ----------
    images : np.ndarray [shape=(K, F, T)]
        As stored (dB), drawn in grey under the maps.
    maps : dict of column title -> np.ndarray [shape=(K, F, T)]
        Importance per pixel; each map is drawn on its own symmetric colour
        scale, its largest magnitude in the title (red: important for the
        true class; blue: masking there raises it).
    titles : list of str, optional
        One line per image (its class and source).
    """
    k, m = len(images), len(maps)
    fig = new_figure(figsize=(2.9 * (m + 1), 2.5 * k + 0.6))
    axes = fig.subplots(k, m + 1, squeeze=False)
    for i in range(k):
        _spectrogram(axes[i, 0], images[i], cfg, cmap="magma")
        axes[i, 0].set_title((titles[i] if titles else f"example {i + 1}"), fontsize=8)
        for j, (name, mp) in enumerate(maps.items(), start=1):
            ax = axes[i, j]
            _spectrogram(ax, images[i], cfg, cmap="gray")
            v = float(np.abs(mp[i]).max())
            _spectrogram(ax, mp[i], cfg, cmap="RdBu_r", vmin=-(v or 1.0), vmax=v or 1.0, alpha=0.7)
            ax.set_title(f"{name} (max {v:.2g})" if v else f"{name} (no change)", fontsize=8)
            if j > 1:
                ax.set_ylabel("")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def plot_embeddings(points: Mapping[str, tuple[np.ndarray, np.ndarray]], *, train_classes: Any, test_classes: Any,
                    train_groups: Any, test_groups: Any, labels: Sequence[str],
                    scores: Mapping[str, float] | None = None, method: str = "pca", title: str = "",
                    path: str | None = None) -> Figure:
    """One panel per model: its 2-D embedding of train and test examples.

    Colour is the class, the marker the group (speaker, kit, ...), test
    points are outlined in black; the panel title gives the model's
    silhouette by group minus by class (``scores``), positive when it
    clusters by group.

    Parameters
    ----------
    points : dict of model -> (train [shape=(n, 2)], test [shape=(m, 2)])
    train_classes, test_classes : class ids [shape=(n,)], [shape=(m,)]
    train_groups, test_groups : group names [shape=(n,)], [shape=(m,)]
    """
    train_classes, test_classes = np.asarray(train_classes), np.asarray(test_classes)
    groups = sorted(set(np.asarray(train_groups, str).tolist()) | set(np.asarray(test_groups, str).tolist()))
    marker_of = {g: _MARKERS[i % len(_MARKERS)] for i, g in enumerate(groups)}
    colours = _colours(len(labels))
    n = len(points)
    fig = new_figure(figsize=(4.6 * n + 1.8, 4.4))
    axes = fig.subplots(1, n, squeeze=False)[0]
    axis_name = {"pca": "PC", "tsne": "t-SNE "}.get(method, method)
    for ax, (name, (tr, te)) in zip(axes, points.items()):
        for xy, cls, grp, test in ((tr, train_classes, train_groups, False), (te, test_classes, test_groups, True)):
            grp = np.asarray(grp, str)
            for g in groups:
                sel = grp == g
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], c=[colours[c] for c in cls[sel]], marker=marker_of[g],
                               s=42 if test else 22, alpha=1.0 if test else 0.45,
                               edgecolors="black" if test else "none", linewidths=1.1 if test else 0)
        score = (scores or {}).get(name, float("nan"))
        ax.set_title(f"{name}: group − class silhouette {score:+.2f}" if np.isfinite(score) else name, fontsize=9)
        ax.set(xlabel=f"{axis_name}1", ylabel=f"{axis_name}2")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    handles = [Line2D([], [], ls="", marker="o", color=colours[i], label=lab) for i, lab in enumerate(labels)]
    handles.append(Line2D([], [], ls="", marker="o", color="white", markeredgecolor="black", label="test (outlined)"))
    handles += [Line2D([], [], ls="", marker=marker_of[g], color="0.4", label=g) for g in groups[:8]]
    if len(groups) > 8:
        handles.append(Line2D([], [], ls="", label=f"+{len(groups) - 8} more groups"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=7, title="class / group", title_fontsize=8)
    fig.suptitle(title or "embeddings (colour: class, marker: group)", fontsize=11)
    return save_figure(fig, path)


def plot_errors(errors: pd.DataFrame, images: np.ndarray, cfg: FeatureConfig, *, title: str = "",
                path: str | None = None) -> Figure:
    """The most confident mistakes: one row per model, its errors most confident first.

    Parameters
    ----------
    errors : pandas.DataFrame
        :func:`spectro.explain.errors.confident_errors`'s table.
    images : np.ndarray [shape=(N, F, T)]
        The test images, indexed by the table's ``position``.
    """
    models = list(dict.fromkeys(errors["model"]))
    k = max([int((errors["model"] == m).sum()) for m in models] + [1])
    # At least as wide as its title: with one error (or none) a 3-inch figure cut "most confident mistakes".
    fig = new_figure(figsize=(max(3.0 * k, 6.0), 2.7 * max(len(models), 1) + 0.5))
    axes = fig.subplots(max(len(models), 1), k, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, m in enumerate(models):
        for j, (_, r) in enumerate(errors[errors["model"] == m].iterrows()):
            ax = axes[i, j]
            ax.set_axis_on()
            _spectrogram(ax, images[int(r["position"])], cfg, cmap="magma")
            ax.set_title(f"{m}: {r['true']} → {r['predicted']} (p={r['probability']:.2f})\n"
                         f"{_tail(os.path.basename(str(r['source'])))}", fontsize=8)
    if not models:
        axes[0, 0].text(0.5, 0.5, "no wrong test examples", ha="center", va="center")
    fig.suptitle(title or "most confident mistakes (true → predicted)", fontsize=11)
    return save_figure(fig, path)


def _tail(text: str, n: int = 34) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]
