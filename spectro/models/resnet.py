"""ResNets for spectrogram images, faithful to the papers and to torchvision.

He, Zhang, Ren, Sun (2015), "Deep Residual Learning for Image Recognition",
arXiv:1512.03385: BasicBlock/Bottleneck nets of 18-152 layers (Table 1),
their plain (shortcut-free) baselines, and the small-input nets of 6n+2
layers of its CIFAR-10 section (Sec. 4.2). He et al. (2016), "Identity
Mappings in Deep Residual Networks", arXiv:1603.05027: pre-activation blocks.

Module names follow torchvision (``conv1``, ``bn1``, ``layer1..4``, ``downsample.0/1``,
``fc``) so its state_dicts load with ``strict=True``. Variants are arguments of one
:class:`ResNet`, never copied classes; the small-input nets are in resnet_small.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from spectro.errors import SpectroError
from spectro.models.registry import check_options, register_model
from spectro.models.weights import load_pretrained

__all__ = ["conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet", "build_resnet"]

STEMS = ("imagenet", "small")
STRIDE_PLACEMENTS = ("v1.5", "paper")
IMAGENET_WIDTHS = (64, 128, 256, 512)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution with no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _norm(channels: int, skip: bool = False) -> nn.Module:
    """BatchNorm over ``channels``, or nothing where the input is normalised already (``skip``)."""
    return nn.Identity() if skip else nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34 and the small-input nets); ``stride`` in the first.

    Parameters
    ----------
    inplanes, planes : int
        Input and output channels.
    stride : int
        Of the first conv (2 where a stage halves the resolution).
    downsample : nn.Module or None
        Projection shortcut where the shape changes; None means identity.
    shortcut : bool
        False gives the paper's plain block: the branch alone, nothing added.
    preact : bool
        Pre-activation order BN-ReLU-conv with nothing after the addition
        (He et al. 2016, Fig. 4e) instead of conv-BN-ReLU with ReLU after it.
    norm_input : bool
        Pre-activation only: False for the net's first block, whose input the
        stem has normalised and activated already (fb.resnet.torch's ``no_preact``).

    It has no 1x1 conv, so it takes no ``stride_in_1x1`` (a :class:`Bottleneck` option).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, *,
                 shortcut: bool = True, preact: bool = False, norm_input: bool = True) -> None:
        super().__init__()
        # Modules in the order torchvision registers them (conv1, bn1, conv2, bn2, ..., downsample): state_dict
        # keys and the order of initialisation match. With pre-activation each BN precedes its conv.
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = _norm(inplanes, skip=not norm_input) if preact else _norm(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = _norm(planes)
        # In-place ReLU is safe only post-activation, where it never touches the block input.
        self.relu = nn.ReLU(inplace=not preact)
        self.downsample = downsample
        self.shortcut, self.preact = shortcut, preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, inplanes, H, W) -> (N, planes, H / stride, W / stride)."""
        if self.preact:
            out = self.relu(self.bn1(x))
            # He et al. 2016 (and their code): a projection shortcut sees the pre-activated
            # input; an identity shortcut keeps the raw one.
            identity = x if self.downsample is None else self.downsample(out)
            out = self.conv1(out)
            out = self.relu(self.bn2(out))
            out = self.conv2(out)
            return out + identity if self.shortcut else out
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.shortcut:
            out = out + (identity if self.downsample is None else self.downsample(identity))
        return self.relu(out)  # He et al. 2015: ReLU after the addition

    def zero_init_last(self) -> None:
        """Start the residual branch at zero, so the block begins as the identity (Goyal et al. 2017):
        the last BN's scale, or with pre-activation (whose last BN precedes the last conv) that conv."""
        nn.init.zeros_(self.conv2.weight if self.preact else self.bn2.weight)


