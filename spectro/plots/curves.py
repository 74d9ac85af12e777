"""The learning curve: test accuracy against the number of training examples, one line per model."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from spectro.plots.figures import new_figure, save_figure

__all__ = ["plot_learning_curve"]


def plot_learning_curve(table: pd.DataFrame, *, path: Optional[str] = None, title: str = "") -> Figure:
    """Accuracy against training examples (log x, ticked at the sizes trained), one line per model.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model and size: ``model``, ``train_examples``,
        ``accuracy`` and either ``accuracy_low``/``accuracy_high`` (a bootstrap
        interval over groups, one test fold) or ``accuracy_std`` (the spread
        over folds under cross-validation); rows without an accuracy (a
        failed run) are left out.
    path : str, optional
        Where to save the PNG.
    """
    fig = new_figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    done = table.dropna(subset=["accuracy"])
    cv = "accuracy_std" in done and done["accuracy_std"].notna().any()
    for i, (model, rows) in enumerate(done.groupby("model", sort=False)):
        rows = rows.sort_values("train_examples")
        x, y = rows["train_examples"].to_numpy(float), rows["accuracy"].to_numpy(float)
        if cv:
            spread = rows["accuracy_std"].fillna(0).to_numpy(float)
            low, high = y - spread, y + spread
        else:
            low = rows.get("accuracy_low", pd.Series(y)).fillna(pd.Series(y, index=rows.index)).to_numpy(float)
            high = rows.get("accuracy_high", pd.Series(y)).fillna(pd.Series(y, index=rows.index)).to_numpy(float)
        colour = f"C{i}"
        ax.plot(x, y, "o-", color=colour, label=model)
        ax.fill_between(x, np.clip(low, 0, 1), np.clip(high, 0, 1), color=colour, alpha=0.15, linewidth=0)
    sizes = sorted(set(done["train_examples"].astype(int)))
    ax.set_xscale("log")
    if sizes:
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)
    ax.set_ylim(0, 1)
    band = "± 1 std over folds" if cv else "the 95 % interval of the table"
    ax.set(xlabel="training examples (log scale)", ylabel="test accuracy",
           title=title or f"Learning curve (band: {band})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)
