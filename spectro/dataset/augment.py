"""Augmentation of normalised batches, on the device: SpecAugment masks, time shift, gain and EQ, mixup.

Batched and seeded from the global torch generator of the batch's device,
so a seeded run repeats and a resumed one (which restores that state) too.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torchaudio
from torch import nn

__all__ = ["Augment", "time_roll", "gain_eq", "mixup", "MASK_FRACTION", "N_MASKS", "EQ_TERMS"]

#: SpecAugment masks, scaled from Park et al. 2019 (arXiv:1904.08779) LibriSpeech
#: "LD" policy (two frequency masks of up to 27 of 80 mel bands, two time
#: masks): masks of up to 1/8 of the axis each suit 1-second clips better.
MASK_FRACTION = 1 / 8
N_MASKS = 2
#: Random EQ curves are sums of this many half-cosines over the frequency axis: smooth, like a
#: microphone's or a room's response, never a notch.
EQ_TERMS = 3


class Augment(nn.Module):
    """SpecAugment masks and random time shift of a normalised batch.

    Parameters
    ----------
    shape : (C, F, T)
        Image shape, to size the masks.
    specaugment : bool
        ``N_MASKS`` frequency and ``N_MASKS`` time masks per example, each up
        to ``MASK_FRACTION`` of its axis; masked cells are set to 0, the mean
        of the normalised data.
    time_shift : float
        Roll each example along time by up to this fraction of its width
        (circular: no content is lost or invented).
    gain_eq : float
        Decibels: add to each example a random gain of up to ``gain_eq`` dB
        either way and a random smooth EQ curve of up to ``gain_eq`` dB over
        frequency (see :func:`gain_eq`), as a different microphone, gain
        setting or room would. The images must be in dB.
    std : array-like [shape=(C, F)], optional
        The per-frequency standard deviation the batch was normalised by
        (needed with ``gain_eq``: a dB offset ``d`` is ``d / std`` there).

    Notes
    -----
    Draws from the global torch generator of the batch's device, so a seeded
    run is repeatable and a resumed one (which restores that state) too.
    """

    def __init__(self, shape: tuple[int, int, int], *, specaugment: bool = False, time_shift: float = 0.0,
                 gain_eq: float = 0.0, std: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        _, f, t = shape
        self.time_shift = float(time_shift)
        self.gain_eq = float(gain_eq)
        if self.gain_eq > 0 and std is None:
            raise ValueError("gain_eq needs the normalisation std")
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32) if std is not None else None,
                             persistent=False)
        self.masks = nn.ModuleList()
        if specaugment:
            freq, time = max(1, int(f * MASK_FRACTION)), max(1, int(t * MASK_FRACTION))
            for _ in range(N_MASKS):
                self.masks.append(torchaudio.transforms.FrequencyMasking(freq, iid_masks=True))
                self.masks.append(torchaudio.transforms.TimeMasking(time, iid_masks=True))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F, T) -> (B, C, F, T)."""
        if self.time_shift > 0:
            x = time_roll(x, self.time_shift)
        if self.gain_eq > 0:
            offsets = gain_eq(x.shape[0], x.shape[2], self.gain_eq, device=x.device)  # (B, 1, F, 1) dB
            x = x + offsets / self.std.to(x.device)[None, :, :, None]  # in the batch's normalised units
        for mask in self.masks:
            x = mask(x)
        return x


def time_roll(x: torch.Tensor, max_fraction: float) -> torch.Tensor:
    """Roll each example of ``x`` (B, C, F, T) along time by its own offset in ``[-k, k]``."""
    b, _, _, t = x.shape
    k = int(round(max_fraction * t))
    if k == 0:
        return x
    offsets = torch.randint(-k, k + 1, (b, 1, 1, 1), device=x.device)
    idx = (torch.arange(t, device=x.device).view(1, 1, 1, t) - offsets) % t  # (B, 1, 1, T)
    return torch.gather(x, 3, idx.expand_as(x))


def gain_eq(batch: int, bands: int, max_db: float, *, device: Any = None) -> torch.Tensor:
    """Random per-example level offsets in dB [shape=(batch, 1, bands, 1)]: a gain and a smooth EQ curve.

    Each example gets a gain drawn uniformly from ``[-max_db, max_db]`` plus an
    EQ curve ``max_db * sum_k c_k cos(pi k u) / EQ_TERMS`` (``u`` from 0 at the
    lowest band to 1 at the highest, ``c_k`` uniform in ``[-1, 1]``), so
    neither part exceeds ``max_db``. Added to a dB image, it is what a
    different gain, microphone or room response does to the spectrum
    (a convolution in time is a sum in log-frequency-magnitude).
    """
    gain = (torch.rand(batch, 1, device=device) * 2 - 1) * max_db  # (B, 1)
    u = torch.linspace(0, 1, bands, device=device)  # (F,)
    k = torch.arange(1, EQ_TERMS + 1, device=device, dtype=torch.float32)  # (K,)
    basis = torch.cos(torch.pi * k[:, None] * u[None, :])  # (K, F)
    coef = torch.rand(batch, EQ_TERMS, device=device) * 2 - 1  # (B, K)
    curve = max_db * (coef @ basis) / EQ_TERMS  # (B, F)
    return (gain + curve).view(batch, 1, bands, 1)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018, arXiv:1710.09412) of a batch with a permutation of itself.

    Returns ``(mixed x, y, y of the partner, lam)``; the loss is
    ``lam * CE(out, y) + (1 - lam) * CE(out, y_partner)``.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0], device=x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
