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

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from spectro.config import FeatureConfig
from spectro.inference.defaults import ONNX_OPSET
from spectro.errors import SpectroError, first_line
from spectro.models.base import ONNX_EXTRA
from spectro.signals.pictures import MAX_DISTANCE, MAX_DISTANCE_LOSSY, MAX_FOREIGN
from spectro.training.run import load_run
from spectro.utils.device import versions
from spectro.utils.files import clean_stale_temps, write_json

__all__ = ["export_onnx", "ExportResult", "preprocessing_steps"]

SIDECAR_FORMAT = "spectro-onnx-1"


#: The oldest opset ONNX Runtime still runs; the newest is the installed onnx package's.
MIN_OPSET = 7
#: A protobuf cannot exceed 2 GB: a larger model's weights go to one ``OUT.data`` file beside it.
SINGLE_FILE_LIMIT = 2**31 - 1


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
    opset: int = ONNX_OPSET  # the default-domain opset in the file
    data: Optional[str] = None  # the weights file beside ``path``: only for a model over 2 GB

    @property
    def files(self) -> list[str]:
        """Every file written: the graph, its weights file (if any) and the sidecar."""
        return [self.path, *([self.data] if self.data else []), self.sidecar]


def export_onnx(run_dir: str, out: str, *, opset: int = ONNX_OPSET, tolerance: float = 1e-4,
                seed: int = 0) -> ExportResult:
    """Write the run's network to ``out`` (ONNX) and ``out + ".json"``, and verify it.

    ``out`` is one self-contained file (weights inside) for a model under
    2 GB; above that the weights go to ``out + ".data"``, named in the result
    and the sidecar. Everything is written under temporary names and renamed
    into place once checked: a failed export leaves no file behind.

    Parameters
    ----------
    run_dir : str
        A run of a network (``spectro train --model resnet18 ...``).
    out : str
        The .onnx file to write.
    opset : int
        ONNX opset version of the graph (default domain). An exporter that
        cannot write this opset for the model is an error: the file always
        has the opset asked for, and the sidecar records it.
    tolerance : float
        Largest absolute difference allowed between ONNX Runtime and PyTorch
        (over logits and probabilities; probabilities alone for the SVM).
    seed : int
        Seeds the random test inputs.

    Raises
    ------
    SpectroError
        The onnx extra is missing, ``out`` is a directory, the opset is not
        supported, the exporter fails, an output is NaN or infinite, or the
        check fails (nothing is then left behind).
    """
    onnx, ort = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise SpectroError(f"--opset must be a whole number from {MIN_OPSET} to {newest} (onnx "
                           f"{onnx.__version__}), got {opset!r}")
    out = os.path.abspath(out)
    if os.path.isdir(out):
        raise SpectroError(f"--out {out} is a directory; give the .onnx file to write, e.g. "
                           f"{os.path.join(out, 'model.onnx')}")
    run = load_run(run_dir, device="cpu")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    clean_stale_temps(os.path.dirname(out))  # what an export killed with SIGKILL left beside its output
    # The exporter writes here (and maybe a .data file beside it); renamed to ``out`` once checked.
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.tmp-{os.getpid()}.onnx")
    written: list[str] = []
    try:
        result = _export_checked(run, run_dir, out, tmp, written, onnx, ort, opset, tolerance, seed)
    except BaseException:
        for path in [tmp, tmp + ".data", *written]:
            with contextlib.suppress(OSError):  # absent, or a read-only folder: the error below says why
                os.remove(path)
        raise
    return result


