"""The small-input ResNets of He et al. 2015, Sec. 4.2 (their CIFAR-10 nets).

6n+2 layers: a 3x3 conv of 16 filters, three stages of n BasicBlocks with
16, 32 and 64 filters (the last two halving the resolution), global average
pooling and the classifier. ``resnet20/32/44/56/110`` and the plain baselines
``plain20/32/44/56/110`` (Fig. 6 and Table 6 of the paper). They are the
cheap choice for spectrograms: a 64x101 image keeps 16x26 positions in the
last stage.

The paper's CIFAR nets use zero-padding identity shortcuts (option A); these
use the 1x1 projection with BN (option B) like the rest of the family: it is
slightly better in the paper's own comparison (Table 3), adds about 1% of
parameters (resnet20: 0.27 M) and keeps one code path.
"""

from __future__ import annotations

from typing import Any

from spectro.errors import SpectroError
from spectro.models.registry import register_model
from spectro.models.resnet import BasicBlock, ResNet, build_resnet

__all__ = ["SMALL_INPUT_WIDTHS", "small_resnet"]

SMALL_INPUT_WIDTHS = (16, 32, 64)


def small_resnet(
    depth: int, num_classes: int, in_channels: int, options: dict[str, Any], **family: Any
) -> ResNet:
    """A 6n+2-layer small-input ResNet.

    ``options`` are a user's (see :func:`~spectro.models.resnet.build_resnet`),
    ``family`` the variant's (``shortcut=False`` for the plain nets).

    The default stem is the paper's 3x3 stride-1 conv: these nets are meant
    for small inputs, and the ImageNet stem would leave a 64x101 spectrogram
    at 4x7 in the last stage.
    """
    n, rest = divmod(depth - 2, 6)
    if rest or n < 1:
        raise SpectroError(f"small-input ResNet depth must be 6n+2 with n >= 1, got {depth}")
    return build_resnet(BasicBlock, [n] * 3, num_classes, in_channels, options,
                        widths=SMALL_INPUT_WIDTHS, default_stem="small", **family)


@register_model()
def resnet20(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(20, num_classes, in_channels, options)


@register_model()
def resnet32(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(32, num_classes, in_channels, options)


@register_model()
def resnet44(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(44, num_classes, in_channels, options)


@register_model()
def resnet56(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(56, num_classes, in_channels, options)


@register_model()
def resnet110(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(110, num_classes, in_channels, options)


@register_model()
def plain20(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(20, num_classes, in_channels, options, shortcut=False)


@register_model()
def plain32(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(32, num_classes, in_channels, options, shortcut=False)


@register_model()
def plain44(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(44, num_classes, in_channels, options, shortcut=False)


@register_model()
def plain56(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(56, num_classes, in_channels, options, shortcut=False)


@register_model()
def plain110(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return small_resnet(110, num_classes, in_channels, options, shortcut=False)
