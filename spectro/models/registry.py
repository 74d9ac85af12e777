"""One registry of model names: build a network by name, list and describe them.

Names map to builders in a plain dict (torchvision's ``_MODELS`` pattern):
a name is registered once, by the ``@register_model`` decorator next to the
builder, and looked up by key; nothing is ``eval``-ed or imported by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from spectro.errors import SpectroError, first_line

__all__ = [
    "ModelEntry",
    "register_model",
    "get_entry",
    "build",
    "list_models",
    "describe_models",
    "count_params",
    "count_flops",
    "check_options",
]

#: kinds of registered model: a torch network, or the scikit-learn SVM.
KINDS = ("net", "svm")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes
    ----------
    name : str
        The registry key, e.g. ``"resnet18"``.
    family : str
        A group of related models, e.g. ``"resnet"``, ``"plain"``, ``"svm"``.
    kind : str
        ``"net"`` (``builder`` returns an ``nn.Module``) or ``"svm"``.
    builder : callable
        ``builder(num_classes, in_channels=1, **options)``.
    """

    name: str
    family: str
    kind: str
    builder: Callable[..., Any]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None, *, family: str, kind: str = "net"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder under ``name`` (default: its ``__name__``).

    Raises
    ------
    SpectroError
        If the name is already taken (two models must never share a name, or
        a saved run could reload the wrong one) or ``kind`` is unknown.
    """
    if kind not in KINDS:
        raise SpectroError(f"unknown model kind {kind!r}; valid kinds: {', '.join(KINDS)}")

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise SpectroError(f"a model named {key!r} is already registered")
        _REGISTRY[key] = ModelEntry(key, family, kind, builder)
        return builder

    return decorator


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``.

    Raises
    ------
    SpectroError
        For an unknown name, with one line listing the valid ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpectroError(
            f"unknown model {name!r}; valid models: {', '.join(list_models())}"
        ) from None


def list_models(kind: str | None = None) -> list[str]:
    """Sorted registered names, optionally only those of one ``kind`` (``"net"`` or ``"svm"``)."""
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def check_options(name: str, options: Iterable[str], allowed: Sequence[str]) -> None:
    """Raise SpectroError naming any option of ``name`` not in ``allowed``.

    Builders call this so a misspelt option from the command line becomes one
    readable line rather than a ``TypeError`` deep in a constructor.
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SpectroError(
            f"{name} does not take option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(sorted(allowed)) or 'none'}"
        )


def build(name: str, num_classes: int, in_channels: int = 1, **options: Any) -> nn.Module:
    """Build the network registered as ``name``.

    Parameters
    ----------
    name : str
        A registered network name (see :func:`list_models`).
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
    entry = get_entry(name)
    if entry.kind != "net":
        raise SpectroError(
            f"{name!r} is not a neural network; use make_classifier({name!r}) instead"
        )
    return entry.builder(num_classes, in_channels=in_channels, **options)


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
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.empty(*input_shape, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def describe_models(
    input_shape: Sequence[int] = (1, 64, 101), num_classes: int = 10
) -> list[dict[str, Any]]:
    """One row per registered model: name, family, parameter count and GFLOPs.

    Parameters
    ----------
    input_shape : sequence of int
        One example's shape (C, F, T); C is the networks' ``in_channels``.
    num_classes : int
        Classifier size the networks are built with.

    Returns
    -------
    list of dict
        ``{"name", "family", "params", "gflops"}`` sorted by name; ``gflops``
        is FLOPs / 1e9 for one example. Both are None for the SVM, whose size
        depends on the data it is fitted to.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise SpectroError(f"input shape must be (channels, freq, time), got {tuple(input_shape)}")
    rows = []
    for name in list_models():
        entry = _REGISTRY[name]
        params = gflops = None
        if entry.kind == "net":
            # Meta tensors carry shapes but no storage: even resnet152 costs nothing here.
            with torch.device("meta"):
                model = build(name, num_classes, in_channels=input_shape[0])
            params = count_params(model)
            try:
                gflops = count_flops(model, (1, *input_shape)) / 1e9
            except RuntimeError as exc:  # pooled away to nothing: smaller than 8x8
                raise SpectroError(f"{name} cannot take input {tuple(input_shape)}: "
                                   f"{first_line(exc)}") from exc
        rows.append({"name": name, "family": entry.family, "params": params, "gflops": gflops})
    return rows
