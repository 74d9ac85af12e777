"""What each model turns an example into, in 2-D, and whether it groups examples by class or by group.

The networks' embedding is the pooled output of their last convolutional
block (``forward_head(forward_features(x), pre_logits=True)``, timm's
convention); the SVM's is what its kernel sees, its standardised summary
features. Both are projected to 2-D by PCA (default) or t-SNE (van der
Maaten & Hinton 2008), scikit-learn's.

:func:`group_minus_class` is one number per model: the silhouette of the
test embeddings labelled by group (speaker, kit, recording) minus their
silhouette labelled by class (Rousseeuw 1987). Positive: examples sit
nearer others of their group than of their class, so the model learned who
or what recorded a clip more than what it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from spectro.explain.defaults import EXPLAIN_PROJECTIONS
from spectro.errors import SpectroError

__all__ = ["PROJECTIONS", "embed", "group_minus_class", "project", "silhouette"]

#: The 2-D projections :func:`project` knows (PCA the default).
PROJECTIONS = EXPLAIN_PROJECTIONS


def embed(model: Any, images: Any, *, batch_size: int = 64) -> np.ndarray:
    """Embeddings [shape=(N, D)] of normalised images [shape=(N, C, F, T)]: ``model.embed``.

    A network: its pooled last feature map (D = its ``num_features``). The
    SVM: its standardised summary features (D = what its ``features`` option makes).
    """
    if not callable(getattr(model, "embed", None)):
        raise SpectroError(f"no embedding for {type(model).__name__}: a spectro classifier is needed")
    return np.asarray(model.embed(images, batch_size=batch_size), dtype=np.float64)


def project(train: np.ndarray, test: np.ndarray, *, method: str = "pca", seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Train and test embeddings [shape=(n, D)], [shape=(m, D)] -> 2-D points [shape=(n, 2)], [shape=(m, 2)].

    Both are projected together (one PCA fit, or one t-SNE layout), so train
    and test points share the axes.
    """
    if method not in PROJECTIONS:
        raise SpectroError(f"unknown projection {method!r}; use one of {', '.join(PROJECTIONS)}")
    Z = np.concatenate([np.asarray(train, np.float64), np.asarray(test, np.float64)])
    if len(Z) < 3:
        raise SpectroError(f"a 2-D projection needs three or more examples, got {len(Z)}")
    if method == "pca":
        xy = PCA(n_components=min(2, Z.shape[1]), random_state=seed).fit_transform(Z)
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))  # a 1-D embedding gets a zero y
    else:
        xy = TSNE(n_components=2, perplexity=min(30.0, (len(Z) - 1) / 3), init="pca",
                  random_state=seed).fit_transform(Z)
    return xy[:len(train)], xy[len(train):]


def silhouette(Z: np.ndarray, labels: Any) -> float:
    """Mean silhouette of embeddings [shape=(N, D)] labelled ``labels``; NaN unless 2 <= labels < N."""
    labels = np.asarray(labels).astype(str)
    k = np.unique(labels).size
    if not 2 <= k < len(labels):
        return float("nan")
    return float(silhouette_score(np.asarray(Z, np.float64), labels))


def group_minus_class(Z: np.ndarray, classes: Any, groups: Any) -> float:
    """Silhouette by group minus silhouette by class, in [-2, 2]; positive: the embedding clusters by group.

    NaN when either labelling has fewer than two labels or one per example (a
    test fold from a single speaker says nothing about speakers).
    """
    return silhouette(Z, groups) - silhouette(Z, classes)
