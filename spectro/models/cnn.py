"""The small CNN baseline: a few conv-BN-ReLU-pool blocks, global pooling, dropout, linear.

It stands for the "a few conv layers on the spectrogram" models common in
audio classification (e.g. Piczak 2015, "Environmental sound classification
with convolutional neural networks"), with BatchNorm for easy training. With
the default widths it has 0.39 M parameters and costs 0.18 GFLOPs at 64x101,
a third of resnet18 with the ImageNet stem (0.49) and 1/40 with the small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from spectro.errors import SpectroError
from spectro.models.registry import check_options, register_model

__all__ = ["SmallCNN", "cnn"]


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    """3x3 conv (no bias: BN follows), BN, ReLU, then 2x2 max-pool if ``pool``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """A plain stack of conv blocks for (N, in_channels, F, T) spectrograms.

    Parameters
    ----------
    num_classes : int
    in_channels : int
        1 for spectrograms.
    widths : sequence of int
        Output channels of each block. Every block but the last halves the
        resolution with a 2x2 max-pool; the last is pooled globally instead,
        so any input of at least 2^(len(widths) - 1) x 2^(len(widths) - 1)
        works (8x8 with the default four blocks).
    dropout : float
        Dropout probability before the classifier.

    Notes
    -----
    :meth:`forward_features` returns the last feature map
    [shape=(N, widths[-1], F', T')], :meth:`forward_head` the logits
    [shape=(N, num_classes)] or, with ``pre_logits=True``, the pooled
    embedding [shape=(N, widths[-1])].
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        *,
        widths: Sequence[int] = (32, 64, 128, 256),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_channels < 1 or not widths:
            raise SpectroError(
                f"SmallCNN needs num_classes, in_channels >= 1 and some widths, got "
                f"{num_classes}, {in_channels}, {list(widths)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise SpectroError(f"dropout must be in [0, 1), got {dropout}")
        chans = [in_channels, *widths]
        self.features = nn.Sequential(*(
            conv_block(chans[i], chans[i + 1], pool=i < len(widths) - 1)
            for i in range(len(widths))
        ))
        self.num_features = widths[-1]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Kaiming init for ReLU nets, as the ResNets
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, F, T) -> (N, widths[-1], F / 2^(B-1), T / 2^(B-1)) for B blocks."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map (N, C, F', T') -> logits (N, num_classes), or embeddings (N, C)."""
        x = torch.flatten(self.avgpool(x), 1)  # (N, C)
        return x if pre_logits else self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, F, T) -> logits (N, num_classes)."""
        return self.forward_head(self.forward_features(x))


@register_model()
def cnn(num_classes: int, in_channels: int = 1, **options: Any) -> SmallCNN:
    """The small CNN baseline; options ``widths`` and ``dropout`` (see :class:`SmallCNN`)."""
    check_options("cnn", options, ("widths", "dropout"))
    return SmallCNN(num_classes, in_channels, **options)
