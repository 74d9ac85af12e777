"""Small synthetic signals and sources for the tests (nothing downloads)."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from spectro.config import FeatureConfig

#: The repository root and the bundled spoken digits (data/digits).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(REPO, "data", "digits")

TINY_CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)  # 1 x 32 x 32


def tone(freq: float, *, sr: int = 16000, seconds: float = 1.0, amp: float = 0.5, noise: float = 0.0,
         seed: int = 0) -> np.ndarray:
    """A sine at ``freq`` Hz plus optional white noise, float32 (n,)."""
    t = np.arange(int(round(sr * seconds))) / sr
    y = amp * np.sin(2 * np.pi * freq * t)
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(t.shape)
    return y.astype(np.float32)


def chirp(f0: float, f1: float, *, sr: int = 16000, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amp * np.sin(phase)).astype(np.float32)


def class_folders(root, *, classes=("low", "mid", "high"), per_class: int = 6, sr: int = 16000,
                  seconds: float = 0.5, fmt: str = "WAV", ext: str = ".wav") -> str:
    """Write ``root/<class>/<class>_<k>.wav``: tones whose pitch depends on the class."""
    base = {c: 300.0 * (2 ** i) for i, c in enumerate(classes)}
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for k in range(per_class):
            y = tone(base[c] * (1 + 0.03 * k), sr=sr, seconds=seconds, noise=0.02, seed=k)
            sf.write(os.path.join(root, c, f"{c}_{k}{ext}"), y, sr, format=fmt)
    return str(root)


def tiny_store(root) -> str:
    """3 classes x 12 tone files, 5 folds, images 1 x 32 x 32: ``root/store``."""
    from spectro.signals.preprocess import preprocess

    src = class_folders(os.path.join(root, "src"), per_class=12, sr=8000)
    preprocess(src, os.path.join(root, "store"), config=TINY_CFG, workers=0, progress=False)
    return os.path.join(root, "store")


#: The compare tests' feature settings: 1 x 32 x 32 images of the digits.
DIGITS_CFG_KW = dict(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)
DIGITS_VOICES = ("croak", "f1", "m2", "klatt", "steph", "grandpa")


def digits_subset(root, digits="01234", voices=DIGITS_VOICES, takes="01") -> str:
    """A folder of symlinks to the bundled digits: these digits, voices and takes."""
    os.makedirs(root)
    for name in sorted(os.listdir(DIGITS)):
        d, v, k = name[:-5].split("_")
        if d in digits and v in voices and k in takes:
            os.symlink(os.path.abspath(os.path.join(DIGITS, name)), os.path.join(root, name))
    return str(root)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has exited): /proc where there is one, else ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # the state, after the (command name)
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
