"""Augmentation of normalised batches, on the device: SpecAugment masks, time shift, mixup.

Batched and seeded from the global torch generator of the batch's device,
so a seeded run repeats and a resumed one (which restores that state) too.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

__all__ = ["Augment", "time_roll", "mixup", "MASK_FRACTION", "N_MASKS"]

#: SpecAugment masks, scaled from Park et al. 2019 (arXiv:1904.08779) LibriSpeech
#: "LD" policy (two frequency masks of up to 27 of 80 mel bands, two time
#: masks): masks of up to 1/8 of the axis each suit 1-second clips better.
MASK_FRACTION = 1 / 8
N_MASKS = 2


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

    Notes
    -----
    Draws from the global torch generator of the batch's device, so a seeded
    run is repeatable and a resumed one (which restores that state) too.
    """

    def __init__(self, shape: tuple[int, int, int], *, specaugment: bool = False, time_shift: float = 0.0) -> None:
        super().__init__()
        _, f, t = shape
        self.time_shift = float(time_shift)
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


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018, arXiv:1710.09412) of a batch with a permutation of itself.

    Returns ``(mixed x, y, y of the partner, lam)``; the loss is
    ``lam * CE(out, y) + (1 - lam) * CE(out, y_partner)``.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0], device=x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