class Bottleneck(nn.Module):
    """1x1 (reduce), 3x3, 1x1 (expand x4) convs: ResNet-50/101/152.

    ``stride_in_1x1=True`` is the paper's placement (the first 1x1 conv of a
    down-sampling block has stride 2); False, the default, is "ResNet v1.5"
    (stride in the 3x3, as torchvision and NVIDIA): a strided 1x1 conv reads
    only one input position in four, a strided 3x3 reads them all, which is
    worth about 0.5% ImageNet top-1 for about 6% more compute (ResNet-50:
    4.09 instead of 3.86 GMACs at 224x224; NVIDIA DeepLearningExamples,
    "ResNet50 v1.5"), and torchvision's checkpoints are trained with it, so
    ``pretrained=`` weights meet the layout they were trained in. The other
    parameters are :class:`BasicBlock`'s.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, *,
                 shortcut: bool = True, preact: bool = False, norm_input: bool = True,
                 stride_in_1x1: bool = False) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        width = planes * self.expansion
        self.conv1 = conv1x1(inplanes, planes, s1)
        self.bn1 = _norm(inplanes, skip=not norm_input) if preact else _norm(planes)
        self.conv2 = conv3x3(planes, planes, s3)
        self.bn2 = _norm(planes)
        self.conv3 = conv1x1(planes, width)
        self.bn3 = _norm(planes) if preact else _norm(width)
        self.relu = nn.ReLU(inplace=not preact)
        self.downsample = downsample
        self.shortcut, self.preact = shortcut, preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, inplanes, H, W) -> (N, 4 planes, H / stride, W / stride)."""
        if self.preact:
            out = self.relu(self.bn1(x))
            identity = x if self.downsample is None else self.downsample(out)  # see BasicBlock.forward
            out = self.conv1(out)
            out = self.relu(self.bn2(out))
            out = self.conv2(out)
            out = self.relu(self.bn3(out))
            out = self.conv3(out)
            return out + identity if self.shortcut else out
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.shortcut:
            out = out + (identity if self.downsample is None else self.downsample(identity))
        return self.relu(out)

    def zero_init_last(self) -> None:
        """As :meth:`BasicBlock.zero_init_last`: the last BN's scale, or the last conv with pre-activation."""
        nn.init.zeros_(self.conv3.weight if self.preact else self.bn3.weight)


class ResNet(nn.Module):
    """A residual (or plain) network on images of ``in_channels`` channels.

    Parameters
    ----------
    block : type of BasicBlock or Bottleneck
    layers : sequence of int
        Blocks per stage, e.g. [3, 4, 6, 3]; stage i has ``widths[i]`` planes.
    num_classes : int
    in_channels : int
        1 for spectrograms, 3 for RGB images.
    widths : sequence of int
        Planes per stage: 64-128-256-512 (ImageNet nets) or 16-32-64
        (small-input nets). The first stage keeps the resolution; each later
        one halves it with a stride-2 first block.
    stem : {"imagenet", "small"}
        ``imagenet``: 7x7 conv stride 2 and 3x3 max-pool stride 2 (/4 overall;
        a 64x101 spectrogram reaches the last stage as 2x4). ``small``: 3x3
        conv stride 1, no pool (He et al. 2015, Sec. 4.2; 64x101 ends as
        8x13, at about 15x the compute: resnet18 costs 7.1 instead of 0.49
        GFLOPs). Any input of at least 8x8 works.
    shortcut : bool
        False builds the paper's plain baseline: same layers, no shortcuts.
    preact : bool
        Pre-activation blocks and a final BN-ReLU before pooling (He et al. 2016).
    stride_placement : {"v1.5", "paper"}
        Bottleneck only; see :class:`Bottleneck`.
    zero_init_residual : bool
        Start every residual branch at zero so each block begins as the
        identity, which eases early training (Goyal et al. 2017, "Accurate,
        Large Minibatch SGD", arXiv:1706.02677: gamma = 0 in the last BN of
        each branch; with pre-activation the last BN precedes the last conv,
        so that conv is zeroed instead).

    Notes
    -----
    Input [shape=(N, in_channels, F, T)]; :meth:`forward_features` returns the
    last feature map [shape=(N, num_features, F', T')], :meth:`forward_head`
    the logits [shape=(N, num_classes)] or, with ``pre_logits=True``, the
    pooled embedding [shape=(N, num_features)].
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        num_classes: int,
        in_channels: int = 1,
        *,
        widths: Sequence[int] = IMAGENET_WIDTHS,
        stem: str = "imagenet",
        shortcut: bool = True,
        preact: bool = False,
        stride_placement: str = "v1.5",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise SpectroError(f"unknown stem {stem!r}; valid stems: {', '.join(STEMS)}")
        if stride_placement not in STRIDE_PLACEMENTS:
            raise SpectroError(f"unknown stride_placement {stride_placement!r}; "
                               f"valid: {', '.join(STRIDE_PLACEMENTS)}")
        if num_classes < 1 or in_channels < 1 or len(widths) != len(layers) or len(layers) not in (3, 4):
            raise SpectroError(f"need num_classes, in_channels >= 1 and one width per stage (3 or 4 stages), "
                               f"got {num_classes}, {in_channels}, {list(widths)}, {list(layers)}")
        if stride_placement != "v1.5" and block is not Bottleneck:
            raise SpectroError(f"stride_placement {stride_placement!r} places the stride of a Bottleneck's 1x1 "
                               f"conv; {block.__name__} has none (ResNet-50 and deeper only)")
        if zero_init_residual and not shortcut:
            raise SpectroError("zero_init_residual needs shortcuts: a plain net would output zeros")
        self.shortcut, self.preact = shortcut, preact
        self.stride_in_1x1 = stride_placement == "paper"
        self.inplanes = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        # The stages, written out as torchvision does: each after the first halves the resolution.
        self.layer1 = self._make_layer(block, widths[0], layers[0], norm_input=False)
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        # The 6n+2-layer nets of Sec. 4.2 have three stages, the ImageNet nets four.
        self.layer4 = (self._make_layer(block, widths[3], layers[3], stride=2) if len(layers) == 4
                       else nn.Identity())
        self.num_features = widths[-1] * block.expansion
        self.final_norm = (nn.Sequential(nn.BatchNorm2d(self.num_features), nn.ReLU(inplace=True))
                           if preact else nn.Identity())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int,
                    stride: int = 1, norm_input: bool = True) -> nn.Sequential:
        downsample = None
        out_planes = planes * block.expansion
        if self.shortcut and (stride != 1 or self.inplanes != out_planes):
            # He et al. 2015, Sec. 3.3, option B: a 1x1 projection (with BN) where the
            # shape changes, identity elsewhere. Pre-activation: the block's BN-ReLU
            # already precedes it, so no BN (He et al. 2016).
            proj: list[nn.Module] = [conv1x1(self.inplanes, out_planes, stride)]
            if not self.preact:
                proj.append(nn.BatchNorm2d(out_planes))
            downsample = nn.Sequential(*proj)
        kwargs: dict[str, Any] = dict(shortcut=self.shortcut, preact=self.preact)
        if block is Bottleneck:
            kwargs["stride_in_1x1"] = self.stride_in_1x1
        layers = [block(self.inplanes, planes, stride, downsample, norm_input=norm_input, **kwargs)]
        self.inplanes = out_planes
        layers += [block(self.inplanes, planes, **kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015b, "Delving Deep into Rectifiers", arXiv:1502.01852, as torchvision.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):  # each block knows its last layer (timm's pattern)
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, F, T) -> last feature map (N, num_features, F', T')."""
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.final_norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map (N, C, F', T') -> logits (N, num_classes), or embeddings (N, C)."""
        x = torch.flatten(self.avgpool(x), 1)  # (N, num_features)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, F, T) -> logits (N, num_classes)."""
        return self.forward_head(self.forward_features(x))


