"""What this machine offers a training run: ``spectro doctor``.

One report of the CPU (cores, AVX-512, AVX-512 BF16, AMX), the accelerators
(CUDA devices and their memory, Apple MPS), what ``train`` would choose here
by default (device, precision, where the images are fed from) and the
software versions, so a figure can always say on what it was measured.
"""

from __future__ import annotations

from typing import Any

import torch

from spectro.dataset.feed import RESIDENT_SHARE
from spectro.utils.device import choose_precision, cpu_features, free_memory, host_memory, select_device, versions

__all__ = ["system_report", "format_system_report"]


def system_report(device: str = "auto") -> dict[str, Any]:
    """The machine, its devices and the defaults ``train`` takes on ``device`` here (a JSON-ready dict)."""
    available, total = host_memory()
    cuda = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            cuda.append({"index": i, "name": p.name, "memory": int(p.total_memory),
                         "free": free_memory(torch.device("cuda", i)), "capability": f"{p.major}.{p.minor}",
                         "bf16": bool(torch.cuda.is_bf16_supported())})
    mps = getattr(torch.backends, "mps", None)
    chosen = select_device(device)
    precision = choose_precision(chosen.type)
    free = free_memory(chosen)
    return {
        "cpu": cpu_features(),
        "memory": {"available": available, "total": total},
        "cuda": cuda,
        "mps": bool(mps and mps.is_available()),
        "train": {
            "device": str(chosen),
            "precision": precision.describe(),
            "data": (f"resident on {chosen} when the training rows take at most {RESIDENT_SHARE:.0%} of its "
                     f"{_gib(free)} free, else the memory-map loader"
                     + (" with pinned memory" if chosen.type == "cuda" else "")),
            "threads": torch.get_num_threads(),
        },
        "versions": versions(),
    }


def format_system_report(report: dict[str, Any]) -> str:
    """``report`` as the screen ``spectro doctor`` prints."""
    cpu, mem, tr = report["cpu"], report["memory"], report["train"]
    units = [name for name, on in (("AVX-512", cpu["avx512"]), ("AVX-512 BF16", cpu["avx512_bf16"]),
                                   ("AMX", cpu["amx"])) if on]
    lines = [
        f"cpu        {cpu['name']}, {cpu['usable_cores']} of {cpu['cores']} cores usable; "
        f"{', '.join(units) or 'no AVX-512'} (torch kernels: {cpu['torch_capability']})",
        f"memory     {_gib(mem['available'])} available of {_gib(mem['total'])}",
    ]
    if report["cuda"]:
        for d in report["cuda"]:
            lines.append(f"cuda:{d['index']}     {d['name']}, {_gib(d['memory'])} ({_gib(d['free'])} free), "
                         f"compute {d['capability']}{', bf16' if d['bf16'] else ''}")
    else:
        lines.append("cuda       none" + (f" (torch {torch.version.cuda} build)" if torch.version.cuda else ""))
    lines.append(f"mps        {'available' if report['mps'] else 'none'}")
    lines += [
        f"train      on {tr['device']}, {tr['precision']}, {tr['threads']} threads",
        f"data       {tr['data']}",
        "versions   " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if k != "platform"),
        f"platform   {report['versions'].get('platform', '?')}",
    ]
    return "\n".join(lines)


def _gib(n: Any) -> str:
    return "unknown" if n is None else f"{n / 2**30:.1f} GiB"
