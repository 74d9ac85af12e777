"""The command line's parsers: one function per command, one shared group of training options.

Nothing here imports torch, librosa, pandas or matplotlib, so ``spectro --help``
answers at once. Every default is read from where it is defined: the
settings of :class:`~spectro.config.FeatureConfig` and
:class:`~spectro.config.TrainConfig` are left at ``None`` here (only what a
user gives is passed on, and the dataclass fills in the rest); the
defaults of the API functions are shown in the help and passed as they
are. The choices are the dataclasses' ``CHOICES``. The training options
of ``train`` and ``compare`` are made from TrainConfig's fields, presented
as :data:`spectro.cli.options.TRAINING_HELP` says (a new setting is one
row there).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from spectro import config as C
from spectro._version import __version__
from spectro.cli.options import GROUPS, TRAINING_HELP
from spectro.config import FeatureConfig, TrainConfig
from spectro.comparison.defaults import COMPARE_JOBS, COMPARE_OUT
from spectro.explain.defaults import EXPLAIN_EXAMPLES, EXPLAIN_PROJECTIONS
from spectro.inference.defaults import ONNX_OPSET, PREDICT_BATCH_SIZE, TOP_K
from spectro.models.catalog import DESCRIBE_CLASSES, DESCRIBE_SHAPE, FAMILIES

__all__ = ["build_parser", "FEATURE_OPTIONS", "TRAINING_OPTIONS", "COMPARE_EXCLUDED"]

#: preprocess option (argparse dest) -> FeatureConfig field
FEATURE_OPTIONS = {
    "sample_rate": "sample_rate", "duration": "duration", "crop": "crop", "pad": "pad", "window": "window",
    "hop": "window_hop", "n_fft": "n_fft", "hop_length": "hop_length", "win_length": "win_length",
    "window_fn": "window_fn", "power": "power", "top_db": "top_db", "freq_scale": "freq_scale",
    "n_mels": "n_mels", "fmin": "fmin", "fmax": "fmax", "compression": "compression",
    "mat_key": "mat_key", "column": "column", "channels": "channels", "input": "input", "colormap": "colormap",
    "crop_box": "crop_box", "image_size": "image_size",
}
#: TrainConfig fields that are training options (model and model_options have options of their own)
TRAINING_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("model", "model_options"))
#: Fields compare sets itself: every model gets the same split (--test-fold or --cv)
COMPARE_EXCLUDED = ("test_fold", "val_fold", "train_fraction")


def _default(cls: Any, name: str) -> Any:
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _ints(text: str, sep: str, n: int, what: str) -> tuple[int, ...]:
    """``"64x101"`` -> (64, 101): an argparse type (its ValueError becomes argparse's one-line usage error)."""
    parts = text.lower().replace(" ", "").split(sep)
    if len(parts) != n or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{what} takes {n} whole numbers separated by {sep!r}, got {text!r}")
    return tuple(int(p) for p in parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spectro",
                                     description="Classify signals through their STFT time-frequency images.")
    parser.add_argument("--version", action="version", version=f"spectro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_preprocess, _info, _show, _models, _train, _compare, _explain, _evaluate, _predict, _export,
                _doctor):
        add(sub)
    return parser


def _preprocess(sub) -> None:
    p = sub.add_parser("preprocess", help="signals -> STFT images in a feature store")
    p.add_argument("source", help="folder of class folders, data set root (ESC-50, UrbanSound8K, "
                   "Speech Commands), folder with --manifest or --label-regex, or a .npz of signals; files: audio, "
                   ".npy/.npz, MATLAB .mat, CSV/TSV of samples, or pictures (PNG, JPEG, BMP, TIFF) made elsewhere")
    p.add_argument("--out", required=True, help="store directory (replaced atomically)")
    g = p.add_argument_group("source")
    g.add_argument("--manifest", help="CSV listing the files (paths relative to SOURCE, or absolute)")
    g.add_argument("--path-col", help=f"manifest column of the paths (default {C.PATH_COLUMN})")
    g.add_argument("--label-col", help=f"manifest column of the labels (default {C.LABEL_COLUMN})")
    g.add_argument("--fold-col")
    g.add_argument("--group-col")
    g.add_argument("--label-regex", help="take the label from the file name (first group), e.g. '^(\\d)_'")
    g.add_argument("--group-regex", help="take the group (speaker, session, machine) from the file name")
    g.add_argument("--fold-regex", help="take the fold from the path (first group), a condition such as the "
                   "motor load '_(\\d)HP' or a date: train on some, test on another")
    g.add_argument("--rate-col", help="manifest column of each file's sample rate (files that carry none)")
    g = p.add_argument_group("signal")
    g.add_argument("--sample-rate", type=int, help="target rate in Hz, and the rate of files that carry none "
                   "(.npy/.npz, .mat, CSV/TSV: required for them, unless a manifest's --rate-col gives it); "
                   f"default: the audio files' most common rate, at most {C.INFERRED_MAX_RATE}")
    g.add_argument("--mat-key", metavar="REGEX", help="the .mat variable that is the signal, e.g. '_DE_time$' "
                   "(default: the file's one numeric vector; scalars such as X097RPM are never signals)")
    g.add_argument("--column", help="CSV/TSV column of the samples: a header name or a 0-based index")
    g.add_argument("--channels", metavar="|".join(C.CHANNELS) + "|NAME", help="what several CSV/TSV columns "
                   f"become without --column (default {_default(FeatureConfig, 'channels')}; a time column is "
                   "never averaged in)")
    g.add_argument("--duration", type=float, help="crop/pad every clip to this many seconds (default: the 95th "
                   f"percentile of the clip lengths, at most {C.INFERRED_MAX_DURATION:g} s)")
    g.add_argument("--crop", choices=FeatureConfig.CHOICES["crop"], help="which part of a long clip to keep "
                   f"(default {_default(FeatureConfig, 'crop')})")
    g.add_argument("--pad", choices=FeatureConfig.CHOICES["pad"], help="where a short clip gets its zeros "
                   f"(default {_default(FeatureConfig, 'pad')})")
    g.add_argument("--window", type=float, help="cut recordings into windows of this many seconds instead")
    g.add_argument("--hop", "--window-hop", dest="hop", type=float, help="seconds between windows "
                   "(default: --window)")
    g = p.add_argument_group("image")
    g.add_argument("--n-fft", type=int, help=f"STFT size (default: ~{C.INFERRED_WINDOW_SECONDS * 1000:.0f} ms at "
                   "the rate, a power of two)")
    g.add_argument("--hop-length", type=int, help="STFT hop in samples (default: "
                   f"{C.INFERRED_HOP_SECONDS * 1000:.0f} ms at the rate)")
    g.add_argument("--win-length", type=int, help="default: n_fft")
    g.add_argument("--window-fn", choices=FeatureConfig.CHOICES["window_fn"],
                   help=f"STFT window function (default {_default(FeatureConfig, 'window_fn')})")
    g.add_argument("--power", type=lambda s: {"magnitude": 1.0, "power": 2.0}.get(s) or float(s),
                   help="magnitude (1) or power (2) (default power)")
    g.add_argument("--no-db", action="store_true", help="keep linear units instead of decibels")
    g.add_argument("--top-db", type=float, help=f"floor below each image's peak (default "
                   f"{_default(FeatureConfig, 'top_db'):g})")
    g.add_argument("--compression", choices=FeatureConfig.CHOICES["compression"],
                   help="decibels, or per-channel energy normalisation (librosa.pcen; needs power 2, ignores "
                   f"--top-db) (default {_default(FeatureConfig, 'compression')})")
    g.add_argument("--freq-scale", choices=FeatureConfig.CHOICES["freq_scale"],
                   help=f"(default {_default(FeatureConfig, 'freq_scale')})")
    g.add_argument("--n-mels", type=int, help="bands of the mel or log scale "
                   f"(default {_default(FeatureConfig, 'n_mels')})")
    g.add_argument("--fmin", type=float)
    g.add_argument("--fmax", type=float)
    g = p.add_argument_group("images made elsewhere (pictures, 2-D arrays; no STFT)")
    g.add_argument("--input", choices=C.INPUTS, help="what the files are (default: image for a source of "
                   "pictures, else signal; .npy/.npz arrays are 2-D images, F x T or N x F x T, only with image)")
    g.add_argument("--colormap", choices=C.COLORMAPS, help="the colormap the pictures were drawn with, inverted "
                   "to intensity (default: detected from the first pictures, and said)")
    g.add_argument("--crop-box", type=lambda s: _ints(s, ",", 4, "--crop-box"), metavar="L,T,R,B",
                   help="keep these pixels of each picture (cut away axes, ticks and a colour bar)")
    g.add_argument("--image-size", type=lambda s: _ints(s, "x", 2, "--image-size"), metavar="FxT",
                   help=f"resize every image to F x T pixels ({C.IMAGE_RESIZE} interpolation; default: the "
                   "first image's size, and images of another size are refused)")
    g = p.add_argument_group("run")
    g.add_argument("--folds", type=int, help=f"folds to assign when the source gives none (default {C.FOLDS})")
    g.add_argument("--seed", type=int, help=f"fold shuffling seed (default {C.SEED})")
    g.add_argument("--workers", type=int, help="decoding processes (default: one per CPU)")
    g.add_argument("--device", help=f"where STFTs run: cpu, cuda or auto (default {C.STFT_DEVICE})")
    g.add_argument("--png", metavar="DIR", help="also write example images per class to DIR")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _info(sub) -> None:
    p = sub.add_parser("info", help="what a store holds")
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--verify", action="store_true",
                   help="read every image and check it against the checksums taken when the store was written")