_OPTIONS = ("stem", "stride_placement", "zero_init_residual", "pretrained")
# Block type and blocks per stage of the ImageNet nets (He et al. 2015, Table 1).
DEPTHS: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def build_resnet(
    block: type[BasicBlock | Bottleneck], layers: Sequence[int], num_classes: int,
    in_channels: int, options: dict[str, Any], *, shortcut: bool = True,
    preact: bool = False, widths: Sequence[int] = IMAGENET_WIDTHS, default_stem: str = "imagenet",
) -> ResNet:
    """Build a :class:`ResNet` of a family (the keyword arguments) with a user's ``options``.

    ``options`` may hold ``stem``, ``stride_placement``, ``zero_init_residual``
    (see :class:`ResNet`) and ``pretrained``: the path of a local checkpoint,
    e.g. torchvision's ImageNet weights, loaded by
    :func:`spectro.models.weights.load_pretrained` (first conv summed to one
    channel, a classifier of another size re-initialised with a warning).
    """
    check_options("ResNet", options, _OPTIONS)
    options = dict(options)
    pretrained = options.pop("pretrained", None)
    options.setdefault("stem", default_stem)
    model = ResNet(block, layers, num_classes, in_channels, widths=widths,
                   shortcut=shortcut, preact=preact, **options)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


# ImageNet nets (He et al. 2015, Table 1). Default stem "imagenet": the paper's
# architecture, torchvision's parameter counts, its checkpoints load as they are.
@register_model()
def resnet18(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[18], num_classes, in_channels, options)


@register_model()
def resnet34(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[34], num_classes, in_channels, options)


@register_model()
def resnet50(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[50], num_classes, in_channels, options)


@register_model()
def resnet101(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[101], num_classes, in_channels, options)


@register_model()
def resnet152(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[152], num_classes, in_channels, options)


# The paper's plain baselines (Sec. 4.1): the same layers with no shortcuts.
@register_model()
def plain18(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[18], num_classes, in_channels, options, shortcut=False)


@register_model()
def plain34(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[34], num_classes, in_channels, options, shortcut=False)


@register_model()
def plain50(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[50], num_classes, in_channels, options, shortcut=False)


@register_model()
def plain101(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[101], num_classes, in_channels, options, shortcut=False)


@register_model()
def plain152(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[152], num_classes, in_channels, options, shortcut=False)


# Pre-activation ResNets (He et al. 2016, Fig. 4e): BN-ReLU-conv, identity after the sum.
@register_model()
def preresnet18(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[18], num_classes, in_channels, options, preact=True)


@register_model()
def preresnet34(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[34], num_classes, in_channels, options, preact=True)


@register_model()
def preresnet50(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[50], num_classes, in_channels, options, preact=True)


@register_model()
def preresnet101(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[101], num_classes, in_channels, options, preact=True)


@register_model()
def preresnet152(num_classes: int, in_channels: int = 1, **options: Any) -> ResNet:
    return build_resnet(*DEPTHS[152], num_classes, in_channels, options, preact=True)
