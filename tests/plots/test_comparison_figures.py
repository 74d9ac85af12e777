"""The comparison figures show the truth: the whole score scale, whole error bars, counts in every confusion
cell, readable log ticks, whole-number epochs, and no zero-width interval for a model that answers one class."""

import itertools

import numpy as np
import pandas as pd
import pytest

from spectro.comparison.scoring import Predictions, bootstrap_metrics, score_intervals
from spectro.metrics.stats import bootstrap_weights
from spectro.plots.comparison import plot_comparison, plot_error_curves
from spectro.plots.figures import plot_confusion, plot_curves

LABELS = list("01234")


def _table(cv=False):
    t = pd.DataFrame({"model": ["svm", "cnn", "stuck", "bad"], "status": ["ok", "ok", "ok", "failed"],
                      "accuracy": [0.9, 0.93, 0.2, np.nan], "macro_f1": [0.88, 0.92, 0.067, np.nan],
                      "accuracy_low": [0.85, 0.88, 0.13, np.nan], "accuracy_high": [1.0, 0.97, 0.28, np.nan],
                      "macro_f1_low": [0.42, 0.85, 0.05, np.nan], "macro_f1_high": [1.0, 0.96, 0.09, np.nan],
                      "accuracy_std": [np.nan] * 4, "macro_f1_std": [np.nan] * 4, "train_s": [1.3, 4.1, 9.5, np.nan]})
    if cv:
        t["accuracy_std"] = [0.125, 0.05, 0.0, np.nan]  # 0.9 + 0.125 passes 1
        t["macro_f1_std"] = [0.1, 0.06, 0.0, np.nan]
    return t


def _confusions():
    stuck = np.zeros((5, 5), int)
    stuck[:, 0] = 12
    cnn = np.diag([10, 12, 11, 12, 11])
    cnn[0, 1], cnn[2, 0], cnn[4, 2] = 2, 1, 1
    return {"svm": np.diag([12] * 5), "cnn": cnn, "stuck": stuck}


def _axes(fig):
    axes = fig.get_axes()
    bars = next(a for a in axes if a.get_title().startswith("held-out scores"))
    cost = next(a for a in axes if a.get_title() == "accuracy against training time")
    heat = [a for a in axes if a.get_images()]
    return bars, cost, heat


def _error_bar_ends(ax) -> list[float]:
    ends = []
    for coll in ax.collections:  # the vertical segments of the error bars
        for seg in coll.get_segments():
            ends += [float(seg[:, 1].min()), float(seg[:, 1].max())]
    return ends


@pytest.mark.parametrize("cv", [False, True])
def test_scores_on_the_whole_scale_with_whole_error_bars(cv):
    fig = plot_comparison(_table(cv), _confusions(), LABELS, cv=cv)
    bars, cost, _ = _axes(fig)
    for ax in (bars, cost):
        low, high = ax.get_ylim()
        assert low == 0.0 and 1.0 <= high <= 1.0 + 0.02 + (0.125 if cv else 0)  # 0 to 1, no moving floor
        ticks = ax.get_yticks()
        assert ticks.min() == 0.0 and ticks.max() == pytest.approx(1.0)  # no score ticks above 1
        ends = _error_bar_ends(ax)
        assert ends and low <= min(ends) and max(ends) <= high  # every error bar whole inside the axis
    if cv:
        assert max(_error_bar_ends(bars)) == pytest.approx(1.025)  # mean + std past 1 is drawn, not cut
    else:  # the svm's macro-F1 interval reaches down to .42 and is drawn down to .42 (it was cut at the floor)
        assert min(_error_bar_ends(bars)) == pytest.approx(0.05) and 0.42 in np.round(_error_bar_ends(bars), 6)


def test_every_confusion_cell_has_its_count_and_the_colour_is_the_row_rate():
    fig = plot_comparison(_table(), _confusions(), LABELS)
    *_, heat = _axes(fig)
    assert len(heat) == 3
    for ax, (name, cm) in zip(heat, _confusions().items()):
        texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert texts == {(i, j): str(cm[i, j]) for i in range(5) for j in range(5)}, name  # zeros too
        np.testing.assert_allclose(ax.get_images()[0].get_array(), cm / cm.sum(axis=1, keepdims=True))
    single = plot_confusion(np.array([[3, 0], [1, 2]]), ["a", "b"]).get_axes()[0]
    assert sorted(t.get_text() for t in single.texts) == ["0", "1", "2", "3"]


def test_log_time_axis_has_plain_ticks_that_do_not_overlap():
    fig = plot_comparison(_table(), _confusions(), LABELS)
    _, cost, _ = _axes(fig)
    assert cost.get_xscale() == "log"
    fig.canvas.draw()
    lo, hi = cost.get_xlim()
    shown = [t for t, v in zip(cost.get_xticklabels(), cost.get_xticks()) if lo <= v <= hi and t.get_text()]
    assert [t.get_text() for t in shown] == ["2", "5", "10"]  # plain numbers, not 10^0-style
    assert all(not t.get_text() for t in cost.get_xticklabels(minor=True))  # minor ticks unlabelled
    boxes = [t.get_window_extent() for t in shown]
    assert all(not a.overlaps(b) for a, b in itertools.pairwise(boxes))


def test_epoch_axes_have_whole_number_ticks():
    curves = {"plain20": pd.DataFrame({"epoch": [1, 2], "train_accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]})}
    history = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 0.5, "val_loss": 1 / e, "val_accuracy": 0.5,
                "val_macro_f1": 0.5} for e in (1, 2, 3)]
    for fig in (plot_error_curves(curves), plot_curves(history)):
        for ax in fig.get_axes():
            lo, hi = ax.get_xlim()
            ticks = [v for v in ax.get_xticks() if lo <= v <= hi]
            assert ticks and all(float(v).is_integer() for v in ticks), ticks
    acc = plot_curves(history).get_axes()[1]
    assert acc.get_ylim() == pytest.approx((0.0, 1.02))


def test_a_model_that_answers_one_class_gets_an_interval_of_nonzero_width():
    # 4 voices, each saying every digit 3 times: resampling whole voices keeps the class shares fixed.
    y = np.tile(np.repeat(np.arange(5), 3), 4)
    groups = np.repeat(["a", "b", "c", "d"], 15)
    n = y.size
    p = Predictions(rows=np.arange(n), ids=np.arange(n).astype(str).astype(object), y_true=y,
                    y_pred=np.zeros(n, np.int64), proba=np.eye(5, dtype=np.float32)[np.zeros(n, int)],
                    fold=np.ones(n, np.int64))
    group_lo, group_hi = bootstrap_metrics(p, bootstrap_weights(groups, n_boot=200, seed=0), 5)
    assert group_lo[0] == group_hi[0] == pytest.approx(0.2)  # why: the group bootstrap alone is zero-width
    lo, hi = score_intervals(p, groups, 5)
    assert lo[0] < 0.2 < hi[0] and hi[0] - lo[0] > 0.1  # accuracy
    assert lo[1] < hi[1]  # macro-F1
