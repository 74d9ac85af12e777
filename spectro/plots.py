"""Every figure spectro draws (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import librosa.display  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .features import frequencies  # noqa: E402
from .store import Store  # noqa: E402

__all__ = ["show_examples", "plot_image", "plot_confusion", "plot_curves"]


def plot_image(ax, image: np.ndarray, store: Store, *, vmin: Optional[float] = None, vmax: Optional[float] = None):
    """Draw one ``(F, T)`` image on ``ax`` with time in seconds and frequency in Hz."""
    cfg = store.config
    axis = {"mel": "mel", "linear": "linear", "log": "log"}[cfg.freq_scale]
    kwargs = dict(sr=cfg.sample_rate, hop_length=cfg.hop_length, x_axis="s", ax=ax, vmin=vmin, vmax=vmax,
                  cmap="magma")
    if axis == "mel":
        kwargs.update(y_axis="mel", fmin=cfg.f_low, fmax=cfg.f_high)
    elif axis == "linear":
        kwargs.update(y_axis="linear")
    else:
        kwargs.update(y_axis="log", y_coords=frequencies(cfg))
    return librosa.display.specshow(image.astype(np.float32), **kwargs)


def show_examples(store: Store, out_dir: str, *, per_class: int = 3, seed: int = 0) -> list[str]:
    """Write one PNG per class with ``per_class`` random examples of it.

    Returns the paths written. Colour is in dB (or the image's units without
    dB) on one scale per figure, so the panels compare directly.
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    unit = "dB" if store.config.db else ("power" if store.config.power == 2 else "magnitude")
    written = []
    for c, name in enumerate(store.labels):
        rows = np.flatnonzero(store.y == c)
        if rows.size == 0:
            continue
        pick = np.sort(rng.choice(rows, size=min(per_class, rows.size), replace=False))
        images = np.asarray(store.features[pick][:, 0], dtype=np.float32)  # (k, F, T)
        fig, axes = plt.subplots(1, len(pick), figsize=(4 * len(pick), 3.4), squeeze=False, constrained_layout=True)
        vmin, vmax = float(images.min()), float(images.max())
        for ax, r, image in zip(axes[0], pick, images):
            mesh = plot_image(ax, image, store, vmin=vmin, vmax=vmax)
            ax.set_title(_short(store.ids[r]), fontsize=8)
        fig.colorbar(mesh, ax=axes[0].tolist(), format="%+2.0f " + unit if unit == "dB" else None, label=unit)
        fig.suptitle(f"class {name!r}: {len(pick)} of {rows.size} images")
        path = os.path.join(out_dir, f"{_safe(name)}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: str, *, title: str = "") -> str:
    """Confusion matrix PNG: colour is the row-normalised rate (recall), cells show counts."""
    cm = np.asarray(cm)
    c = len(labels)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.45 * c, 24)
    fig, ax = plt.subplots(figsize=(size, size * 0.9), constrained_layout=True)
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(c), labels, rotation=90 if c > 6 else 0)
    ax.set_yticks(range(c), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if c <= 30:
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    if title:
        ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(history: list[dict], path: str, *, title: str = "") -> str:
    """Training curves PNG: loss (train, validation) and accuracy / macro-F1 per epoch."""
    def col(name: str) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in history])

    epochs = col("epoch")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    a.plot(epochs, col("train_loss"), "o-", ms=3, label="train")
    b.plot(epochs, col("train_accuracy"), "o-", ms=3, label="train accuracy")
    if not np.all(np.isnan(col("val_loss"))):
        a.plot(epochs, col("val_loss"), "o-", ms=3, label="validation")
        b.plot(epochs, col("val_accuracy"), "o-", ms=3, label="validation accuracy")
        b.plot(epochs, col("val_macro_f1"), "s--", ms=3, label="validation macro-F1")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.set(xlabel="epoch", ylabel="fraction", title="accuracy", ylim=(0, 1.02))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else "..." + text[-(n - 3):]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "class"
