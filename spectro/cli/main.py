"""The command line: parse, call the Python API (the ``spectro`` facade, and only it), print.

No pipeline logic here, and no default or choice of its own: options
default to ``None`` so that the only defaults are those of
:class:`~spectro.config.FeatureConfig`, :class:`~spectro.config.TrainConfig`
and the API functions (read from them for the help texts), and the choices
are the dataclasses' ``CHOICES``. A user error (:class:`SpectroError`) is
printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import inspect
import json
import os
import signal
import sys
import threading
from typing import Any, Optional, Sequence

import spectro
from spectro import FeatureConfig, SpectroError, TrainConfig


def _default(owner: Any, name: str) -> Any:
    """The default of ``name``: a dataclass field's or a function parameter's (one home for each)."""
    if dataclasses.is_dataclass(owner):
        return {f.name: f.default for f in dataclasses.fields(owner)}[name]
    return inspect.signature(owner).parameters[name].default


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The options among ``names`` that the user set (None: left to the API's default)."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}

# option -> FeatureConfig field
_FEATURE_OPTIONS = {
    "sample_rate": "sample_rate",
    "duration": "duration",
    "crop": "crop",
    "pad": "pad",
    "window": "window",
    "hop": "window_hop",
    "n_fft": "n_fft",
    "hop_length": "hop_length",
    "win_length": "win_length",
    "window_fn": "window_fn",
    "power": "power",
    "top_db": "top_db",
    "freq_scale": "freq_scale",
    "n_mels": "n_mels",
    "fmin": "fmin",
    "fmax": "fmax",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectro", description="Classify signals through their STFT time-frequency images."
    )
    parser.add_argument("--version", action="version", version=f"spectro {spectro.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("preprocess", help="signals -> STFT images in a feature store")
    p.add_argument("source", help="folder of class folders, data set root (ESC-50, UrbanSound8K, "
                   "Speech Commands), folder with --manifest or --label-regex, or a .npz of signals")
    p.add_argument("--out", required=True, help="store directory (replaced atomically)")
    g = p.add_argument_group("source")
    g.add_argument("--manifest", help="CSV listing the files (paths relative to SOURCE, or absolute)")
    g.add_argument("--path-col", default="path")
    g.add_argument("--label-col", default="label")
    g.add_argument("--fold-col")
    g.add_argument("--group-col")
    g.add_argument("--label-regex", help="take the label from the file name (first group), e.g. '^(\\d)_'")
    g.add_argument("--group-regex", help="take the group (speaker, session, machine) from the file name")
    g = p.add_argument_group("signal")
    g.add_argument("--sample-rate", type=int, help="target rate in Hz (and the rate of .npy/.npz signals); "
                   "default: the sources' most common rate, at most 16000 (arrays: "
                   f"{_default(FeatureConfig, 'sample_rate')})")
    g.add_argument("--duration", type=float, help="crop/pad every clip to this many seconds (default: the 95th "
                   "percentile of the clip lengths, at most 10 s)")
    g.add_argument("--crop", choices=FeatureConfig.CHOICES["crop"], help="which part of a long clip to keep")
    g.add_argument("--pad", choices=FeatureConfig.CHOICES["pad"], help="where a short clip gets its zeros")
    g.add_argument("--window", type=float, help="cut recordings into windows of this many seconds instead")
    g.add_argument("--hop", "--window-hop", dest="hop", type=float, help="seconds between windows "
                   "(default: --window)")
    g = p.add_argument_group("image")
    g.add_argument("--n-fft", type=int, help="STFT size (default: ~32 ms at the rate, a power of two)")
    g.add_argument("--hop-length", type=int, help="STFT hop in samples (default: 10 ms at the rate)")
    g.add_argument("--win-length", type=int)
    g.add_argument("--window-fn", choices=FeatureConfig.CHOICES["window_fn"],
                   help="STFT window function")
    g.add_argument("--power", type=lambda s: {"magnitude": 1.0, "power": 2.0}.get(s) or float(s),
                   help="magnitude (1) or power (2)")
    g.add_argument("--no-db", action="store_true", help="keep linear units instead of decibels")
    g.add_argument("--top-db", type=float)
    g.add_argument("--freq-scale", choices=FeatureConfig.CHOICES["freq_scale"])
    g.add_argument("--n-mels", type=int, help="bands of the mel or log scale")
    g.add_argument("--fmin", type=float)
    g.add_argument("--fmax", type=float)
    g = p.add_argument_group("run")
    g.add_argument("--folds", type=int, help="folds to assign when the source gives none "
                   f"(default {_default(spectro.preprocess, 'k_folds')})")
    g.add_argument("--seed", type=int, help=f"fold shuffling seed (default {_default(spectro.preprocess, 'seed')})")
    g.add_argument("--workers", type=int, help="decoding processes (default: one per CPU)")
    g.add_argument("--device", help="where STFTs run: cpu, cuda or auto "
                   f"(default {_default(spectro.preprocess, 'device')})")
    g.add_argument("--png", metavar="DIR", help="also write example images per class to DIR")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("info", help="what a store holds")
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("show", help="write example spectrogram images per class")
    p.add_argument("store")
    p.add_argument("--out", required=True, help="directory for the PNG files")
    p.add_argument("--per-class", type=int, default=_default(spectro.show_examples, "per_class"))
    p.add_argument("--seed", type=int, default=_default(spectro.show_examples, "seed"))

    p = sub.add_parser("models", help="list every model name with its parameters and GFLOPs")
    shape = "x".join(map(str, _default(spectro.describe_models, "input_shape")))
    p.add_argument("--input-shape", default=shape, metavar="CxFxT",
                   help=f"image shape to count parameters and FLOPs at (default {shape})")
    p.add_argument("--num-classes", type=int, default=_default(spectro.describe_models, "num_classes"))
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")

    _add_train_parser(sub)
    _add_compare_parser(sub)
    p = sub.add_parser("evaluate", help="score a trained run: accuracy, macro-F1, confusion matrix")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--split", default=_default(spectro.evaluate, "split"), choices=["test", "val", "train", "all"],
                   help="which of the run's examples to score (all: every row of --store)")
    p.add_argument("--store", help="score on this store instead of the run's own (same FeatureConfig)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    _add_predict_parser(sub)
    _add_export_parser(sub)
    return parser


# TrainConfig fields that are options of their own (model_options comes from --option KEY=VALUE)
_TRAIN_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "model_options")


def _per_optimizer(i: int) -> str:
    """The optimizer-dependent default ``i`` (0: learning rate, 1: weight decay) of each optimizer."""
    opts = TrainConfig.CHOICES["optimizer"]
    return ", ".join(f"{TrainConfig(optimizer=o).learning_rate if i == 0 else TrainConfig(optimizer=o).decay:g} {o}"
                     for o in opts)


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on a store (GPU when there is one); writes a run directory",
                       description="Train a model on a feature store. Options left out take the defaults of "
                                   "spectro.TrainConfig. Under torchrun (torchrun --nproc-per-node=N -m "
                                   "spectro train ...) training is data-parallel over N processes.")
    p.add_argument("--store", help="feature store (optional with --resume)")
    p.add_argument("--model", help="model name: resnet18, resnet34, resnet20, cnn, svm, ... "
                   f"(default {_default(TrainConfig, 'model')}; see spectro models)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATE-TIME)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", default=[],
                   help="model option, e.g. stem=small or dropout=0.2 (repeatable)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help=f"(default {_default(TrainConfig, 'epochs')})")
    g.add_argument("--batch-size", type=int, help=f"(default {_default(TrainConfig, 'batch_size')})")
    g.add_argument("--lr", type=float, help="peak learning rate (default: the optimizer's, "
                   f"{_per_optimizer(0)})")
    g.add_argument("--weight-decay", type=float, help=f"(default: the optimizer's, {_per_optimizer(1)})")
    g.add_argument("--optimizer", choices=TrainConfig.CHOICES["optimizer"],
                   help=f"(default {_default(TrainConfig, 'optimizer')})")
    g.add_argument("--schedule", choices=TrainConfig.CHOICES["schedule"],
                   help=f"(default {_default(TrainConfig, 'schedule')})")
    g.add_argument("--warmup-epochs", type=float)
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--grad-clip", type=float, metavar="NORM")
    g.add_argument("--early-stop", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation macro-F1")
    g.add_argument("--pretrained", metavar="PATH", help="start from this local checkpoint")
    g = p.add_argument_group("split")
    g.add_argument("--test-fold", type=int, metavar="K", help="default: the fold named test, else the highest")
    g.add_argument("--val-fold", type=int, metavar="K", help="validate on this whole fold (default: the fold the "
                   "source names validation, else a hold-out of --val-fraction of the training groups)")
    g.add_argument("--val-fraction", type=float, metavar="F", help="share of the training folds' groups held out "
                   f"for validation when there is no validation fold (default {_default(TrainConfig, 'val_fraction')};"
                   " 0: none); stratified, group-aware, seeded")
    g.add_argument("--cv", action="store_true", help="cross-validate: one model per fold, each fold the test "
                   "fold once; report mean and standard deviation")
    g = p.add_argument_group("augmentation")
    g.add_argument("--specaugment", action=argparse.BooleanOptionalAction, help="SpecAugment frequency and time "
                   f"masks (default {'on' if _default(TrainConfig, 'specaugment') else 'off'})")
    g.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup with Beta(ALPHA, ALPHA)")
    g.add_argument("--time-shift", type=float, nargs="?", const=TrainConfig.TIME_SHIFT_FRACTION, metavar="FRACTION",
                   help="random circular time shift of up to FRACTION of the width "
                        f"(FRACTION defaults to {TrainConfig.TIME_SHIFT_FRACTION})")
    g.add_argument("--balance", action="store_const", const=True, help="weight the loss by inverse class frequency")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cuda, cuda:N, mps or cpu "
                   f"(default {_default(TrainConfig, 'device')})")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="mixed precision (default: on where it pays: CUDA, MPS, CPUs with AMX)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="NHWC memory format (default: on with CUDA, on the CPU and with mixed precision)")
    g.add_argument("--workers", type=int, help="DataLoader processes (default 0 on CPU, 4 on GPU)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, help=f"(default {_default(TrainConfig, 'seed')})")
    g.add_argument("--resume", metavar="RUN", help="continue an interrupted run (or --cv directory)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="labels and probabilities of raw files from a trained run",
                       description="Turn each file into exactly the image the run was trained on (its "
                                   "FeatureConfig and normalisation) and print its label and top-k probabilities. "
                                   "Exit code 1 when some files could not be used, 2 for an unusable RUN.")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="signal files; folders are searched recursively")
    p.add_argument("--top-k", type=int, default=_default(spectro.FilePrediction.to_dict, "top_k"),
                   help="probabilities shown per file (default %(default)s)")
    p.add_argument("--window", type=float, metavar="S", help="predict over sliding windows of S seconds (the "
                   "run's image length); on by itself when the run was trained on windows")
    p.add_argument("--hop", type=float, metavar="S", help="seconds between windows (default: the window)")
    p.add_argument("--batch-size", type=int, help="images per model call "
                   f"(default {_default(spectro.Predictor.predict_files, 'batch_size')})")
    p.add_argument("--device", help="auto, cuda, mps or cpu (default: CUDA when available)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--png", metavar="DIR", help="write each file's spectrogram with its labels over time to DIR")
    p.add_argument("--workers", type=int, help="decoding processes (default: one per CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to ONNX, checked against PyTorch or scikit-learn",
                       description="Write the network as an ONNX graph taking the normalised image "
                                   "(batch, 1, F, T), with a sidecar JSON (labels, FeatureConfig, normalisation, "
                                   "preprocessing steps); ONNX Runtime and PyTorch are compared on the same inputs.")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {_default(spectro.export_onnx, 'opset')})")


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="train several models on the same split and compare them: table, tests, "
                       "figure", description="Train every model on the same split of STORE with the same seed "
                       "(finished runs in OUT are reused, interrupted ones resumed), then compare them on the same "
                       "test examples: OUT/results.csv, results.md, report.md, comparison.png. Options left out "
                       "take the defaults of spectro.TrainConfig.")
    p.add_argument("--store", required=True, help="feature store")
    p.add_argument("--models", required=True, help="comma-separated model names, e.g. svm,cnn,resnet18,resnet34")
    p.add_argument("--out", default=_default(spectro.compare, "out"), help="output directory (default: %(default)s)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fold", type=int, metavar="K", help="default: the fold named test, else the highest")
    g.add_argument("--cv", action="store_true", help="every fold the test fold once; mean ± std over folds")
    p.add_argument("--jobs", type=int, default=_default(spectro.compare, "jobs"),
                   help="train this many runs at once, in separate processes")
    g = p.add_argument_group("training (every network; the svm ignores them)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--optimizer", choices=TrainConfig.CHOICES["optimizer"])
    g.add_argument("--schedule", choices=TrainConfig.CHOICES["schedule"])
    g.add_argument("--early-stop", type=int, metavar="PATIENCE")
    g.add_argument("--specaugment", action=argparse.BooleanOptionalAction)
    g.add_argument("--mixup", type=float, metavar="ALPHA")
    g.add_argument("--time-shift", type=float, nargs="?", const=TrainConfig.TIME_SHIFT_FRACTION, metavar="FRACTION")
    g.add_argument("--balance", action="store_const", const=True)
    g.add_argument("--device")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction)
    g.add_argument("--seed", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress lines")


_COMPARE_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "early_stop",
                    "specaugment", "mixup", "time_shift", "balance", "device", "amp", "seed")


def _cmd_compare(args: argparse.Namespace) -> int:
    options = _given(args, _COMPARE_OPTIONS)
    if args.jobs < 1:
        raise SpectroError(f"--jobs must be at least 1, got {args.jobs}")
    result = spectro.compare(args.store, args.models, args.out, test_fold=args.test_fold, cv=args.cv, jobs=args.jobs,
                     progress=not args.quiet, **options)
    print(result.markdown())
    print()
    print(result.verdict)
    print(f"spectro: report {os.path.join(result.out, 'report.md')}, figure {result.figure_path}")
    return 0 if (result.table["status"] == "ok").all() else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    terminated: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()  # handlers can be set only there
    previous = signal.signal(signal.SIGTERM, _raise_interrupt(terminated)) if in_main_thread else None
    try:
        rc = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit
        return rc
    except SpectroError as err:
        print(f"spectro: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        what = "terminated" if terminated else "interrupted"
        print(f"spectro: {what}; nothing already written was changed", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # The reader went away (`spectro info STORE | head`): stop quietly, as
        # other command-line tools do. What is still buffered for the closed
        # pipe goes to /dev/null, or Python would report it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what a shell shows for a tool ended by the closed pipe
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_interrupt(flag: list[int]):
    """A SIGTERM handler that unwinds like Ctrl-C (temporary files removed, workers stopped).

    ``flag`` gets the signal number, so the exit status can say which it was.
    """

    def handler(signum, frame):
        flag.append(signum)
        raise KeyboardInterrupt

    return handler


def _cmd_preprocess(args: argparse.Namespace) -> int:
    changes = {field: getattr(args, opt) for opt, field in _FEATURE_OPTIONS.items() if getattr(args, opt) is not None}
    if args.no_db:
        changes["db"] = False
    config = FeatureConfig(**changes)
    # What the user did not give is read from the data (rate, STFT sizes, duration); what they gave wins.
    infer = [f for f in FeatureConfig.INFERABLE if f not in changes]
    run = {"k_folds": args.folds, "seed": args.seed, "device": args.device}
    result = spectro.preprocess(
        args.source, args.out, config=config, infer=infer, workers=args.workers, progress=not args.quiet,
        manifest=args.manifest, path_col=args.path_col, label_col=args.label_col, fold_col=args.fold_col,
        group_col=args.group_col, label_regex=args.label_regex, group_regex=args.group_regex,
        **{k: v for k, v in run.items() if v is not None},
    )
    print(f"spectro: {result.summary_line()}")
    if args.png:
        seed = args.seed if args.seed is not None else _default(spectro.show_examples, "seed")
        _show(args.out, args.png, per_class=_default(spectro.show_examples, "per_class"), seed=seed)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    info = spectro.open_store(args.store).summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"store      {info['path']}")
    print(f"examples   {info['examples']}   skipped inputs {info['skipped']}")
    print(f"image      {' x '.join(map(str, info['image_shape']))}   (channels x frequency x time)")
    names = info["fold_names"] or {}
    folds = info["folds"]
    head = ["class"] + [f"fold {f}" + (f" ({names[str(f)]})" if str(f) in names else "") for f in folds] + ["total"]
    table = [[name] + [str(c[f]) for f in folds] + [str(sum(c.values()))] for name, c in info["counts"].items()]
    totals = ["total"] + [str(sum(c[f] for c in info["counts"].values())) for f in folds] + [str(info["examples"])]
    _print_table(head, table + [totals])
    cfg = info["feature_config"]
    print("features   " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    _show(args.store, args.out, per_class=args.per_class, seed=args.seed)
    return 0


def _show(store_path: str, out: str, *, per_class: int, seed: int) -> None:
    paths = spectro.show_examples(spectro.open_store(store_path), out, per_class=per_class, seed=seed)
    print(f"spectro: wrote {len(paths)} images to {out}")


def _cmd_models(args: argparse.Namespace) -> int:
    try:
        shape = tuple(int(v) for v in args.input_shape.lower().split("x"))
    except ValueError:
        raise SpectroError(f"--input-shape takes CxFxT, e.g. 1x64x101; got {args.input_shape!r}") from None
    # Grouped by family, smallest first: resnet18, 34, 50, ... rather than 101, 110, 152, 18.
    rows = sorted(spectro.describe_models(input_shape=shape, num_classes=args.num_classes),
                  key=lambda r: (r["family"], r["params"] or 0))
    if args.json:
        print(json.dumps(rows))
        return 0
    _print_table(["model", "family", "parameters", f"GFLOPs at {args.input_shape}"],
                 [[r["name"], r["family"], "-" if r["params"] is None else f"{r['params']:,}",
                   "-" if r["gflops"] is None else f"{r['gflops']:.3f}"] for r in rows])
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    settings = _given(args, _TRAIN_OPTIONS)
    if args.option:
        settings["model_options"] = dict(_parse_option(o) for o in args.option)
    try:
        if args.cv:
            res = spectro.cross_validate(args.store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
            if res is not None:
                keys = list(res.mean)
                _print_table(["fold", *keys], [[str(r["fold"])] + [f"{r[k]:.4f}" for k in keys] for r in res.folds]
                             + [["mean", *(f"{res.mean[k]:.4f}" for k in keys)],
                                ["std", *(f"{res.std[k]:.4f}" for k in keys)]])
                print(f"spectro: cross-validation in {res.path} (summary: {res.path}/cv.csv)")
            return 0
        run = spectro.train(args.store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
    except spectro.TrainingInterrupted as stop:
        print(f"spectro: interrupted: {stop}", file=sys.stderr)
        return 130
    if run is not None:
        t = run.test_metrics
        line = f"spectro: run {run.path} ({run.status}, best epoch {run.info.get('best_epoch')})"
        if t:
            line += (f": test accuracy {t['accuracy']:.4f}, balanced accuracy {t['balanced_accuracy']:.4f}, "
                     f"macro-F1 {t['macro_f1']:.4f} on {t['n']} examples")
        print(line)
    return 0


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SpectroError(f"--option takes KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = spectro.evaluate(args.run, args.split, args.store)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(spectro.format_report(metrics))
        print(f"spectro: report in {os.path.join(args.run, 'eval')}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    predictor = spectro.load(args.run, device=None if args.device in (None, "auto") else args.device)
    paths = spectro.find_inputs(args.inputs)
    if not paths:
        raise SpectroError(f"no signal files in {' '.join(args.inputs)}")
    options = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    results = predictor.predict_files(paths, window=args.window, hop=args.hop, workers=args.workers,
                                      progress=not args.quiet and args.format == "table", **options)
    writer = csv.DictWriter(sys.stdout, fieldnames=spectro.FilePrediction.CSV_COLUMNS, restval="") \
        if args.format == "csv" else None
    if writer:
        writer.writeheader()
    done, failed, cropped = [], 0, 0
    for r in results:
        failed += not r.ok
        cropped += r.cropped
        if not r.ok:
            print(f"spectro: error: {r.source}: {r.error}", file=sys.stderr)
        if args.format == "table":
            if r.ok:
                print("\n".join(r.table_lines(args.top_k)))
        elif writer:
            writer.writerows(r.csv_rows(args.top_k))
        else:
            done.append(r.to_dict(args.top_k))
        if args.png and r.ok:
            predictor.plot(r, args.png)
    if args.format == "json":
        print(json.dumps(done))
    cfg = predictor.feature_config
    if cropped:
        print(f"spectro: {cropped} file(s) longer than the run's {cfg.duration:g} s were cropped to their "
              f"{cfg.crop} {cfg.duration:g} s, as in training; --window {cfg.duration:g} predicts over the whole "
              f"recording", file=sys.stderr)
    if failed:
        print(f"spectro: {failed} of {len(paths)} files could not be used", file=sys.stderr)
    return 1 if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    result = spectro.export_onnx(args.run, args.out, **({"opset": args.opset} if args.opset is not None else {}))
    print(f"spectro: wrote {result.path} and {result.sidecar}; ONNX Runtime vs {result.against} on {result.checked}: "
          f"largest absolute difference {result.max_abs_diff:.2e} (limit {result.tolerance:g})")
    return 0


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))


_COMMANDS = {"preprocess": _cmd_preprocess, "info": _cmd_info, "show": _cmd_show, "models": _cmd_models,
             "train": _cmd_train, "compare": _cmd_compare,
             "evaluate": _cmd_evaluate, "predict": _cmd_predict, "export": _cmd_export}
