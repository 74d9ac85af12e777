"""Batched STFT images in torch, on the CPU or a GPU.

The pure functions do the maths (:func:`filterbank`, :func:`power_to_db`, :func:`pcen`); the
thin :class:`SpectrogramImage` module stores the window and filterbank as
buffers and delegates, in the manner of torchaudio's transforms. The result
agrees with librosa (``stft``, ``feature.melspectrogram``, ``power_to_db``, ``pcen``) on
the same signal: see tests/signals/test_features.py for the tolerances.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import librosa
import numpy as np
import torch
import torchaudio
from torch import nn

from spectro.config import FeatureConfig
from spectro.errors import SpectroError

__all__ = ["SpectrogramImage", "filterbank", "frequencies", "power_to_db", "pcen", "compute_images"]

# Peak amplitude x n_fft below which a float32 power spectrum cannot overflow:
# |STFT| <= peak * n_fft, so power <= 1e30, far below float32's 3.4e38.
_FLOAT32_SAFE = 1e15

_WINDOW_FNS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
    "rectangular": torch.ones,
}


def filterbank(cfg: FeatureConfig) -> Optional[torch.Tensor]:
    """The frequency filterbank of ``cfg``, or ``None`` for the linear scale.

    Returns
    -------
    fb : torch.Tensor [shape=(n_fft // 2 + 1, n_mels), dtype=float32]
        ``mel``: torchaudio's Slaney-normalised Slaney-scale filters, the same
        as ``librosa.filters.mel(htk=False, norm="slaney").T``. ``log``:
        triangular filters whose edges are log-spaced between ``fmin`` and
        ``fmax`` (each at least one FFT bin wide on either side), area-
        normalised like the Slaney mel filters. (Hand-written:
        neither torchaudio nor librosa ships a log-spaced triangular bank.)
    """
    n_freqs = cfg.n_fft // 2 + 1
    if cfg.freq_scale == "linear":
        return None
    if cfg.freq_scale == "mel":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchaudio's own empty-filter warning; ours below is an error
            fb = torchaudio.functional.melscale_fbanks(
                n_freqs, cfg.f_low, cfg.f_high, cfg.n_mels, cfg.sample_rate, norm="slaney", mel_scale="slaney"
            )
    else:
        edges = _log_edges(cfg)
        bins = np.linspace(0, cfg.sample_rate / 2, n_freqs)[:, None]  # (n_freqs, 1)
        lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
        # Low bands are narrower than one FFT bin; widen each triangle to at
        # least one bin either side so that it interpolates instead of
        # falling between bins (which would leave an empty, constant row).
        df = cfg.sample_rate / cfg.n_fft
        lo, hi = np.minimum(lo, mid - df), np.maximum(hi, mid + df)
        rise = (bins - lo) / (mid - lo)
        fall = (hi - bins) / (hi - mid)
        tri = np.maximum(0.0, np.minimum(rise, fall)) * (2.0 / (hi - lo))  # (n_freqs, n_mels)
        fb = torch.from_numpy(tri.astype(np.float32))
    empty = torch.nonzero(fb.max(dim=0).values == 0).flatten().tolist()
    if empty:
        # An empty band is a constant row in every image: refused rather than stored.
        raise SpectroError(
            f"{len(empty)} of {cfg.n_mels} {cfg.freq_scale} bands are empty (bands {_ranges(empty)}, counted "
            f"from 0): they fall between the FFT bins of n_fft={cfg.n_fft}; use a larger n_fft, fewer bands "
            f"or a higher fmin"
        )
    return fb


def _ranges(ids: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (the middle elided past 8 ranges)."""
    parts, start = [], ids[0]
    for prev, cur in zip(ids, ids[1:] + [None]):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = cur
    if len(parts) > 8:  # one readable line
        parts = parts[:6] + ["...", parts[-1]]
    return ", ".join(parts)


def frequencies(cfg: FeatureConfig) -> np.ndarray:
    """Centre frequency in Hz of each image row (for plot axes)."""
    if cfg.freq_scale == "linear":
        return np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    if cfg.freq_scale == "mel":
        return librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.f_low, fmax=cfg.f_high)[1:-1]
    return _log_edges(cfg)[1:-1]


def _log_edges(cfg: FeatureConfig) -> np.ndarray:
    return np.geomspace(max(cfg.f_low, 1e-3), cfg.f_high, cfg.n_mels + 2)


def power_to_db(
    spec: torch.Tensor, *, multiplier: float = 10.0, amin: float = 1e-10, top_db: Optional[float] = 80.0
) -> torch.Tensor:
    """Decibels of a batch of spectrograms, as :func:`librosa.power_to_db` with ``ref=1``.

    Parameters
    ----------
    spec : torch.Tensor [shape=(batch, ..., freq, time)]
        Non-negative power (``multiplier=10``) or magnitude (``multiplier=20``).
    top_db : float or None
        Each example is floored at its own peak minus ``top_db``.
    """
    db = multiplier * torch.log10(torch.clamp(spec, min=amin))
    if top_db is not None:
        peak = db.flatten(1).amax(dim=1).view(-1, *([1] * (db.dim() - 1)))  # (batch, 1, ...)
        db = torch.maximum(db, peak - top_db)
    return db


def pcen(
    spec: torch.Tensor,
    *,
    sample_rate: float,
    hop_length: int,
    gain: float = 0.98,
    bias: float = 2.0,
    power: float = 0.5,
    time_constant: float = 0.400,
    eps: float = 1e-6,
    scale: float = 2.0**31,
) -> torch.Tensor:
    """Per-channel energy normalisation of a batch, as :func:`librosa.pcen` of ``spec * scale``.

    Each band ``E`` is divided by a smoothed copy of itself, ``M[t] = (1 - b)
    M[t - 1] + b E[t]``, to the power ``gain`` (an automatic gain control per
    band), then compressed: ``(E / (eps + M)**gain + bias)**power - bias**power``.
    A constant gain on the signal thus cancels but for ``(eps + M)**(1 - gain)``.

    Parameters
    ----------
    spec : torch.Tensor [shape=(batch, F, T)]
        Non-negative power spectrograms (``|STFT|**2``, mel or not).
    sample_rate, hop_length
        Frames per second of ``spec``: they set the smoother's ``b`` from
        ``time_constant`` exactly as librosa does, ``b = (sqrt(1 + 4 t**2) - 1)
        / (2 t**2)`` with ``t = time_constant * sample_rate / hop_length``.
    gain, bias, power, time_constant, eps : float
        As :func:`librosa.pcen`, with its defaults.
    scale : float
        ``spec`` is treated as ``spec * scale``. librosa recommends ``2**31``
        for signals in [-1, 1] (the level of 32-bit integer samples, for which
        its defaults were tuned); spectro reads audio as floats in [-1, 1], so
        that is the default. The product is never formed (float32 could
        overflow on it): the scale enters the formula analytically.

    Returns
    -------
    torch.Tensor [shape=(batch, F, T)]
        ``librosa.pcen(spec * scale, sr=sample_rate, hop_length=hop_length,
        ...)`` along the last axis, including librosa's initial state of the
        smoother (``scipy.signal.lfilter_zi``: ``M[-1] = 1`` in scaled units,
        not the first frame).
    """
    t_frames = time_constant * sample_rate / hop_length
    b = (math.sqrt(1 + 4 * t_frames**2) - 1) / (2 * t_frames**2)
    # The smoother, time-major so each step is one contiguous slice (a Python loop over a few hundred
    # frames is many times faster than torchaudio's lfilter on the CPU). M is in units of spec, not
    # spec * scale, so librosa's M[-1] = 1 is 1 / scale here.
    frames = spec.movedim(-1, 0)
    smooth = torch.empty_like(frames)
    m = torch.full_like(frames[0], 1.0 / scale)
    for t in range(frames.shape[0]):
        m = torch.lerp(m, frames[t], b)  # (1 - b) m + b E[t]
        smooth[t] = m
    smooth = smooth.movedim(0, -1)
    # E' / (eps + M')**gain with E' = scale E, M' = scale M, without forming the (overflowing) products.
    ratio = spec * (smooth + eps / scale).pow(-gain) * scale ** (1 - gain)
    if power == 0:
        return torch.log1p(ratio)
    if bias == 0:
        return ratio.pow(power)
    return bias**power * torch.expm1(power * torch.log1p(ratio / bias))


class SpectrogramImage(nn.Module):
    """Signals ``(batch, samples)`` to images ``(batch, 1, F, T)`` for a :class:`FeatureConfig`.

    Calls :func:`torch.stft` directly rather than torchaudio's ``Spectrogram``:
    that transform squares the magnitude with ``abs().pow(2)``, which costs
    three times ``real**2 + imag**2`` on a CPU and was the slowest step of
    preprocessing. The result is the same (tests/signals/test_features.py).
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        win_length = cfg.win_length or cfg.n_fft
        self.register_buffer("window", _WINDOW_FNS[cfg.window_fn](win_length), persistent=False)
        fb = filterbank(cfg)
        self.register_buffer("fb", fb.T.contiguous() if fb is not None else torch.empty(0), persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        window, fb = self.window, self.fb
        if waves.numel() and float(waves.abs().amax()) * cfg.n_fft > _FLOAT32_SAFE:
            # Finite but huge samples (a float WAV can hold 1e38) overflow a float32
            # power spectrum to inf, and inf * 0 in the filterbank to NaN; float64
            # holds their power exactly enough, and their dB values fit any image.
            waves, window, fb = waves.double(), window.double(), fb.double()
        stft = torch.stft(
            waves, cfg.n_fft, cfg.hop_length, cfg.win_length, window=window, center=cfg.center,
            pad_mode="constant",  # librosa >= 0.10 pads with zeros too
            return_complex=True,
        )  # (batch, n_fft // 2 + 1, T)
        spec = stft.real.square() + stft.imag.square()
        if cfg.power == 1.0:
            spec = spec.sqrt()
        if fb.numel():
            spec = torch.matmul(fb, spec)  # (F, n_fft // 2 + 1) @ (batch, n_fft // 2 + 1, T) -> (batch, F, T)
        if cfg.compression == "pcen":
            spec = pcen(spec, sample_rate=cfg.sample_rate, hop_length=cfg.hop_length)
        elif cfg.db:
            if cfg.power == 2.0:
                spec = power_to_db(spec, multiplier=10.0, amin=1e-10, top_db=cfg.top_db)
            else:
                spec = power_to_db(spec, multiplier=20.0, amin=1e-5, top_db=cfg.top_db)
        return spec.to(self.window.dtype).unsqueeze(1)  # (batch, 1, F, T)


def compute_images(
    segs: np.ndarray,
    extractor: SpectrogramImage,
    *,
    batch_size: int = 32,
    dtype: np.dtype = np.float16,
) -> np.ndarray:
    """Run ``extractor`` over ``segs`` ``(n, samples)`` in batches; returns ``(n, 1, F, T)``.

    Batches of 32 one-second signals keep the STFT's working set in cache:
    per clip they run twice as fast on a CPU as batches of 256.
    """
    device = extractor.fb.device
    out = np.empty((segs.shape[0], *extractor.cfg.image_shape), dtype=dtype)
    with torch.inference_mode():
        for i in range(0, segs.shape[0], batch_size):
            x = torch.from_numpy(np.ascontiguousarray(segs[i : i + batch_size])).to(device, non_blocking=True)
            with np.errstate(over="ignore"):  # beyond float16 becomes inf: preprocess skips such images, named
                out[i : i + x.shape[0]] = extractor(x).cpu().numpy()
    return out
