"""Layers whose low-precision CPU kernels are wrong, found from the shapes one network will see.

Mixed precision trusts the device's bf16 kernels to compute what the float32
ones compute, to about bf16's three digits. On the CPU they do not always.
With torch 2.14's oneDNN, the bf16 **weight gradient** of a strided 3 x 3
convolution whose input map is one column wide is garbage, intermittently
(NaN, Inf or 1e34 in 1 to 10 of 12 calls on the same shape; the forward pass
and the input gradient stay right). Measured on an AMD EPYC with AVX-512 BF16
under forced bf16 autocast; issue 31 saw the same divergence by default on an
Intel CPU with AMX at one more column (21-frame images, whose ``layer4``
input is two columns wide and its output one). A ResNet-18 meets such a layer
as soon as its images are 11 to 21 frames wide (0.1-0.2 s windows): training
diverges on the first batch whose garbage is not finite, where float32 trains
to 100 %. Measured here: 1-column inputs are wrong with stride 2 in both
memory formats; 1-row inputs, stride 1, 1 x 1 kernels and 2- to 3-column
inputs are right (tests/utils/test_kernels.py keeps the known-answer check).

So, under CPU autocast, :func:`narrow_strided_layers` names every strided
convolution (kernel wider than 1) whose output map is one column or one row
wide, the shape both reports share, and :func:`keep_float32` runs those in
float32: they are the network's smallest maps, so the cost is a few per cent
of a step at most, and the weights, state dict and export are unchanged.
"""

from __future__ import annotations

import types

import torch
from torch import nn

__all__ = ["narrow_strided_layers", "keep_float32"]


def narrow_strided_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the strided convolutions of ``model`` whose output is one column or row wide for ``example``.

    Parameters
    ----------
    model : nn.Module
        Left in its training mode, with its weights and buffers unchanged.
    example : torch.Tensor [shape=(batch, channels, freq, time)]
        An input of the shape training feeds; its values do not matter.

    Returns
    -------
    list of str
        ``model.get_submodule`` names, in the order the forward pass meets them.
    """
    found: list[str] = []

    def hook(name: str):
        def record(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
            strided = any(s > 1 for s in module.stride) and any(k > 1 for k in module.kernel_size)
            if strided and min(output.shape[-2:]) == 1 and name not in found:
                found.append(name)
        return record

    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()  # the pass only learns the shapes: eval leaves BatchNorm's running statistics alone
        with torch.no_grad():
            model(torch.zeros_like(example[:1]))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found


def keep_float32(layer: nn.Module) -> None:
    """Run ``layer`` in float32 inside autocast, forward and backward; its output is float32."""
    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return type(self).forward(self, x.float())
    layer.forward = types.MethodType(forward, layer)
