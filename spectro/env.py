"""The machine a store or run is made on: which device computes, which software did it."""

from __future__ import annotations

import platform
from typing import Any, Sequence

import torch

from .errors import SpectroError

__all__ = ["select_device", "versions"]


def select_device(name: Any = "auto", *, local_rank: int = 0,
                  kinds: Sequence[str] = ("cuda", "mps", "cpu")) -> torch.device:
    """The torch device for ``name``: ``auto`` takes the first of ``kinds`` present.

    ``auto`` means CUDA (GPU ``local_rank``: one per torchrun process), then
    Apple MPS, then the CPU. An explicit device that is not there, or not in
    ``kinds``, is a :class:`SpectroError`.
    """
    name = str(name)
    mps = getattr(torch.backends, "mps", None)
    present = {"cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available()), "cpu": True}
    if name == "auto":
        kind = next(k for k in (*kinds, "cpu") if present[k])
        return torch.device("cuda", local_rank) if kind == "cuda" else torch.device(kind)
    kind = name.split(":")[0]
    if kind not in kinds:
        raise SpectroError(f"unknown device {name!r}; use auto, {', '.join(kinds)}")
    if kind == "cuda":
        if not present["cuda"]:
            raise SpectroError(f"--device {name}: no CUDA device is available (use --device auto or cpu)")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank)
    if kind == "mps" and not present["mps"]:
        raise SpectroError("--device mps: no Apple MPS device is available (use --device auto or cpu)")
    return torch.device(kind)


def versions() -> dict[str, Any]:
    """Versions of the software (and GPU) a store or run was made with."""
    import librosa
    import numpy
    import sklearn
    import soundfile
    import torchaudio

    from . import __version__

    out: dict[str, Any] = {"spectro": __version__, "python": platform.python_version(), "torch": torch.__version__,
                           "torchaudio": torchaudio.__version__, "librosa": librosa.__version__,
                           "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
                           "soundfile": soundfile.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name()
    return out
