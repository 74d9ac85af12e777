"""Export a trained run to ONNX, verified against PyTorch (or scikit-learn) on the same inputs.

The graph takes the *normalised* image ``(batch, 1, F, T)`` and returns
``logits`` and ``probabilities`` ``(batch, C)``. Everything before it
(decoding, resampling, cropping, STFT, mel, dB, normalisation) stays outside
the graph and is written, with its numbers, into a sidecar JSON
(``model.onnx.json``) so that another program can reproduce it; the README's
"export" section spells the steps out.

The batch axis is always dynamic; the time axis is dynamic when the network
accepts other widths (the ResNets and the CNN end in adaptive pooling). After
writing, ONNX Runtime and PyTorch run the same random inputs, and the export
fails when they differ by more than ``tolerance`` (1e-4).

The SVM pipeline goes through skl2onnx (see :mod:`spectro.inference.export_svm`); its
graph outputs ``label`` and ``probabilities`` and is checked against
scikit-learn the same way, at the fitted image shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spectro.config import FeatureConfig
from spectro.errors import SpectroError
from spectro.inference.export_svm import svm_to_onnx
from spectro.training.run import load_run
from spectro.utils.device import versions
from spectro.utils.files import write_json

__all__ = ["export_onnx", "ExportResult", "preprocessing_steps", "ONNX_EXTRA"]

ONNX_EXTRA = "pip install 'spectro[onnx]'"
SIDECAR_FORMAT = "spectro-onnx-1"

@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and how closely ONNX Runtime matched the original (``against``)."""

    path: str
    sidecar: str
    max_abs_diff: float
    tolerance: float
    dynamic_time: bool
    checked: str  # the inputs compared, in words
    against: str = "PyTorch"  # or "scikit-learn"


class _WithProbabilities(nn.Module):
    """The network plus a softmax, so the graph gives both logits and probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(image)  # (batch, C)
        return logits, torch.softmax(logits, dim=1)


def export_onnx(run_dir: str, out: str, *, opset: int = 18, tolerance: float = 1e-4, seed: int = 0) -> ExportResult:
    """Write the run's network to ``out`` (ONNX) and ``out + ".json"``, and verify it.

    Parameters
    ----------
    run_dir : str
        A run of a network (``spectro train --model resnet18 ...``).
    out : str
        The .onnx file to write.
    opset : int
        ONNX opset version.
    tolerance : float
        Largest absolute difference allowed between ONNX Runtime and PyTorch
        (over logits and probabilities; probabilities alone for the SVM).
    seed : int
        Seeds the random test inputs.

    Raises
    ------
    SpectroError
        The onnx extra is missing, the exporter fails, or the check fails (the
        files are then removed).
    """
    onnx, ort = _import_onnx()
    run = load_run(run_dir, device="cpu")
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if hasattr(run.classifier, "module_"):
        reference, widths, outputs = _export_net(run, out, opset)
    else:
        reference, widths, outputs = _export_svm(run, out, opset)
    onnx.checker.check_model(out)
    against = "PyTorch" if "logits" in outputs else "scikit-learn"
    dynamic_time = len(widths) > 1
    channels, n_freq, n_frames = int(run.mean.shape[0]), run.feature_config.n_freq, run.feature_config.n_frames

    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    diff, checked = 0.0, []
    for batch in (1, 5):
        for width in widths:
            # Unit-variance noise plus a random level per frequency row: normalised images vary like that.
            x = (rng.standard_normal((batch, channels, n_freq, width))
                 + rng.standard_normal((batch, channels, n_freq, 1))).astype(np.float32)
            got = session.run(outputs, {"image": x})
            diff = max(diff, *(float(np.max(np.abs(a - b))) for a, b in zip(reference(x), got)))
            checked.append("x".join(map(str, x.shape)))
    sidecar = out + ".json"
    if not diff <= tolerance:
        os.remove(out)
        raise SpectroError(f"ONNX Runtime and {against} differ by {diff:.3g} (more than {tolerance:g}) on "
                           f"{', '.join(checked)}; nothing written")
    cfg = run.feature_config
    write_json(sidecar, {
        "format": SIDECAR_FORMAT,
        "model": run.train_config.model,
        "run": os.path.abspath(run_dir),
        "labels": list(run.labels),
        "input": {"name": "image", "dtype": "float32", "layout": "batch, channel, frequency, time",
                  "shape": ["batch", channels, n_freq, "time" if dynamic_time else n_frames],
                  "trained_shape": [channels, n_freq, n_frames], "dynamic_time": dynamic_time},
        "outputs": {"logits": ["batch", len(run.labels)], "probabilities": ["batch", len(run.labels)]}
        if "logits" in outputs else {"label": ["batch"], "probabilities": ["batch", len(run.labels)]},
        "feature_config": cfg.to_dict(),
        "normalisation": {"mean": run.mean.tolist(), "std": run.std.tolist(), "shape": "channel, frequency"},
        "preprocessing": preprocessing_steps(cfg),
        "opset": opset,
        "check": {"max_abs_diff": diff, "tolerance": tolerance, "inputs": checked},
        "versions": {**versions(), "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    })
    return ExportResult(out, sidecar, diff, tolerance, dynamic_time, ", ".join(checked), against)


def _export_net(run: Any, out: str, opset: int) -> tuple[Callable, list[int], list[str]]:
    """Write the run's network (plus a softmax) to ``out``; returns the PyTorch reference, widths, outputs."""
    cfg = run.feature_config
    net = run.classifier.module_.float().eval()
    model = _WithProbabilities(net).eval()
    channels, n_freq, n_frames = int(run.mean.shape[0]), cfg.n_freq, cfg.n_frames
    widths = _accepted_widths(net, channels, n_freq, n_frames)
    shapes = {0: torch.export.Dim("batch", min=1)}
    if len(widths) > 1:
        shapes[3] = torch.export.Dim("time", min=min(widths))
    try:
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(2, channels, n_freq, n_frames),), out, dynamo=True,
                              input_names=["image"], output_names=["logits", "probabilities"],
                              dynamic_shapes={"image": shapes}, opset_version=opset, verbose=False)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; one line says which
        raise SpectroError(f"torch.onnx.export failed for {run.train_config.model}: "
                           f"{(str(err).strip().splitlines() or [type(err).__name__])[0]}") from err

    def reference(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in model(torch.from_numpy(x))]

    return reference, widths, ["logits", "probabilities"]


