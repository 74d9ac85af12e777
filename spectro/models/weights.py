"""Safe loading of network weights, and adaptation of ImageNet checkpoints.

Weights are only ever read with ``torch.load(weights_only=True)``: its
unpickler accepts tensors and plain containers and refuses any other global,
so a checkpoint cannot run code on load (a plain ``pickle.load`` would run
whatever ``__reduce__`` asks for).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spectro.errors import SpectroError
from spectro.utils.files import write_bytes

__all__ = ["load_state_dict_file", "save_tensors", "check_finite_weights", "adapt_input_conv", "load_pretrained"]

# Wrappers that training scripts commonly put around a state_dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict saved with ``torch.save``, never executing code.

    Parameters
    ----------
    path : str or Path
        A ``.pt``/``.pth`` file holding a state_dict, or a dict wrapping one
        under ``"state_dict"``, ``"model"`` or ``"model_state_dict"``. A
        ``"module."`` prefix (left by DistributedDataParallel) is removed.

    Returns
    -------
    dict of str to torch.Tensor
        On the CPU.

    Raises
    ------
    SpectroError
        If the file is missing, is not a torch checkpoint, asks to run code
        (any global outside torch's weights-only allow-list), holds no
        state_dict, or holds a NaN or infinite weight (see
        :func:`check_finite_weights`).
    """
    path = Path(path)
    if not path.is_file():
        raise SpectroError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a usable checkpoint"
        raise SpectroError(
            f"refusing to load {path}: not a weights-only torch checkpoint ({_reason(exc)})"
        ) from exc
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise SpectroError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    check_finite_weights(obj, path)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def save_tensors(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically; a failed write is an OSError naming ``path``, and leaves no file.

    Serialised in memory first: torch's own file writer turns a full disk into
    a RuntimeError without the cause (and leaves the partial file), where a
    plain write gives the OSError (ENOSPC, EROFS, ...) a user can act on.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(str(path), buffer.getbuffer())


def check_finite_weights(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Refuse a state_dict with a NaN or infinite value, naming the file and the first bad tensor.

    Such weights give NaN probabilities (a label chosen by argmax over NaN)
    or a resumed run that diverges at once; refusing them on load stops the
    work before it starts, wherever weights are read (evaluate, predict,
    export, resume, a pretrained start).

    Raises
    ------
    SpectroError
        "PATH holds non-finite weights (NaN or Inf) in NAME ...".
    """
    bad = [k for k, v in state.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
        raise SpectroError(f"{path} holds non-finite weights (NaN or Inf) in {bad[0]}{more}: refusing to use "
                           "it; the file is damaged or was saved from a diverged run, train again")


def _reason(exc: Exception) -> str:
    """The informative line of a torch.load error (e.g. the blocked GLOBAL), not its advice."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "unsupported" in line.lower()]
    return (specific or lines or [type(exc).__name__])[0]


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-conv kernel trained on RGB to ``in_channels`` input channels.

    Parameters
    ----------
    weight : torch.Tensor [shape=(out, 3, kh, kw)]
    in_channels : int

    Returns
    -------
    torch.Tensor [shape=(out, in_channels, kh, kw)]
        For one channel the RGB kernels are summed, so a grey image gives the
        response the RGB net gives to that image repeated in R, G and B (the
        convolution is linear). For other counts the kernels are tiled and
        scaled by 3 / in_channels to keep the activation scale; both are
        timm's ``adapt_input_conv``.
    """
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(in_channels / weight.shape[1])
    tiled = weight.repeat(1, repeat, 1, 1)[:, :in_channels]
    return tiled * (weight.shape[1] / in_channels)


def load_pretrained(
    model: nn.Module, path: str | Path, *, first_conv: str = "conv1", classifier: str = "fc"
) -> None:
    """Load a local checkpoint into ``model`` in place, adapting its ends.

    Parameters
    ----------
    model : nn.Module
        Freshly built; its first conv and classifier may differ in size from
        the checkpoint's.
    path : str or Path
        The checkpoint (see :func:`load_state_dict_file`); nothing downloads.
    first_conv, classifier : str
        Module names of the first convolution and of the final linear layer.

    Warns
    -----
    UserWarning
        When the checkpoint's classifier has another size: it is left at its
        fresh initialisation, to be trained.

    Raises
    ------
    SpectroError
        If the checkpoint is unreadable or any other tensor does not fit.
    """
    state = load_state_dict_file(path)
    own = model.state_dict()
    conv_key = f"{first_conv}.weight"
    if conv_key in state and conv_key in own and state[conv_key].dim() == 4:
        state[conv_key] = adapt_input_conv(state[conv_key], own[conv_key].shape[1])
    head = [k for k in own if k.startswith(f"{classifier}.")]
    if any(k not in state or state[k].shape != own[k].shape for k in head):
        old = state.get(f"{classifier}.weight")
        found = "no classifier" if old is None else f"{old.shape[0]} classes"
        warnings.warn(
            f"{Path(path).name}: classifier {classifier!r} re-initialised (checkpoint has "
            f"{found}, model has {own[f'{classifier}.weight'].shape[0]}); train it before use",
            UserWarning,
            stacklevel=2,
        )
        for k in head:
            state.pop(k, None)
    bad = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    missing = sorted(own.keys() - state.keys() - set(head))
    unexpected = sorted(state.keys() - own.keys())
    if bad or missing or unexpected:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("shape mismatch", sorted(bad)), ("missing", missing),
                                ("unexpected", unexpected))
            if keys
        )
        raise SpectroError(f"checkpoint {path} does not fit {type(model).__name__}: {detail}")
    model.load_state_dict(state, strict=False)
