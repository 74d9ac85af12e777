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

Each classifier writes its own graph (:meth:`~spectro.models.base.Classifier.export_onnx`:
the networks through torch.onnx, the SVM pipeline through skl2onnx, see
:mod:`spectro.models.svm_onnx`); this module checks it the same way for all,
against the classifier's own outputs, and writes the sidecar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectro.config import ONNX_OPSET, FeatureConfig
from spectro.errors import SpectroError
from spectro.models.base import ONNX_EXTRA
from spectro.training.run import load_run
from spectro.utils.device import versions
from spectro.utils.files import write_json

__all__ = ["export_onnx", "ExportResult", "preprocessing_steps"]

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


def export_onnx(run_dir: str, out: str, *, opset: int = ONNX_OPSET, tolerance: float = 1e-4,
                seed: int = 0) -> ExportResult:
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
    channels, n_freq, n_frames = int(run.mean.shape[0]), run.feature_config.n_freq, run.feature_config.n_frames
    graph = run.classifier.export_onnx(out, image_shape=(channels, n_freq, n_frames), opset=opset)
    reference, widths, outputs, against = graph.reference, graph.widths, graph.outputs, graph.against
    onnx.checker.check_model(out)
    dynamic_time = len(widths) > 1

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


def _import_onnx() -> tuple[Any, Any]:
    # Imported here, not at module top: onnx and onnxruntime are an optional,
    # heavy dependency (the 'onnx' extra) that nothing else in spectro needs.
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise SpectroError(f"ONNX export needs the onnx extra ({err.name} is missing): {ONNX_EXTRA}") from None
    return onnx, onnxruntime
