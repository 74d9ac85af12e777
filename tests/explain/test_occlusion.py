"""Occlusion: known answers for every kind of model (SVM, CNN, ResNet, an ONNX session)."""

import numpy as np
import pytest
from conftest import BAND, CLICK, F, T

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.explain.occlusion import (
    OnnxProbabilities,
    band_importance,
    image_axes,
    occlusion_maps,
    patch_starts,
    profiles,
)

MODELS = ("svm", "cnn", "resnet20")


def test_patch_starts_cover_the_axis():
    assert patch_starts(32, 4, 2) == list(range(0, 29, 2))
    assert patch_starts(10, 4, 4) == [0, 4, 6]  # the last one flush with the end
    assert patch_starts(3, 4, 2) == [0]


def test_occlusion_of_a_known_function():
    # A "model" whose probability of class 1 is the mean of rows 4-5: only those rows matter.
    def proba(X):
        p = 1 / (1 + np.exp(-X[:, 0, 4:6, :].mean(axis=(1, 2))))
        return np.stack([1 - p, p], axis=1)

    X = np.full((2, 1, 8, 8), 0.0, np.float32)
    X[:, :, 4:6] = 3.0
    maps = occlusion_maps(proba, X, np.array([1, 1]), patch=(2, 2), stride=(2, 2))
    assert maps.shape == (2, 8, 8)
    assert np.all(maps[:, 4:6] > 0.01) and np.allclose(maps[:, :4], 0) and np.allclose(maps[:, 6:], 0)
    over_f, over_t = band_importance(proba, X, np.array([1, 1]), width=(2, 2))
    # Masks two rows wide, one row apart: rows 3 and 6 share a mask with the band, rows 4 and 5 lie in all theirs.
    assert set(np.flatnonzero(over_f > 1e-6)) == {3, 4, 5, 6} and np.ptp(over_t) < 1e-9
    assert over_f[4] == pytest.approx(over_f[5]) and over_f[4] > over_f[3] > 0
    # The fill is the training mean: filling with the image's own value changes nothing.
    assert np.allclose(occlusion_maps(proba, X, np.array([1, 1]), fill=X[0, :, :, 0], patch=(2, 2)), 0)


def test_occlusion_refuses_what_it_cannot_use():
    with pytest.raises(SpectroError, match="predict_proba"):
        occlusion_maps(object(), np.zeros((1, 1, 4, 4)), [0])
    with pytest.raises(SpectroError, match="targets"):
        occlusion_maps(lambda X: np.ones((len(X), 1)), np.zeros((2, 1, 4, 4)), [0])


@pytest.mark.parametrize("model", MODELS)
def test_band_task_every_model_peaks_in_the_band(band_task, model):
    _, _, X, y, models = band_task
    clf = models[model]
    assert np.mean(clf.predict(X) == y) >= 0.75  # it learned the task, so its importance means something
    over_f, over_t = band_importance(clf, X, y)
    assert over_f.shape == (F,) and over_t.shape == (T,)
    assert BAND[0] <= np.argmax(over_f) < BAND[1], np.round(over_f, 3)
    # Outside the band (beyond one mask width) masking costs at most a fraction of the band's drop.
    outside = np.r_[over_f[:BAND[0] - 4], over_f[BAND[1] + 4:]]
    assert outside.max() < 0.5 * over_f.max()


@pytest.mark.parametrize("model", MODELS)
def test_click_task_time_profile_peaks_at_the_click(click_task, model):
    _, _, X, y, models = click_task
    clf = models[model]
    assert np.mean(clf.predict(X) == y) >= 0.75
    for k, col in CLICK.items():
        _, over_t = band_importance(clf, X[y == k], y[y == k])
        assert col - 2 <= np.argmax(over_t) <= col + 3, (k, np.round(over_t, 3))


def test_patch_maps_of_a_network_peak_in_the_band(band_task):
    _, _, X, y, models = band_task
    over_f, _ = profiles(occlusion_maps(models["resnet20"], X[:8], y[:8]))
    assert BAND[0] <= np.argmax(over_f) < BAND[1]


@pytest.mark.parametrize("model", ["svm", "cnn"])
def test_an_onnx_session_is_explained_like_the_model(band_task, tmp_path, model):
    ort = pytest.importorskip("onnxruntime")
    _, _, X, y, models = band_task
    clf = models[model]
    path = str(tmp_path / f"{model}.onnx")
    clf.export_onnx(path, image_shape=(1, F, T), opset=18)
    session = OnnxProbabilities(ort.InferenceSession(path, providers=["CPUExecutionProvider"]))
    np.testing.assert_allclose(session.predict_proba(X), clf.predict_proba(X), atol=1e-4)
    over_f, _ = band_importance(session, X, y)
    assert BAND[0] <= np.argmax(over_f) < BAND[1]
    np.testing.assert_allclose(over_f, band_importance(clf, X, y)[0], atol=1e-3)


def test_image_axes_are_hz_and_seconds():
    cfg = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)
    hz, s = image_axes(cfg)
    assert hz.shape == (32,) and s.shape == (cfg.n_frames,)
    assert 0 < hz[0] < hz[-1] <= 4000 and np.all(np.diff(hz) > 0)
    assert s[1] == pytest.approx(128 / 8000) and s[-1] == pytest.approx((cfg.n_frames - 1) * 128 / 8000)
