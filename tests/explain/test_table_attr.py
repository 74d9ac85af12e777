"""Explanation.table is an attribute like Comparison.table (still callable, as notebooks once called it), and a
model whose occlusion importance is 0 everywhere has no peak or band (issue 31, R9 and R12)."""

import numpy as np
import pandas as pd

from spectro.explain.explain import Explanation


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
