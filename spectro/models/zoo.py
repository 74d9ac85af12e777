"""The model zoo: every family imported (so every name has its builder), built by name, described.

Import from here to build a network by name: importing this module runs the
``@register_model`` decorators of every family module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from spectro.errors import SpectroError, first_line
from spectro.models import cnn, resnet, resnet_small, svm  # noqa: F401  (registers every builder)
from spectro.models.base import eval_mode
from spectro.models.catalog import DESCRIBE_CLASSES, DESCRIBE_SHAPE, list_models, model_info
from spectro.models.registry import builder

__all__ = ["build", "count_params", "count_flops", "describe_models"]


def build(name: str, num_classes: int, in_channels: int = 1, **options: Any) -> nn.Module:
    """Build the network registered as ``name``.

    Parameters
    ----------
    name : str
        A network name (see :func:`spectro.models.catalog.list_models`).
    num_classes : int
        Size of the classifier output.
    in_channels : int
        Channels of the input images, 1 for spectrograms.
    **options
        Family options, e.g. ``stem="small"`` or ``pretrained=PATH`` for ResNets.

    Returns
    -------
    nn.Module
        Maps a float tensor [shape=(N, in_channels, F, T)] to logits
        [shape=(N, num_classes)].
    """
    if model_info(name).kind != "net":
        raise SpectroError(f"{name!r} is not a neural network; use make_classifier({name!r}) instead")
    return builder(name)(num_classes, in_channels=in_channels, **options)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on an input of ``input_shape``, e.g. (1, 1, 64, 101).

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: convolutions and
    matrix products only, 2 FLOPs per multiply-accumulate. Run it on a model
    built under ``torch.device("meta")`` and the count costs no arithmetic.
    """
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.empty(*input_shape, device=device))
    return counter.get_total_flops()


def describe_models(input_shape: Sequence[int] = DESCRIBE_SHAPE,
                    num_classes: int = DESCRIBE_CLASSES) -> list[dict[str, Any]]:
    """One row per model: name, family, kind, summary, parameter count and GFLOPs.

    Parameters
    ----------
    input_shape : sequence of int
        One example's shape (C, F, T); C is the networks' ``in_channels``.
    num_classes : int
        Classifier size the networks are built with.

    Returns
    -------
    list of dict
        ``{"name", "family", "kind", "summary", "params", "gflops"}`` sorted by
        name; ``gflops`` is FLOPs / 1e9 for one example. Both are None for the
        SVM, whose size depends on the data it is fitted to.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise SpectroError(f"input shape must be (channels, freq, time), got {tuple(input_shape)}")
    rows = []
    for name in list_models():
        info = model_info(name)
        params = gflops = None
        if info.kind == "net":
            # Meta tensors carry shapes but no storage: even resnet152 costs nothing here.
            with torch.device("meta"):
                model = build(name, num_classes, in_channels=input_shape[0])
            params = count_params(model)
            try:
                gflops = count_flops(model, (1, *input_shape)) / 1e9
            except RuntimeError as exc:  # pooled away to nothing: smaller than 8x8
                raise SpectroError(f"{name} cannot take input {tuple(input_shape)}: "
                                   f"{first_line(exc)}") from exc
        rows.append({"name": name, "family": info.family, "kind": info.kind, "summary": info.summary,
                     "params": params, "gflops": gflops})
    return rows
