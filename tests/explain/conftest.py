"""Known-answer data for the explain tests: classes that differ only in one band, or only in when a click sounds.

Images are built directly (normalised, 1 x 32 x 32), so the models train in a second or two.
"""

import numpy as np
import pytest
import torch

from spectro.training.classifier import make_classifier

F = T = 32
BAND = (12, 18)  # rows where the two band classes differ (one class louder, the other quieter)
CLICK = {0: 6, 1: 24}  # the column where each click class's click starts (two columns wide)
#: Tiny settings under which each model learns both tasks in a few seconds on one CPU thread.
NETS = {"cnn": {"widths": [16, 32, 64], "epochs": 8}, "resnet20": {"epochs": 3}}
NET_SETTINGS = {"batch_size": 16, "device": "cpu", "specaugment": False, "lr": 3e-3}


def band_set(n: int, seed: int, level: float = 0.7):
    """Noise images; rows BAND are raised by ``level`` in class 1 and lowered in class 0."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.standard_normal((n, 1, F, T)).astype(np.float32)
    X[:, :, BAND[0]:BAND[1], :] += np.where(y == 1, level, -level)[:, None, None, None]
    return X, y


def click_set(n: int, seed: int, level: float = 1.0):
    """Noise images with a broadband click (two columns at every row) at CLICK[class]."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.standard_normal((n, 1, F, T)).astype(np.float32)
    for i, c in enumerate(y):
        X[i, :, :, CLICK[c]:CLICK[c] + 2] += level
    return X, y


def fit(name: str, X, y, **svm_options):
    if name == "svm":
        return make_classifier("svm", **svm_options).fit(X, y)
    return make_classifier(name, **NETS[name], **NET_SETTINGS, seed=0).fit(X, y)


@pytest.fixture(scope="session")
def band_task():
    """(train X, train y, test X, test y, {model: fitted classifier}) of the band task."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    Xtr, ytr = band_set(64, 0)
    Xte, yte = band_set(16, 1)
    models = {m: fit(m, Xtr, ytr) for m in ("svm", "cnn", "resnet20")}
    torch.set_num_threads(n)
    return Xtr, ytr, Xte, yte, models


@pytest.fixture(scope="session")
def click_task():
    """As band_task for the click task; the SVM reads PCA features (its summary statistics ignore time)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    Xtr, ytr = click_set(64, 0)
    Xte, yte = click_set(16, 1)
    models = {m: fit(m, Xtr, ytr, features="pca") for m in ("svm", "cnn", "resnet20")}
    torch.set_num_threads(n)
    return Xtr, ytr, Xte, yte, models