def _export_svm(run: Any, out: str, opset: int) -> tuple[Callable, list[int], list[str]]:
    """Write the run's SVM pipeline to ``out``; returns the scikit-learn reference, widths, outputs."""
    with open(out, "wb") as f:
        f.write(svm_to_onnx(run.classifier, opset=opset).SerializeToString())
    # The pipeline checks the image shape it was fitted on: the time axis stays fixed.
    return (lambda x: [run.classifier.predict_proba(x)]), [run.feature_config.n_frames], ["probabilities"]


def preprocessing_steps(cfg: FeatureConfig) -> list[str]:
    """The exact steps from a raw file to the graph's input, with ``cfg``'s numbers filled in."""
    win_length = cfg.win_length or cfg.n_fft
    n = cfg.segment_samples
    if cfg.window is None:
        length = (f"crop/pad to {n} samples ({cfg.duration:g} s): a longer signal keeps "
                  + {"loudest": f"the {n}-sample stretch with the largest sum of squares (first such start; "
                                "running sum of y**2 in float64)",
                     "center": "its middle (start = (len - n) // 2)",
                     "start": "its first n samples"}[cfg.crop]
                  + "; a shorter one gets zeros " + ("at the end" if cfg.pad == "end" else
                                                     "on both sides (before = (n - len) // 2)"))
    else:
        hop = cfg.window_hop or cfg.window
        length = (f"cut into windows of {n} samples ({cfg.window:g} s) starting every {int(round(hop * cfg.sample_rate))} "
                  f"samples ({hop:g} s); a final partial window is kept, zero-padded, when at least half full; a "
                  f"signal shorter than one window gives one zero-padded window")
    if cfg.freq_scale == "mel":
        scale = (f"multiply by the Slaney mel filterbank: librosa.filters.mel(sr={cfg.sample_rate}, n_fft={cfg.n_fft}, "
                 f"n_mels={cfg.n_mels}, fmin={cfg.f_low:g}, fmax={cfg.f_high:g}, htk=False, norm='slaney') "
                 f"-> ({cfg.n_mels}, T)")
    elif cfg.freq_scale == "log":
        scale = (f"multiply by {cfg.n_mels} triangular filters on log-spaced centres from {cfg.f_low:g} to "
                 f"{cfg.f_high:g} Hz (spectro.signals.features.filterbank) -> ({cfg.n_mels}, T)")
    else:
        scale = f"keep the {cfg.n_fft // 2 + 1} linear frequency bins"
    if cfg.db:
        mult, amin = (10, "1e-10") if cfg.power == 2.0 else (20, "1e-5")
        floor = f", then floor at the image's maximum minus {cfg.top_db:g} dB" if cfg.top_db is not None else ""
        db = f"decibels: {mult} * log10(max(S, {amin})){floor} (librosa.power_to_db with ref=1.0)"
    else:
        db = "no decibels: linear units"
    return [
        "decode the file to float32 and average the channels to mono",
        f"resample to {cfg.sample_rate} Hz with soxr, quality 'HQ' (soxr.resample(y, sr, {cfg.sample_rate}, "
        f"quality='HQ'); what librosa.load uses)",
        f"reject NaN/Inf samples, signals shorter than {cfg.n_fft} samples and all-zero signals",
        length,
        f"STFT of each segment: n_fft={cfg.n_fft}, hop_length={cfg.hop_length}, win_length={win_length}, "
        f"window={cfg.window_fn} (periodic, as torch.{cfg.window_fn}_window), center={cfg.center} "
        f"(zero padding of n_fft // 2 on both sides)",
        "power |X|**2" if cfg.power == 2.0 else "magnitude |X|",
        scale,
        db,
        "round to float16 and back to float32 (the store keeps float16 images; optional, changes < 0.05 dB)",
        "normalise: (image - mean[c, f]) / std[c, f] per channel c and frequency row f, with the sidecar's "
        "normalisation arrays, broadcast over time",
        f"feed as 'image' shaped (batch, 1, {cfg.n_freq}, {cfg.n_frames}); 'probabilities' is the softmax of "
        "'logits', column j is labels[j]",
    ]


def _accepted_widths(net: nn.Module, channels: int, n_freq: int, n_frames: int) -> list[int]:
    """Image widths to export and check: the trained one, plus others when the net accepts them."""
    others = [max(8, n_frames // 2 + 3), 2 * n_frames + 1]
    with torch.no_grad():
        try:
            for w in others:
                net(torch.zeros(1, channels, n_freq, w))
        except RuntimeError:  # a fixed-size layer (flatten + linear): the time axis stays fixed
            return [n_frames]
    return [n_frames, *others]


def _import_onnx() -> tuple[Any, Any]:
    # Imported here, not at module top: onnx and onnxruntime are an optional,
    # heavy dependency (the 'onnx' extra) that nothing else in spectro needs.
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise SpectroError(f"ONNX export needs the onnx extra ({err.name} is missing): {ONNX_EXTRA}") from None
    return onnx, onnxruntime
