"""What a model's name says: its depth (``resnet18`` -> 18). No imports: the command line uses it at start-up."""

from __future__ import annotations

__all__ = ["name_depth"]


def name_depth(name: str) -> int:
    """The number in a model name (its layers: ``resnet18`` -> 18, ``preresnet110`` -> 110); 0 without one."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0
