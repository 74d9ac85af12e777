"""The figure of ``spectro compare``: scores with error bars, confusion matrices, accuracy against cost.

Built on matplotlib's :class:`~matplotlib.figure.Figure` API, never pyplot and
never ``matplotlib.use``: the caller (a script, a notebook) owns the backend,
and a notebook shows the returned Figure inline.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spectro.utils.names import name_depth
from spectro.plots.figures import MAX_CELL_TEXT, epoch_axis, log_axis, new_figure, save_figure, score_axis

__all__ = ["plot_comparison", "plot_confusion_grid", "plot_error_curves"]

#: The comparison figures are wider than spectro's others: a little more resolution keeps labels legible.
FIGURE_DPI = 110


def plot_comparison(table: pd.DataFrame, confusions: dict[str, np.ndarray], labels: Sequence[str], *,
                    path: str | None = None, cv: bool = False, over: str = "folds", title: str = "") -> Figure:
    """Accuracy and macro-F1 per model, accuracy against training time, and each model's confusion matrix.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`spectro.compare.Comparison.table`; failed models are left out.
    confusions : dict of str to np.ndarray [shape=(C, C)]
        Counts per model (rows true class, columns predicted).
    labels : sequence of str [shape=(C,)]
    path : str, optional
        Also save the figure there (PNG).
    cv : bool
        Error bars are the standard deviation over runs (else the 95 %
        interval in the table).
    over : str
        What the runs differ in, for the title ("folds", "seeds", "seeds and folds").

    Returns
    -------
    matplotlib.figure.Figure
    """
    ok = table[table["status"] == "ok"].reset_index(drop=True)
    n = max(len(ok), 1)
    fig = new_figure(figsize=(max(11.0, 3.0 * n), 8.2))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    bars, cost = top.subplots(1, 2, width_ratios=[1.4, 1.0])
    x = np.arange(len(ok))
    width = 0.38
    top = 1.0  # the highest end of an error bar
    for shift, key, name in ((-width / 2, "accuracy", "accuracy"), (width / 2, "macro_f1", "macro-F1")):
        values = ok[key].to_numpy(dtype=float)
        err = _errors(ok, key, cv)
        bars.bar(x + shift, values, width, yerr=err, capsize=4, label=name)
        if err is not None and len(ok):
            top = max(top, float(np.nanmax(values + (err if err.ndim == 1 else err[1]))))
    bars.set_xticks(x, ok["model"].tolist())
    # The whole scale, 0 to 1: a floor that moves per run makes one clip look like a gap. A mean + std over
    # folds may pass 1; the axis then goes on so that no error bar is cut, with no score ticks above 1.
    score_axis(bars, top=top)
    bars.set_ylabel("fraction of test examples")
    bars.set_title("held-out scores " + (f"(mean ± std over {over or 'folds'})" if cv else "(95 % interval; see report.md)"),
                   fontsize=10)
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=2, frameon=False)

    acc_err = _errors(ok, "accuracy", cv)
    for i, r in ok.iterrows():
        e = None if acc_err is None else acc_err[:, [i]] if acc_err.ndim == 2 else acc_err[i]
        cost.errorbar(r["train_s"], r["accuracy"], yerr=e, fmt="o", capsize=3)
        # The slowest model's name goes to the left of its point: to the right it would run off the figure.
        last = r["train_s"] >= ok["train_s"].max()
        cost.annotate(r["model"], (r["train_s"], r["accuracy"]), textcoords="offset points",
                      xytext=(-5, 4) if last else (5, 4), ha="right" if last else "left", fontsize=9)
    if len(ok) and (ok["train_s"] > 0).all():
        cost.set_xscale("log")
        log_axis(cost.xaxis)
    cost.set_xlabel("training seconds" + (" per run" if cv else ""))
    cost.set_ylabel("accuracy")
    score_axis(cost, top=top)
    cost.set_title("accuracy against training time", fontsize=10)
    cost.grid(alpha=0.3)

    plot_confusion_grid(bottom, {m: confusions[m] for m in ok["model"] if m in confusions}, labels,
                        scores=dict(zip(ok["model"], ok["accuracy"])))
    failed = table[table["status"] != "ok"]["model"].tolist()
    fig.suptitle((title or "model comparison") + (f" (failed: {', '.join(failed)})" if failed else ""),
                 fontsize=11)
    return save_figure(fig, path or None, dpi=FIGURE_DPI)


def plot_confusion_grid(fig, confusions: dict[str, np.ndarray], labels: Sequence[str], *,
                        scores: dict[str, float] | None = None) -> None:
    """One confusion matrix per model on ``fig`` (a Figure or SubFigure): counts in the cells, colour the rate
    of the true class (row), one colour scale."""
    if not confusions:
        return
    axes = np.atleast_1d(fig.subplots(1, len(confusions), sharey=True))
    c = len(labels)
    im = None
    for ax, (name, cm) in zip(axes, confusions.items()):
        cm = np.asarray(cm, dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # (C, C): fraction of each true class
        im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        if c <= MAX_CELL_TEXT:  # the count of every cell, zeros too; the colour is the row's rate
            size = 8 if c <= 10 else 6
            for i in range(c):
                for j in range(c):
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=size,
                            color="white" if rates[i, j] > 0.5 else "black")
        ticks = range(c) if c <= 20 else []
        ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90 if c > 10 else 0, fontsize=8)
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=8)
        ax.set_xlabel("predicted")
        score = f" (acc. {scores[name]:.3f})" if scores and name in scores else ""
        ax.set_title(name + score, fontsize=9)
    axes[0].set_ylabel("true")
    fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="fraction of the true class")


def plot_error_curves(histories: dict[str, pd.DataFrame], *, path: str | None = None,
                      title: str = "") -> Figure:
    """Training and validation error (1 - accuracy) per epoch, side by side, as He et al. (2015) Figs. 4 and 6.

    Parameters
    ----------
    histories : dict of str to pandas.DataFrame
        ``metrics.csv`` of each run (columns ``epoch``, ``train_accuracy``,
        ``val_accuracy``), keyed by model name. Plain nets are drawn dashed,
        residual nets solid, one colour per depth.
    """
    fig = new_figure(figsize=(11, 4))
    train_ax, val_ax = fig.subplots(1, 2, sharey=True)
    depths = sorted({name_depth(m) for m in histories})
    colours = {d: f"C{i}" for i, d in enumerate(depths)}
    for name, h in histories.items():
        style = "--" if name.startswith("plain") else "-"
        kw = dict(linestyle=style, color=colours[name_depth(name)], label=name)
        train_ax.plot(h["epoch"], 100 * (1 - h["train_accuracy"]), **kw)
        val_ax.plot(h["epoch"], 100 * (1 - h["val_accuracy"]), **kw)
    for ax, what in ((train_ax, "training"), (val_ax, "validation")):
        ax.set(xlabel="epoch", title=f"{what} error")
        epoch_axis(ax.xaxis)
        ax.grid(alpha=0.3)
    train_ax.set_ylabel("error (%)")
    val_ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path or None, dpi=FIGURE_DPI)


def _errors(t: pd.DataFrame, key: str, cv: bool) -> np.ndarray | None:
    """Error bars: std over folds [shape=(n,)] or distances to the interval ends [shape=(2, n)]."""
    if cv:
        return t[f"{key}_std"].to_numpy(dtype=float)
    lo, hi = t.get(f"{key}_low"), t.get(f"{key}_high")
    if lo is None or lo.isna().all():
        return None
    v = t[key].to_numpy(dtype=float)
    return np.vstack([np.clip(v - lo.to_numpy(dtype=float), 0, None), np.clip(hi.to_numpy(dtype=float) - v, 0, None)])
