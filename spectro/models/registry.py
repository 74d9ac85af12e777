"""Builders of the networks by name: the ``@register_model`` decorator and its dict.

Names map to builders in a plain dict (torchvision's ``BUILTIN_MODELS``
pattern in ``torchvision/models/_api.py``): a builder registers itself once,
with the decorator next to it, under a network name of
:mod:`spectro.models.catalog` (the one list of names); it is looked up by
key, and nothing is ``eval``-ed or imported by name. Only what
:func:`spectro.models.zoo.build` builds is registered: the networks (the
SVM is a classifier, not a builder). Importing :mod:`spectro.models.zoo`
imports every family, so every network name is there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from spectro.errors import SpectroError
from spectro.models.catalog import MODELS, model_info

__all__ = ["register_model", "builder", "registered", "check_options"]

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register_model(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder under ``name`` (default: its ``__name__``).

    Raises
    ------
    SpectroError
        If the name is not a network of :data:`spectro.models.catalog.MODELS`,
        or already taken (two builders must never share a name, or a saved run
        could reload the wrong one).
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        if key not in MODELS:
            raise SpectroError(f"model {key!r} is not in spectro.models.catalog; add it to FAMILIES there")
        if model_info(key).kind != "net":
            raise SpectroError(f"model {key!r} is a {model_info(key).kind}, not a network: build() cannot build it")
        if key in _BUILDERS:
            raise SpectroError(f"a model named {key!r} is already registered")
        _BUILDERS[key] = fn
        return fn

    return decorator


def builder(name: str) -> Callable[..., Any]:
    """The builder of ``name``: ``builder(num_classes, in_channels=1, **options)``.

    Raises
    ------
    SpectroError
        For an unknown name (listing the valid ones).
    """
    model_info(name)  # an unknown name fails here, listing the valid ones
    return _BUILDERS[name]


def registered() -> list[str]:
    """Sorted names that have a builder (every network of the catalog, once the zoo is imported)."""
    return sorted(_BUILDERS)


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
