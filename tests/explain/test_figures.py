"""The explain figures, built from the known-answer models: what each one shows and its axes' units."""

import numpy as np
import pytest
from conftest import BAND
from synth import TINY_CFG

from spectro.explain.embeddings import embed, group_minus_class, project
from spectro.explain.errors import confident_errors
from spectro.explain.figures import IMPORTANCE_LABEL, plot_embeddings, plot_errors, plot_importance, plot_maps
from spectro.explain.gradcam import grad_cam
from spectro.explain.occlusion import band_importance, image_axes, occlusion_maps

MODELS = ("svm", "cnn", "resnet20")


@pytest.fixture(scope="module")
def profiles(band_task):
    _, _, X, y, models = band_task
    found = {m: band_importance(models[m], X, y) for m in MODELS}
    return {m: f for m, (f, _) in found.items()}, {m: t for m, (_, t) in found.items()}


def test_importance_one_line_per_model_on_hz_and_seconds(profiles, tmp_path):
    hz, seconds = image_axes(TINY_CFG)
    over_f, over_t = profiles
    fig = plot_importance(over_f, hz, over_time=over_t, seconds=seconds, path=str(tmp_path / "importance.png"))
    freq_ax, time_ax = fig.axes
    assert freq_ax.get_xlabel() == "frequency (Hz)" and time_ax.get_xlabel() == "time (s)"
    assert freq_ax.get_ylabel() == IMPORTANCE_LABEL
    for ax, xs in ((freq_ax, hz), (time_ax, seconds)):
        lines = [ln for ln in ax.get_lines() if ln.get_label() in MODELS]
        assert [ln.get_label() for ln in lines] == list(MODELS)
        for ln in lines:
            np.testing.assert_allclose(ln.get_xdata(), xs)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(MODELS)
    # The curves are the profiles given: each model's peak sits at a band frequency.
    for ln in freq_ax.get_lines():
        if ln.get_label() in MODELS:
            assert hz[BAND[0]] <= ln.get_xdata()[np.argmax(ln.get_ydata())] <= hz[BAND[1] - 1]
    assert freq_ax.get_xscale() == "log"  # mel centres span more than a decade
    assert (tmp_path / "importance.png").stat().st_size > 10_000


def test_maps_grid_image_then_one_column_per_model(band_task, tmp_path):
    _, _, X, y, models = band_task
    k = 2
    maps = {"svm occlusion": occlusion_maps(models["svm"], X[:k], y[:k]),
            "cnn Grad-CAM": grad_cam(models["cnn"], X[:k], y[:k])}
    fig = plot_maps(X[:k, 0], maps, TINY_CFG, titles=["band up", "band down"], path=str(tmp_path / "maps.png"))
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == k * 3
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "band up" and titles[1].startswith("svm occlusion (") and titles[2].startswith("cnn Grad-CAM (max 1)")
    assert all(ax.get_xlabel() == "time (s)" for ax in axes)
    assert axes[0].get_ylabel() == "Hz"
    assert (tmp_path / "maps.png").stat().st_size > 10_000


def test_embeddings_one_panel_per_model_test_points_outlined(band_task, tmp_path):
    Xtr, ytr, X, y, models = band_task
    g_tr, g_te = np.where(np.arange(len(ytr)) % 4 < 2, "kit A", "kit B"), np.where(np.arange(len(y)) < 8, "kit A",
                                                                                      "kit B")
    points, scores = {}, {}
    for m in MODELS:
        z_tr, z_te = embed(models[m], Xtr), embed(models[m], X)
        points[m] = project(z_tr, z_te)
        scores[m] = group_minus_class(z_te, y, g_te)
    fig = plot_embeddings(points, train_classes=ytr, test_classes=y, train_groups=g_tr, test_groups=g_te,
                          labels=["quiet band", "loud band"], scores=scores, path=str(tmp_path / "emb.png"))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == list(MODELS)
    assert all(f"{scores[m]:+.2f}" in ax.get_title() for m, ax in zip(MODELS, panels))
    assert all(scores[m] < 0 for m in MODELS)  # the band task is class-driven
    for ax in panels:
        sizes = [len(c.get_offsets()) for c in ax.collections]
        assert sum(sizes) == len(Xtr) + len(X)
        outlined = sum(len(c.get_offsets()) for c in ax.collections if c.get_linewidths()[0] > 0)
        assert outlined == len(X)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"quiet band", "loud band", "test (outlined)", "kit A", "kit B"} <= set(legend)


def test_errors_gallery_one_panel_per_mistake(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 32, 32))
    proba = {"svm": np.eye(2)[[1, 1, 0, 0, 1, 0]] * 0.8 + 0.1, "cnn": np.eye(2)[[0, 1, 0, 1, 1, 0]] * 0.8 + 0.1}
    y = np.array([0, 1, 0, 1, 0, 1])
    errors = confident_errors(proba, y, labels=["yes", "no"], sources=[f"/data/clip{i}.wav" for i in range(6)])
    fig = plot_errors(errors, images, TINY_CFG, path=str(tmp_path / "errors.png"))
    shown = [ax for ax in fig.axes if ax.get_title()]
    assert len(shown) == len(errors) == 6  # svm: 4 wrong, cnn: 2
    assert shown[0].get_title().startswith("svm: yes → no (p=0.90)") and "clip0.wav" in shown[0].get_title()
    assert all(ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "Hz" for ax in shown)
