"""Every figure spectro draws, on matplotlib's object API.

Figures are built as ``matplotlib.figure.Figure`` objects, never through
pyplot, and nothing here chooses a backend: the caller owns it (a notebook
shows the returned Figure inline, a script or the CLI saves it to a file,
and no display is ever needed). Every function returns its Figure and also
saves it when given a path.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from typing import Any, Optional, Sequence

import librosa.display
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from spectro.config import EXAMPLES_PER_CLASS, SEED
from spectro.errors import SpectroError
from spectro.signals.features import frequencies
from spectro.signals.store import Store
from spectro.utils.files import temp_prefix, umask_mode, unique_name

__all__ = ["png_bytes", "show_examples", "plot_examples", "plot_image", "plot_confusion", "plot_curves", "save_figure",
           "new_figure", "SpectroFigure", "score_axis", "log_axis", "epoch_axis", "MAX_CELL_TEXT"]

DPI = 100
#: Confusion matrices up to this many classes write the count in every cell.
MAX_CELL_TEXT = 30


class SpectroFigure(Figure):
    """A matplotlib Figure that Jupyter shows inline as it is, with no pyplot and no backend switch.

    IPython asks an object for ``_repr_png_`` when nothing else knows how to
    show it; a plain Figure built without pyplot has no such method and prints
    as ``<Figure size ...>`` unless the notebook ran ``%matplotlib inline``.
    Where that did run, IPython's own Figure formatter takes precedence, so a
    figure is never shown twice.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()


def score_axis(ax, *, top: float = 1.0) -> None:
    """A score axis (accuracy, F1) from 0 to 1: the whole scale, so a small gap looks small.

    ``top`` > 1 (a mean + std over folds) extends it so that no error bar is
    cut; ticks stay within 0..1 and a dotted line marks 1.
    """
    ax.set_ylim(0.0, max(1.0, top) + 0.02)  # a little room: an error bar's cap at 1 is drawn whole
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    if top > 1.0:
        ax.axhline(1.0, color="0.5", linestyle=":", linewidth=0.8)
    ax.grid(axis="y", alpha=0.3)


def log_axis(axis) -> None:
    """Readable ticks on a log axis (call after ``set_xscale("log")``): 1, 2, 5 of each decade, plainly written.

    matplotlib's default writes ``10^0``-style labels and, over less than a
    decade, labels minor ticks too, so they run into each other.
    """
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def epoch_axis(axis) -> None:
    """Whole-number ticks for an axis of epochs (never 1.25, 1.5)."""
    axis.set_major_locator(MaxNLocator(integer=True))


def new_figure(**kwargs: Any) -> SpectroFigure:
    """A new figure (``Figure`` keyword arguments; constrained layout by default)."""
    kwargs.setdefault("constrained_layout", True)
    return SpectroFigure(**kwargs)


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes: what a report embeds and :func:`save_figure` writes, rendered once."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def save_figure(fig: Figure, path: Optional[str], *, dpi: int = DPI) -> Figure:
    """Write ``fig`` to ``path`` (PNG, by its extension) when a path is given; return ``fig``.

    Written beside ``path`` and renamed into place: a reader (or a crash) never
    sees half an image.
    """
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(os.path.basename(path))
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(stem), suffix=ext or ".png", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                fig.savefig(f, dpi=dpi, format=(ext[1:] or "png"))
            os.chmod(tmp, umask_mode(0o666))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return fig


def plot_image(ax, image: np.ndarray, store: Store, *, vmin: Optional[float] = None, vmax: Optional[float] = None):
    """Draw one ``(F, T)`` image on ``ax`` with time in seconds and frequency in Hz (images made elsewhere: pixels)."""
    cfg = store.config
    if cfg.is_image:
        mesh = ax.imshow(image.astype(np.float32), origin="lower", aspect="auto", interpolation="nearest",
                         vmin=vmin, vmax=vmax, cmap="magma")
        ax.set(xlabel="time (pixels)", ylabel="frequency (pixels)")
        return mesh
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


