"""Explanation.table is an attribute like Comparison.table (still callable, as notebooks once called it); a report
without mistakes: no peak or band for a model whose importance is 0 everywhere, no empty figure or table, titles and
labels inside their figures (issue 31, R9 and R12)."""

import numpy as np
import pandas as pd

from spectro.config import FeatureConfig
from spectro.explain.explain import Explanation, _sections
from spectro.explain.figures import plot_errors
from spectro.plots.comparison import plot_comparison

CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)


def _explanation() -> Explanation:
    hz, seconds = np.linspace(0, 8000, 32), np.linspace(0, 1, 16)
    bump = np.exp(-0.5 * ((np.arange(32) - 10) / 2.0) ** 2)
    empty = pd.DataFrame()
    return Explanation(models=["svm", "cnn"], labels=["a", "b"], hz=hz, seconds=seconds,
                       over_frequency={"svm": np.zeros(32), "cnn": bump},
                       over_time={"svm": np.zeros(16), "cnn": np.linspace(0, 1, 16)},
                       group_vs_class={"svm": 0.1, "cnn": -0.2}, accuracy={"svm": 1.0, "cnn": 1.0},
                       errors=empty, disagreements=empty, pairs=empty, test_rows=np.arange(8), out="x")


def test_table_is_an_attribute_and_still_callable():
    r = _explanation()
    assert isinstance(r.table, pd.DataFrame) and list(r.table["model"]) == ["svm", "cnn"]
    pd.testing.assert_frame_equal(pd.DataFrame(r.table), r.table())
    assert type(r.table.round(3)) is pd.DataFrame


def test_no_peak_or_band_where_the_importance_is_zero_everywhere():
    t = _explanation().table.set_index("model")
    assert t.loc["svm", ["peak Hz", "band from Hz", "band to Hz", "peak s"]].isna().all()
    assert t.loc["cnn", "peak Hz"] == round(np.linspace(0, 8000, 32)[10])
    assert t.loc["cnn", "band from Hz"] < t.loc["cnn", "peak Hz"] < t.loc["cnn", "band to Hz"]


def test_a_report_without_mistakes_says_so_instead_of_an_empty_figure_and_table():
    r = _explanation()
    r.pairs = pd.DataFrame({"a": ["svm"], "b": ["cnn"], "only_a": [0], "only_b": [0], "both_right": [8],
                            "both_wrong": [0]})
    pngs = dict.fromkeys(("importance", "maps", "embeddings", "errors"), b"\x89PNG")
    sections = {s.heading: s for s in _sections(r, pngs, None, (), "pca")}
    mistakes, disagree = sections["Most confident mistakes"], sections["Where the models disagree"]
    assert not mistakes.figures and not mistakes.tables and "every model got all 8" in mistakes.text
    assert len(disagree.tables) == 1 and "<td>svm</td>" in disagree.tables[0]  # the pairs, no empty header
    assert "same class for all 8" in disagree.text


def test_the_errors_figure_without_errors_keeps_its_title_whole():
    fig = plot_errors(pd.DataFrame(columns=["model", "position", "true", "predicted", "probability", "p_true",
                                            "source"]), np.zeros((1, 32, 32)), CFG)
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent()
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1


def test_the_time_plot_keeps_the_slowest_models_name_inside_its_plot():
    table = pd.DataFrame({"model": ["svm", "cnn", "resnet18"], "status": ["ok"] * 3, "accuracy": [0.8, 0.9, 0.95],
                          "macro_f1": [0.8, 0.9, 0.95], "train_s": [1.0, 30.0, 600.0]})
    cm = {m: np.eye(2, dtype=int) * 5 for m in table["model"]}
    fig = plot_comparison(table, cm, ["a", "b"])
    fig.canvas.draw()
    cost = fig.subfigs[0].axes[1]
    for text in cost.texts:  # each name inside its own plot, so none runs to (or past) the figure's edge
        box = text.get_window_extent()
        assert cost.bbox.x0 <= box.x0 and box.x1 <= cost.bbox.x1, text.get_text()
