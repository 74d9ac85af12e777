"""Grad-CAM: the band task's maps peak in the band; what it refuses."""

import numpy as np
import pytest
import torch
from conftest import BAND, F, T

from spectro.errors import SpectroError
from spectro.explain.gradcam import grad_cam, network_of
from spectro.explain.occlusion import profiles


@pytest.mark.parametrize("model", ["cnn", "resnet20"])
def test_grad_cam_on_the_band_task_peaks_in_the_band(band_task, model):
    _, _, X, y, models = band_task
    maps = grad_cam(models[model], X, y)
    assert maps.shape == (len(X), F, T) and maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    over_f, _ = profiles(maps)
    assert BAND[0] <= np.argmax(over_f) < BAND[1], np.round(over_f, 2)
    assert models[model].module_.training is False  # left in eval mode
    assert torch.is_inference_mode_enabled() is False


def test_grad_cam_of_a_known_network():
    # A net whose feature maps are the image's two channels and whose class-1 score is the mean of
    # channel 0: only channel 0 gets weight, so the map is that channel (ones on rows 2-3).
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward_features(self, x):
            return x * self.w

        def forward_head(self, a):
            s = a[:, 0].mean(dim=(1, 2))
            return torch.stack([-s, s], dim=1)

    X = np.zeros((1, 2, 6, 6), np.float32)
    X[0, 0, 2:4], X[0, 1, :2] = 1, 1
    maps = grad_cam(Net(), X, [1])
    assert np.allclose(maps[0, 2:4], 1) and np.allclose(maps[0, :2], 0) and np.allclose(maps[0, 4:], 0)


def test_grad_cam_refuses_the_svm(band_task):
    svm = band_task[4]["svm"]
    assert network_of(svm) is None
    with pytest.raises(SpectroError, match="occlusion explains any model"):
        grad_cam(svm, band_task[2], band_task[3])
