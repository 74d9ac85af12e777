"""The machine a store or run is made on: which device computes, at what precision, with which software."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from spectro._version import __version__
from spectro.errors import SpectroError

__all__ = ["select_device", "versions", "Precision", "cpu_has_fast_bf16", "choose_precision", "free_memory",
           "host_memory", "cpu_features"]


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
    # Imported here, not at the top: only stores and runs record these versions, and librosa
    # alone adds about a second to every import of spectro.utils.device (the CLI's start-up).
    import librosa
    import numpy
    import sklearn
    import soundfile
    import torchaudio

    out: dict[str, Any] = {"spectro": __version__, "python": platform.python_version(), "torch": torch.__version__,
                           "torchaudio": torchaudio.__version__, "librosa": librosa.__version__,
                           "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
                           "soundfile": soundfile.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name()
    return out


def cpu_has_fast_bf16() -> bool:
    """True when bf16 autocast trains faster than float32 on this CPU: it has AMX tiles.

    AVX-512 BF16 alone is not enough. Measured on such a CPU (2 cores, no AMX:
    the CI machine), resnet18 on 32 x 1 x 64 x 101 trains at 0.75-0.8x the
    float32 rate under bf16 autocast + channels_last: oneDNN's bf16 convolution
    backward is no faster than float32 there, and the casts come on top.
    """
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(amx and amx())


@dataclass(frozen=True)
class Precision:
    """How a step computes: autocast dtype (None: float32), GradScaler, memory format."""

    dtype: Optional[torch.dtype] = None
    scaler: bool = False
    channels_last: bool = False

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def describe(self) -> str:
        extra = " + GradScaler" if self.scaler else ""
        return f"{self.name}{extra}{', channels_last' if self.channels_last else ''}"


def choose_precision(
    device_type: str,
    amp: Optional[bool] = None,
    channels_last: Optional[bool] = None,
    *,
    cuda_bf16: Optional[bool] = None,
    cpu_fast_bf16: Optional[bool] = None,
) -> Precision:
    """The mixed-precision policy.

    Parameters
    ----------
    device_type : {"cuda", "mps", "cpu"}
    amp : bool or None
        None: on wherever it pays (any CUDA GPU; MPS; a CPU with AMX, see
        :func:`cpu_has_fast_bf16`). True forces it on (bf16 autocast on any
        CPU); False is float32.
    channels_last : bool or None
        None: on with CUDA, with mixed precision (oneDNN's bf16 kernels want
        NHWC) and on the CPU (a few per cent faster in float32 too).
    cuda_bf16, cpu_fast_bf16 : bool or None
        Capabilities; None asks this machine (parameters for tests).

    Returns
    -------
    Precision
        bf16 autocast where the hardware has bf16 (its float32 range needs
        no loss scaling); fp16 with a GradScaler on older GPUs.
    """
    if device_type == "cuda":
        supported = True
        if cuda_bf16 is None:
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        dtype, scaler = (torch.bfloat16, False) if cuda_bf16 else (torch.float16, True)
    elif device_type == "mps":
        supported, dtype, scaler = True, torch.bfloat16, False
    else:
        supported = cpu_has_fast_bf16() if cpu_fast_bf16 is None else cpu_fast_bf16
        dtype, scaler = torch.bfloat16, False
    on = supported if amp is None else amp
    if channels_last is None:
        channels_last = device_type in ("cuda", "cpu") or on
    return Precision(dtype if on else None, scaler and on, bool(channels_last))


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes free on ``device`` now (CUDA: the driver's count; CPU: the kernel's MemAvailable), None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "recommended_max_memory"):
            return max(int(mps.recommended_max_memory()) - int(mps.driver_allocated_memory()), 0)
        return None
    return host_memory()[0]


def host_memory() -> tuple[Optional[int], Optional[int]]:
    """(available, total) bytes of this machine's memory, from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            fields = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f if ":" in line)}
    except (OSError, ValueError):
        return None, None
    return fields.get("MemAvailable"), fields.get("MemTotal")


def cpu_features() -> dict[str, Any]:
    """The CPU's name, the cores this process may use, and the vector and matrix units torch can use."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine(), platform.processor()):
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"name": name, "cores": os.cpu_count(), "usable_cores": usable,
            "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "amx": cpu_has_fast_bf16(), "torch_capability": torch.backends.cpu.get_cpu_capability()}