def _show(sub) -> None:
    p = sub.add_parser("show", help="write example spectrogram images per class")
    p.add_argument("store")
    p.add_argument("--out", required=True, help="directory for the PNG files")
    p.add_argument("--per-class", type=int, default=C.EXAMPLES_PER_CLASS, help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=C.SEED, help="(default %(default)s)")


def _models(sub) -> None:
    p = sub.add_parser("models", help="list every model name, its family and what it is",
                       description="List every model name with its family, kind and what it is. --size adds "
                                   "each network's parameters and GFLOPs at --input-shape (that builds them, "
                                   "so it takes a few seconds).")
    p.add_argument("--size", action="store_true", help="also count parameters and GFLOPs")
    shape = "x".join(map(str, DESCRIBE_SHAPE))
    p.add_argument("--input-shape", metavar="CxFxT", help="image shape to count parameters and FLOPs at "
                   f"(implies --size; default {shape})")
    p.add_argument("--num-classes", type=int, help=f"classes to count at (implies --size; default "
                   f"{DESCRIBE_CLASSES})")
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")


def _doctor(sub) -> None:
    p = sub.add_parser("doctor", help="what this machine offers: CPU, GPU, memory, the precision and data path "
                                      "train would choose, the versions")
    p.add_argument("--device", default=TrainConfig.device, help="the device train would be given "
                   "(default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def add_store_argument(p: argparse.ArgumentParser, *, required: bool) -> None:
    """STORE as a positional argument, with ``--store`` kept as an alias."""
    p.add_argument("store", nargs="?", metavar="STORE", help="feature store"
                   + ("" if required else " (optional with --resume)"))
    p.add_argument("--store", dest="store_option", metavar="STORE", help="the same as STORE, given as an option")


def add_training_options(p: argparse.ArgumentParser, *, exclude: tuple[str, ...] = (),
                         per_model_help: dict[str, str] | None = None) -> None:
    """One option per TrainConfig field (but ``exclude``), grouped and explained by :data:`TRAINING_HELP`.

    ``per_model_help``: help texts that replace a field's own where the command takes several models
    (compare's ``--option`` names the model it is for).
    """
    per_model_help = per_model_help or {}
    hints = typing.get_type_hints(TrainConfig)
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for f in dataclasses.fields(TrainConfig):
        if f.name in exclude or f.name == "model":  # --model: the command's own
            continue
        group, help_text, meta = TRAINING_HELP[f.name]
        meta = dict(meta)
        flag = meta.pop("flag", None) or "--" + f.name.replace("_", "-")
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        kind = _base_type(hints[f.name])
        choices = TrainConfig.CHOICES.get(f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if default is not None and "default" not in help_text:
            shown = ("on" if default else "off") if kind is bool else default
            help_text += f" (default {shown})"
        if f.name == "model_options":
            per_model = "model_options" in per_model_help
            groups[group].add_argument(flag, dest="option", action="append", default=[],
                                       metavar="[MODEL:]KEY=VALUE" if per_model else "KEY=VALUE",
                                       help=per_model_help.get("model_options", help_text))
        elif kind is bool:
            groups[group].add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=help_text)
        elif "const" in meta:
            groups[group].add_argument(flag, dest=f.name, type=kind, nargs="?", help=help_text, **meta)
        else:
            groups[group].add_argument(flag, dest=f.name, type=kind, choices=choices, help=help_text, **meta)


def _model_names() -> str:
    """``resnet18..resnet152, plain18..plain152, ..., cnn, svm``: every family's smallest and largest."""
    return ", ".join(names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
                     for _, _, names in FAMILIES.values())


def _base_type(hint: Any) -> Any:
    """``Optional[int]`` -> int; the type argparse converts an option's text to."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and args else hint


def _train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a store (GPU when there is one); writes a run directory",
                       description="Train a model on a feature store. Options left out take the defaults of "
                                   "spectro.TrainConfig. Under torchrun (torchrun --nproc-per-node=N -m "
                                   "spectro train ...) training is data-parallel over N processes.")
    add_store_argument(p, required=False)
    p.add_argument("--model", help=f"model name: {_model_names()} (default {_default(TrainConfig, 'model')}; "
                   "spectro models says what each is)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATE-TIME)")
    add_training_options(p)
    p.add_argument("--cv", action="store_true", help="cross-validate: one model per fold, each fold the test "
                   "fold once; report mean and standard deviation")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run (or --cv directory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _compare(sub) -> None:
    p = sub.add_parser("compare", help="train several models on the same split and compare them: table, tests, "
                       "figure", description="Train every model on the same split of STORE with the same seed "
                       "(finished runs in OUT are reused, interrupted ones resumed), then compare them on the same "
                       "test examples: OUT/results.csv, results.md, report.md, comparison.png. Training options "
                       "go to every model (the svm ignores those of networks); left out, they take the defaults "
                       "of spectro.TrainConfig.")
    add_store_argument(p, required=True)
    p.add_argument("--models", required=True, help="comma-separated model names, e.g. svm,cnn,resnet18,resnet34")
    p.add_argument("--out", default=COMPARE_OUT, help="output directory (default: %(default)s)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fold", type=int, metavar="K", help="default: the fold named test, else the highest")
    g.add_argument("--cv", action="store_true", help="every fold the test fold once; mean ± std over folds")
    p.add_argument("--seeds", metavar="S,S,...", help="train every model once per seed, e.g. 0,1,2: mean ± std "
                   "over seeds, tests on the predictions pooled over seeds (not with --seed)")
    p.add_argument("--jobs", type=int, default=COMPARE_JOBS,
                   help="train this many runs at once, in separate processes (default %(default)s)")
    p.add_argument("--train-sizes", metavar="F,F,...", help="a learning curve: compare at each of these shares of "
                   "the training groups (nested, e.g. 0.1,0.25,0.5,1): OUT/size-F/ each, OUT/curve.csv, curve.md, "
                   "curve.png")
    p.add_argument("--explain", action="store_true", help="then explain every model (where it looks, its "
                   "embedding, its mistakes, where the models disagree): OUT/explain/report.html, one self-contained "
                   "page with the table, the verdict and every figure")
    add_training_options(p, exclude=COMPARE_EXCLUDED, per_model_help={
        "model_options": "model option for every compared model, KEY=VALUE (e.g. dropout=0.2), or for one, "
                         "MODEL:KEY=VALUE (e.g. resnet18:stem=small) (repeatable)"})
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _explain(sub) -> None:
    p = sub.add_parser("explain", help="why a model decides as it does: where it looks, its embedding, its mistakes",
                       description="Occlusion importance over frequency and time, occlusion and Grad-CAM maps of a "
                                   "few test images, the 2-D embedding of train and test examples with its "
                                   "group-vs-class silhouette, the most confident mistakes; figures and one "
                                   "self-contained report.html in --out.")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--examples", type=int, default=EXPLAIN_EXAMPLES, metavar="N",
                   help="test images drawn with the model's maps (default %(default)s)")
    p.add_argument("--out", metavar="DIR", help="where the figures and report.html go (default RUN/explain)")
    p.add_argument("--store", help="the store to read the examples from (default: the run's own)")
    p.add_argument("--projection", choices=EXPLAIN_PROJECTIONS, default=EXPLAIN_PROJECTIONS[0],
                   help="2-D projection of the embeddings (default %(default)s)")
    p.add_argument("--device", help="auto, cuda, mps or cpu (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained run: accuracy, macro-F1, confusion matrix")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--split", default=C.EVAL_SPLITS[0], choices=C.EVAL_SPLITS,
                   help="which of the run's examples to score (all: every row of --store; default %(default)s)")
    p.add_argument("--store", help="score on this store instead of the run's own (same FeatureConfig)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--no-write", action="store_true",
                   help="print the scores only; write no report into RUN/eval (e.g. a read-only run)")


def _predict(sub) -> None:
    p = sub.add_parser("predict", help="labels and probabilities of raw files from a trained run",
                       description="Turn each file into exactly the image the run was trained on (its "
                                   "FeatureConfig and normalisation) and print its label and top-k probabilities. "
                                   "Exit code 1 when some files could not be used, 2 for an unusable RUN.")
    p.add_argument("run", help="run directory written by spectro train (or by compare, with --model)")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="signal files; folders are searched recursively")
    p.add_argument("--model", metavar="NAME", help="RUN is a compare directory: predict with this model's run")
    p.add_argument("--top-k", type=int, default=TOP_K, help="probabilities shown per file (default %(default)s)")
    p.add_argument("--window", type=float, metavar="S", help="predict over sliding windows of S seconds (the "
                   "run's image length); on by itself when the run was trained on windows")
    p.add_argument("--hop", type=float, metavar="S", help="seconds between windows (default: the window)")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="rate of files that carry none (.npy/.npz, .mat, "
                   "CSV/TSV; default: the run's rate)")
    p.add_argument("--batch-size", type=int, help=f"images per model call (default {PREDICT_BATCH_SIZE})")
    p.add_argument("--device", help="auto, cuda, mps or cpu (default: CUDA when available)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--png", metavar="DIR", help="write each file's spectrogram with its labels over time to DIR")
    p.add_argument("--workers", type=int, help="decoding processes (default: one per CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _export(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to ONNX, checked against PyTorch or scikit-learn",
                       description="Write the model as an ONNX graph taking the normalised image "
                                   "(batch, 1, F, T), with a sidecar JSON (labels, FeatureConfig, normalisation, "
                                   "preprocessing steps); ONNX Runtime and the run's own classifier are compared "
                                   "on the same inputs.")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {ONNX_OPSET})")
