"""Feature defaults read from the data: rate, STFT sizes and clip length that fit the recordings.

A default that throws information away (upsampling 8 kHz speech to 16 kHz
and filling the upper mel bands with the floor, or cropping 3-second notes
to their loudest second) costs accuracy before any model sees the data.
So ``preprocess`` looks at the sources first and, for every setting the
user did not give, takes:

* ``sample_rate``: the sources' most common rate, capped at 16 kHz (never
  upsampled; higher rates are downsampled, as the field does);
* ``n_fft``: about 32 ms at that rate, rounded to a power of two;
* ``hop_length``: 10 ms, so a time column means the same at any rate;
* ``duration``: the 95th percentile of the clip lengths, capped at 10 s.

The choices and their reasons are printed in one line and recorded in the
store's config.json. An explicit value always wins.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np
import soundfile as sf

from spectro.config import (
    INFERRED_HOP_SECONDS,
    INFERRED_MAX_DURATION,
    INFERRED_MAX_RATE,
    INFERRED_WINDOW_SECONDS,
    FeatureConfig,
)
from spectro.signals.pictures import detect_colormap, is_picture, picture_size
from spectro.signals.sources import Item

__all__ = ["INFERABLE", "infer_config", "infer_image_config", "describe"]

INFERABLE = FeatureConfig.INFERABLE
_SAMPLE = 2000  # files whose headers are read: enough for a percentile, quick on any corpus


def infer_config(items: Sequence[Item], config: FeatureConfig, fields: Iterable[str],
                 *, seed: int = 0) -> tuple[FeatureConfig, dict[str, str]]:
    """``config`` with ``fields`` (a subset of :data:`INFERABLE`) read from the headers of ``items``' files.

    Returns
    -------
    config : FeatureConfig
    reasons : dict
        ``field -> why``, for each field that was set (to print and to record).
        Arrays (.npy/.npz) have no header: with no audio file to read, nothing changes.
    """
    fields = [f for f in INFERABLE if f in set(fields)]
    rates, seconds = _headers(items, seed)
    changes: dict = {}
    reasons: dict[str, str] = {}
    if "sample_rate" in fields and rates:
        common, n = Counter(rates).most_common(1)[0]
        rate = min(common, INFERRED_MAX_RATE)
        changes["sample_rate"] = rate
        why = f"{n}/{len(rates)} files at {common} Hz"
        reasons["sample_rate"] = why + (f", capped at {INFERRED_MAX_RATE}" if common > INFERRED_MAX_RATE else "")
    rate = changes.get("sample_rate", config.sample_rate)
    if "n_fft" in fields:
        changes["n_fft"] = 2 ** int(round(math.log2(INFERRED_WINDOW_SECONDS * rate)))
        reasons["n_fft"] = f"~{INFERRED_WINDOW_SECONDS * 1000:.0f} ms at {rate} Hz"
    if "hop_length" in fields:
        changes["hop_length"] = max(1, int(round(INFERRED_HOP_SECONDS * rate)))
        reasons["hop_length"] = f"{INFERRED_HOP_SECONDS * 1000:.0f} ms at {rate} Hz"
    if "duration" in fields and seconds and config.window is None:
        p95 = float(np.percentile(seconds, 95))
        # One decimal, never shorter than one STFT frame.
        n_fft = changes.get("n_fft", config.n_fft)
        duration = max(round(min(p95, INFERRED_MAX_DURATION), 1), math.ceil(10 * n_fft / rate) / 10)
        changes["duration"] = duration
        reasons["duration"] = f"95th percentile of {len(seconds)} clip lengths {p95:.2f} s" + (
            f", capped at {INFERRED_MAX_DURATION:g}" if p95 > INFERRED_MAX_DURATION else "")
    if changes.get("n_fft") is not None and config.win_length is not None and config.win_length > changes["n_fft"]:
        changes["win_length"] = None  # a window longer than the new FFT cannot be; use the FFT size
    return config.replace(**changes), reasons


def _headers(items: Sequence[Item], seed: int) -> tuple[list[int], list[float]]:
    """Sample rates and durations of (a seeded sample of) the audio files among ``items``."""
    files = sorted({it.path for it in items if it.key is None and it.rate is None})
    if len(files) > _SAMPLE:
        pick = np.random.default_rng(seed).choice(len(files), size=_SAMPLE, replace=False)
        files = [files[i] for i in sorted(pick)]
    rates, seconds = [], []
    given = {it.file: it.rate for it in items if it.rate is not None}  # a manifest's rate column
    rates.extend(given.values())
    for path in files:
        info = _info(path)
        if info is not None and info.samplerate > 0 and info.frames > 0:
            rates.append(int(info.samplerate))
            seconds.append(info.frames / info.samplerate)
    return rates, seconds


def _info(path: str) -> Optional["sf._SoundFileInfo"]:
    try:
        return sf.info(path)
    except Exception:  # noqa: BLE001 - unreadable files are preprocess's to report, not ours
        return None


def infer_image_config(items: Sequence[Item], config: FeatureConfig, *,
                       sample: int = 8) -> tuple[FeatureConfig, dict[str, str]]:
    """A store of images made elsewhere: its colormap and image size read from the data where not given.

    The colormap is the one that explains the first ``sample`` pictures best
    (:func:`spectro.signals.pictures.detect_colormap`); the size is the first
    readable image's (after ``crop_box``): images of another size are then
    refused, unless ``config.resize`` (``--image-size``) resizes them.
    """
    changes: dict = {}
    reasons: dict[str, str] = {}
    pictures = [it.path for it in items if it.key is None and is_picture(it.path)]
    if config.colormap is None and pictures:
        name, why = detect_colormap(pictures[:sample], config.crop_box)
        if name is not None:
            changes["colormap"], reasons["colormap"] = name, why
    if config.image_size is None:
        step = max(1, len(items) // 64)  # a spread sample: the first files may be the odd ones
        sizes = Counter(size for it in items[::step][:64]
                        if (size := picture_size(it.path, config.crop_box) if it.key is None and is_picture(it.path)
                            else _array_size(it)) is not None)
        if sizes:
            (size, n), total = sizes.most_common(1)[0], sum(sizes.values())
            changes["image_size"] = size
            reasons["image_size"] = (f"{n} of {total} sampled images; images of another size are refused "
                                     "(--image-size FxT resizes them)")
    return config.replace(**changes), reasons


def _array_size(it: Item) -> Optional[tuple[int, int]]:
    """``(F, T)`` of an image in a .npy/.npz file, None if unreadable or not 2-D."""
    try:
        if it.path.lower().endswith(".npy"):
            shape = np.load(it.path, mmap_mode="r", allow_pickle=False).shape
        else:
            with np.load(it.path, allow_pickle=False) as z:
                name = (it.key or ("", None))[0] or z.files[0]
                shape = z[name].shape
    except Exception:  # noqa: BLE001 - unreadable files are preprocess's to report
        return None
    shape = shape[1:] if (it.key or ("", None))[1] is not None else shape
    return (int(shape[0]), int(shape[1])) if len(shape) == 2 else None


def describe(reasons: dict[str, str], config: FeatureConfig) -> str:
    """One line: each inferred setting, its value and why."""
    def shown(k: str) -> str:
        v = getattr(config, k)
        return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)
    return "from the data: " + "; ".join(f"{k}={shown(k)} ({why})" for k, why in reasons.items())