def plot_examples(store: Store, label: str, *, per_class: int = EXAMPLES_PER_CLASS, seed: int = SEED,
                  path: Optional[str] = None) -> Optional[Figure]:
    """A few random images of class ``label`` side by side, on one colour scale; None if it has none.

    Time is in seconds, frequency in Hz, colour in dB (or the image's units without dB).
    """
    c = list(store.labels).index(label)
    rows = np.flatnonzero(store.y == c)
    if rows.size == 0:
        return None
    rng = np.random.default_rng(seed)
    unit = ("intensity" if store.config.is_image else "PCEN" if store.config.compression == "pcen"
            else "dB" if store.config.db else "power" if store.config.power == 2 else "magnitude")
    pick = np.sort(rng.choice(rows, size=min(per_class, rows.size), replace=False))
    images = np.asarray(store.features[pick][:, 0], dtype=np.float32)  # (k, F, T)
    fig = new_figure(figsize=(4 * len(pick), 3.4))
    axes = fig.subplots(1, len(pick), squeeze=False)
    vmin, vmax = float(images.min()), float(images.max())
    for ax, r, image in zip(axes[0], pick, images):
        mesh = plot_image(ax, image, store, vmin=vmin, vmax=vmax)
        ax.set_title(_short(store.ids[r]), fontsize=8)
    fig.colorbar(mesh, ax=axes[0].tolist(), format="%+2.0f " + unit if unit == "dB" else None, label=unit)
    fig.suptitle(f"class {label!r}: {len(pick)} of {rows.size} images")
    return save_figure(fig, path)


def show_examples(store: Store, out_dir: str, *, per_class: int = EXAMPLES_PER_CLASS, seed: int = SEED) -> list[str]:
    """Write one PNG per class with ``per_class`` random examples of it (:func:`plot_examples`).

    Returns the paths written. A folder that cannot be written (read-only,
    full) raises SpectroError: one line naming it, no half-written PNG.
    """
    written = []
    try:
        os.makedirs(out_dir, exist_ok=True)
        taken: set[str] = set()  # "a,b" and "a b" are both a_b: the second class gets a_b-2.png
        for name in store.labels:
            path = os.path.join(out_dir, unique_name(f"{_safe(name)}.png", taken))
            # Each class draws from its own generator seeded with ``seed``: its picks do not depend on the others'.
            if plot_examples(store, name, per_class=per_class, seed=seed, path=path) is not None:
                written.append(path)
    except OSError as err:
        raise SpectroError(f"cannot write figures to {out_dir}: {err.strerror or err}; give --out a folder you can "
                           "write to") from None
    return written


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Optional[str] = None, *, title: str = "",
                   ax=None) -> Figure:
    """Confusion matrix: colour is the row-normalised rate (recall), cells show counts.

    Drawn on ``ax`` when given (a panel of a larger figure), else on a new Figure.
    """
    cm = np.asarray(cm)
    c = len(labels)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.45 * c, 24)
    if ax is None:
        fig = new_figure(figsize=(size, size * 0.9))
        ax = fig.subplots()
    else:
        fig = ax.figure
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(c), labels, rotation=90 if c > 6 else 0)
    ax.set_yticks(range(c), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if c <= MAX_CELL_TEXT:  # every cell, zeros too: an empty cell is a count, not a missing one
        for i in range(c):
            for j in range(c):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_curves(history: list[dict], path: Optional[str] = None, *, title: str = "") -> Figure:
    """Training curves: loss (train, validation) and accuracy / macro-F1 per epoch (metrics.csv rows)."""
    def col(name: str) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in history])

    epochs = col("epoch")
    fig = new_figure(figsize=(10, 3.6))
    a, b = fig.subplots(1, 2)
    a.plot(epochs, col("train_loss"), "o-", ms=3, label="train")
    b.plot(epochs, col("train_accuracy"), "o-", ms=3, label="train accuracy")
    if not np.all(np.isnan(col("val_loss"))):
        a.plot(epochs, col("val_loss"), "o-", ms=3, label="validation")
        b.plot(epochs, col("val_accuracy"), "o-", ms=3, label="validation accuracy")
        b.plot(epochs, col("val_macro_f1"), "s--", ms=3, label="validation macro-F1")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.set(xlabel="epoch", ylabel="fraction", title="accuracy")
    score_axis(b)
    for ax in (a, b):
        epoch_axis(ax.xaxis)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else "..." + text[-(n - 3):]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "class"