def _export_checked(run: Any, run_dir: str, out: str, tmp: str, written: list[str], onnx: Any, ort: Any,
                    opset: int, tolerance: float, seed: int) -> ExportResult:
    """Export to ``tmp``, make it one file (or ``out.data`` over 2 GB), check it, then put it at ``out``.

    ``written`` collects the final paths as they appear, for the caller to remove on failure.
    """
    channels, n_freq, n_frames = int(run.mean.shape[0]), run.feature_config.n_freq, run.feature_config.n_frames
    try:
        with _library_output_held():
            graph = run.classifier.export_onnx(tmp, image_shape=(channels, n_freq, n_frames), opset=opset)
        model = onnx.load(tmp, load_external_data=True)  # the weights, wherever the exporter put them
    except OSError as err:
        raise SpectroError(f"cannot write {out}: {err.strerror or first_line(err)}; nothing written") from None
    reference, widths, outputs, against = graph.reference, graph.widths, graph.outputs, graph.against
    actual = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if actual != opset:
        raise SpectroError(f"--opset {opset} is not supported for {run.train_config.model}: its exporter wrote "
                           f"opset {actual}; use --opset {actual}" + (" or newer" if actual > opset else ""))
    data = None
    try:
        if model.ByteSize() < SINGLE_FILE_LIMIT:
            onnx.save_model(model, tmp)  # weights inside: the one file is the whole model
        else:
            data = out + ".data"
            written.append(data)
            onnx.save_model(model, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(data), size_threshold=1024)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp + ".data")  # the exporter's own weights file, now inside (or in ``data``)
    except OSError as err:
        raise SpectroError(f"cannot write {out}: {err.strerror or first_line(err)}; nothing written") from None
    del model
    onnx.checker.check_model(tmp)
    dynamic_time = len(widths) > 1

    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    diff, checked = 0.0, []
    for batch in (1, 5):
        for width in widths:
            # Unit-variance noise plus a random level per frequency row: normalised images vary like that.
            x = (rng.standard_normal((batch, channels, n_freq, width))
                 + rng.standard_normal((batch, channels, n_freq, 1))).astype(np.float32)
            shape = "x".join(map(str, x.shape))
            for name, want, got in zip(outputs, reference(x), session.run(outputs, {"image": x})):
                # max() and np.max() would pass over a NaN: non-finite outputs fail by name.
                for who, values in ((against, want), ("ONNX Runtime", got)):
                    if not np.isfinite(values).all():
                        raise SpectroError(f"{who} gives NaN or infinite {name!r} on {shape} (non-finite weights "
                                           f"in {run_dir}?); nothing written")
                diff = max(diff, float(np.max(np.abs(np.asarray(want, dtype=np.float64) - got))))
            checked.append(shape)
    if not diff <= tolerance:
        raise SpectroError(f"ONNX Runtime and {against} differ by {diff:.3g} (more than {tolerance:g}) on "
                           f"{', '.join(checked)}; nothing written")
    cfg = run.feature_config
    sidecar = out + ".json"
    written.append(sidecar)
    write_json(sidecar, {
        "format": SIDECAR_FORMAT,
        "model": run.train_config.model,
        "run": os.path.abspath(run_dir),
        "labels": list(run.labels),
        "files": {"graph": os.path.basename(out), "data": data and os.path.basename(data)},
        "input": {"name": "image", "dtype": "float32", "layout": "batch, channel, frequency, time",
                  "shape": ["batch", channels, n_freq, "time" if dynamic_time else n_frames],
                  "trained_shape": [channels, n_freq, n_frames], "dynamic_time": dynamic_time},
        "outputs": {"logits": ["batch", len(run.labels)], "probabilities": ["batch", len(run.labels)]}
        if "logits" in outputs else {"label": ["batch"], "probabilities": ["batch", len(run.labels)]},
        "feature_config": cfg.to_dict(),
        "normalisation": {"mean": run.mean.tolist(), "std": run.std.tolist(), "shape": "channel, frequency"},
        "preprocessing": preprocessing_steps(cfg),
        "opset": actual,
        "check": {"max_abs_diff": diff, "tolerance": tolerance, "inputs": checked},
        "versions": {**versions(), "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    })
    written.append(out)
    os.replace(tmp, out)
    return ExportResult(out, sidecar, diff, tolerance, dynamic_time, ", ".join(checked), against, actual, data)


@contextlib.contextmanager
def _library_output_held() -> Iterator[None]:
    """Hold what the exporters write to stderr (fd 2) during the block; it is dropped.

    torch.onnx and onnxscript log warnings and whole tracebacks there (an
    opset they cannot convert to, then a fallback); what matters reaches the
    user as one line, from the checks that follow.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile("w+") as sink, contextlib.redirect_stderr(sink):  # and Python's sys.stderr
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def preprocessing_steps(cfg: FeatureConfig) -> list[str]:
    """The exact steps from a raw file to the graph's input, with ``cfg``'s numbers filled in."""
    if cfg.is_image:
        return _image_steps(cfg)
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
    if cfg.compression == "pcen":
        db = (f"per-channel energy normalisation along time: librosa.pcen(S * 2**31, sr={cfg.sample_rate}, "
              f"hop_length={cfg.hop_length}) with its defaults (gain 0.98, bias 2, power 0.5, time_constant "
              f"0.4, eps 1e-6; spectro.signals.features.pcen)")
    elif cfg.db:
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


def _image_steps(cfg: FeatureConfig) -> list[str]:
    """:func:`preprocessing_steps` of a run on images made elsewhere (spectro.signals.pictures)."""
    f, t = cfg.image_size
    name = cfg.colormap or "gray"
    colour = ("grey levels divided by 255 (8-bit) or 65535 (16-bit)" if name == "gray" else
              f"each pixel (RGB in 0..1) becomes k / 255 for the nearest k of matplotlib's 256-colour {name} table "
              f"(matplotlib.colormaps[{name!r}](np.linspace(0, 1, 256))); refuse pictures with more than "
              f"{100 * MAX_FOREIGN:g} % of pixels farther than {MAX_DISTANCE:g} (JPEG {MAX_DISTANCE_LOSSY:g}) from "
              "every colour")
    return [
        "a picture (Pillow; alpha dropped) or a 2-D array (F x T, values as they are)",
        f"crop to the box {cfg.crop_box} (left, top, right, bottom)" if cfg.crop_box else "no crop",
        colour,
        "flip vertically: row 0 is the lowest frequency (the picture's bottom row)",
        (f"resize to {f} x {t} (PIL bilinear, on the intensities)" if cfg.resize else
         f"refuse images that are not {f} x {t}"),
        "round to float16 and back to float32 (the store keeps float16 images)",
        "normalise: (image - mean[c, f]) / std[c, f] per channel c and frequency row f, with the sidecar's "
        "normalisation arrays, broadcast over time",
        f"feed as 'image' shaped (batch, 1, {f}, {t}); 'probabilities' is the softmax of 'logits', column j is "
        "labels[j]",
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
