"""Grad-CAM for the networks: which parts of the last convolutional feature map raise the true class.

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization": the feature maps A_k of the last convolutional
block are weighted by the mean gradient of the class score over each map,
``cam = relu(sum_k mean(d y_c / d A_k) * A_k)``, and upsampled to the image.
Every network in the zoo splits into ``forward_features`` (the image up to
that last block, [shape=(N, K, F', T')]) and ``forward_head`` (pooling and
classifier), timm's convention: the split is where Grad-CAM looks, so no
forward or backward hook has to find the layer by name in each architecture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import nn

from spectro.errors import SpectroError
from spectro.models.base import eval_mode

__all__ = ["grad_cam", "network_of"]


def network_of(model: Any) -> nn.Module | None:
    """The ``nn.Module`` behind a classifier (its ``network``, or the module itself); None otherwise."""
    module = model if isinstance(model, nn.Module) else getattr(model, "network", None)
    if isinstance(module, nn.Module) and hasattr(module, "forward_features") and hasattr(module, "forward_head"):
        return module
    return None


def grad_cam(model: Any, images: Any, targets: Any, *, batch_size: int = 32) -> np.ndarray:
    """Grad-CAM maps of ``targets`` on the last convolutional block, upsampled to the image.

    Parameters
    ----------
    model : NetClassifier or nn.Module with ``forward_features`` and ``forward_head``
    images : array [shape=(N, C, F, T)]
        Normalised, as the network reads them.
    targets : array of int [shape=(N,)]
        The class column followed (the true class).

    Returns
    -------
    maps : np.ndarray [shape=(N, F, T), dtype=float64]
        Each scaled to a maximum of 1 (all zero where no region raises the class).
    """
    net = network_of(model)
    if net is None:
        raise SpectroError(f"Grad-CAM needs a network with forward_features and forward_head, "
                           f"not {type(model).__name__}; occlusion explains any model")
    images = np.asarray(images, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    if images.ndim != 4 or len(targets) != len(images):
        raise SpectroError(f"Grad-CAM needs images (N, C, F, T) and N targets, got {images.shape} and {targets.shape}")
    param = next(net.parameters())
    out = []
    with eval_mode(net), torch.enable_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).to(param.device, param.dtype)
            t = torch.from_numpy(targets[start:start + batch_size]).to(param.device)
            feats = net.forward_features(x)  # (B, K, F', T')
            score = net.forward_head(feats).gather(1, t[:, None]).sum()
            (grads,) = torch.autograd.grad(score, feats)
            weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
            cam = torch.relu((weights * feats).sum(dim=1, keepdim=True))  # (B, 1, F', T')
            cam = nnf.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]
            peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
            out.append((cam / peak).detach().double().cpu().numpy())
    return np.concatenate(out)
