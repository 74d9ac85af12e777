"""Images made elsewhere know no Hz or seconds: show and explain label their axes in pixels."""

import numpy as np
from input_files import picture, spectrogram_like

from spectro.config import FeatureConfig
from spectro.explain.figures import plot_importance, plot_maps
from spectro.explain.occlusion import image_axes
from spectro.plots.figures import plot_examples
from spectro.signals.preprocess import preprocess
from spectro.signals.store import open_store

CFG = FeatureConfig(input="image", image_size=(32, 40), colormap="viridis")


def test_show_labels_a_store_of_pictures_in_pixels(tmp_path):
    for c, name in enumerate(("a", "b")):
        for k in range(3):
            picture(tmp_path / "src" / name / f"{k}.png", spectrogram_like(c, k), "viridis")
    preprocess(str(tmp_path / "src"), str(tmp_path / "st"), workers=0, progress=False)
    fig = plot_examples(open_store(str(tmp_path / "st")), "a", per_class=2)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time (pixels)", "frequency (pixels)")
    assert fig.axes[-1].get_ylabel() == "intensity"  # the colour bar: no dB


def test_explain_axes_are_rows_and_columns():
    rows, cols = image_axes(CFG)
    np.testing.assert_array_equal(rows, np.arange(32))
    np.testing.assert_array_equal(cols, np.arange(40))
    fig = plot_importance({"svm": np.ones(32)}, rows, over_time={"svm": np.ones(40)}, seconds=cols, pixels=True)
    assert fig.axes[0].get_xlabel() == "frequency (image row, pixels)"
    assert fig.axes[1].get_xlabel() == "time (image column, pixels)"
    images = np.random.default_rng(0).random((1, 32, 40)).astype(np.float32)
    fig = plot_maps(images, {"svm occlusion": images}, CFG)
    assert fig.axes[0].get_ylabel() == "frequency (pixels)"
