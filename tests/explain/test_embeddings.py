"""Embeddings: what each model embeds, the 2-D projections, and the group-vs-class number."""

import numpy as np
import pytest

from spectro.errors import SpectroError
from spectro.explain.embeddings import embed, group_minus_class, project, silhouette


def _clustered(strong: str, seed: int = 0):
    """40 points in 16-D: 4 groups x 2 classes; ``strong`` ("group" or "class") sets the large offsets."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(4), 10)
    classes = np.tile(np.arange(2), 20)
    g_centres, c_centres = rng.standard_normal((4, 16)), rng.standard_normal((2, 16))
    big, small = (g_centres, c_centres) if strong == "group" else (c_centres, g_centres)
    big_of, small_of = (groups, classes) if strong == "group" else (classes, groups)
    Z = 4 * big[big_of] + 1 * small[small_of] + 0.3 * rng.standard_normal((40, 16))
    return Z, classes, groups


def test_group_driven_features_score_positive_and_class_driven_negative():
    Z, classes, groups = _clustered("group")
    assert group_minus_class(Z, classes, groups) > 0.3
    Z, classes, groups = _clustered("class")
    assert group_minus_class(Z, classes, groups) < -0.3


def test_silhouette_is_nan_when_a_labelling_says_nothing():
    Z = np.random.default_rng(0).standard_normal((6, 3))
    assert np.isnan(silhouette(Z, ["a"] * 6)) and np.isnan(silhouette(Z, list("abcdef")))
    assert np.isnan(group_minus_class(Z, [0, 1] * 3, ["one speaker"] * 6))


@pytest.mark.parametrize("model, dim", [("svm", 64), ("cnn", 64), ("resnet20", 64)])
def test_every_model_embeds_and_the_band_classes_separate(band_task, model, dim):
    Xtr, _, X, y, models = band_task
    Z = embed(models[model], X)
    assert Z.shape == (len(X), dim) and np.isfinite(Z).all()
    if model == "svm":  # standardised features: mean 0, std 1 over the training rows
        Ztr = embed(models[model], Xtr)
        assert np.allclose(Ztr.mean(axis=0), 0, atol=1e-6) and np.allclose(Ztr.std(axis=0), 1, atol=1e-3)
    # Every model learned the band, so its embedding clusters by class, not by an arbitrary split.
    assert silhouette(Z, y) > silhouette(Z, np.arange(len(y)) // 8) + 0.05


def test_projections_share_axes_and_refuse_unknown_methods():
    Z, _, _ = _clustered("class")
    for method in ("pca", "tsne"):
        a, b = project(Z[:30], Z[30:], method=method)
        assert a.shape == (30, 2) and b.shape == (10, 2) and np.isfinite(np.r_[a, b]).all()
    a, b = project(Z[:30], Z[30:])
    both = project(Z, Z[:0])[0]
    np.testing.assert_allclose(np.abs(np.r_[a, b]), np.abs(both), atol=1e-9)  # one fit over train and test
    with pytest.raises(SpectroError, match="unknown projection"):
        project(Z, Z, method="umap")


def test_embed_refuses_a_model_without_one():
    with pytest.raises(SpectroError, match="no embedding"):
        embed(object(), np.zeros((1, 1, 4, 4), np.float32))
