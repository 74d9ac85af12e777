"""The command line: parse, call the Python API, print. No pipeline logic here.

Feature options default to ``None`` so that the only defaults are those of
:class:`~spectro.config.FeatureConfig`; a user error (:class:`SpectroError`)
is printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import SpectroError

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
    parser.add_argument("--version", action="version", version=f"spectro {__version__}")
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
                   "default 16000")
    g.add_argument("--duration", type=float, help="crop/pad every clip to this many seconds (default 1.0)")
    g.add_argument("--crop", choices=["loudest", "center", "start"], help="which part of a long clip to keep")
    g.add_argument("--pad", choices=["end", "center"], help="where a short clip gets its zeros")
    g.add_argument("--window", type=float, help="cut recordings into windows of this many seconds instead")
    g.add_argument("--hop", "--window-hop", dest="hop", type=float, help="seconds between windows "
                   "(default: --window)")
    g = p.add_argument_group("image")
    g.add_argument("--n-fft", type=int)
    g.add_argument("--hop-length", type=int, help="STFT hop in samples")
    g.add_argument("--win-length", type=int)
    g.add_argument("--window-fn", choices=["hann", "hamming", "blackman", "rectangular"],
                   help="STFT window function")
    g.add_argument("--power", type=lambda s: {"magnitude": 1.0, "power": 2.0}.get(s) or float(s),
                   help="magnitude (1) or power (2)")
    g.add_argument("--no-db", action="store_true", help="keep linear units instead of decibels")
    g.add_argument("--top-db", type=float)
    g.add_argument("--freq-scale", choices=["linear", "mel", "log"])
    g.add_argument("--n-mels", type=int, help="bands of the mel or log scale")
    g.add_argument("--fmin", type=float)
    g.add_argument("--fmax", type=float)
    g = p.add_argument_group("run")
    g.add_argument("--folds", type=int, default=5, help="folds to assign when the source gives none")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, help="decoding processes (default: one per CPU)")
    g.add_argument("--device", default="cpu", help="where STFTs run: cpu, cuda or auto")
    g.add_argument("--png", metavar="DIR", help="also write example images per class to DIR")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("info", help="what a store holds")
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("show", help="write example spectrogram images per class")
    p.add_argument("store")
    p.add_argument("--out", required=True, help="directory for the PNG files")
    p.add_argument("--per-class", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("models", help="list every model name with its parameters and GFLOPs")
    p.add_argument("--input-shape", default="1x64x101", metavar="CxFxT",
                   help="image shape to count parameters and FLOPs at (default 1x64x101)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--json", action="store_true", help="one JSON list on stdout")

    _add_train_parser(sub)
    _add_compare_parser(sub)
    p = sub.add_parser("evaluate", help="score a trained run: accuracy, macro-F1, confusion matrix")
    p.add_argument("run", help="run directory written by spectro train")
    p.add_argument("--split", default="test", choices=["test", "val", "train", "all"],
                   help="which of the run's examples to score (all: every row of --store)")
    p.add_argument("--store", help="score on this store instead of the run's own (same FeatureConfig)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return parser


# option -> TrainConfig field, for the options that map one to one
_TRAIN_OPTIONS = ("model", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "warmup_epochs",
                  "label_smoothing", "grad_clip", "test_fold", "val_fold", "device", "amp", "channels_last",
                  "specaugment", "mixup", "time_shift", "balance", "early_stop", "seed", "workers", "pretrained")


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on a store (GPU when there is one); writes a run directory",
                       description="Train a model on a feature store. Options left out take the defaults of "
                                   "spectro.run.TrainConfig. Under torchrun (torchrun --nproc-per-node=N -m "
                                   "spectro train ...) training is data-parallel over N processes.")
    p.add_argument("--store", help="feature store (optional with --resume)")
    p.add_argument("--model", help="model name: resnet18, resnet34, resnet20, cnn, svm, ... (default resnet18)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATE-TIME)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", default=[],
                   help="model option, e.g. stem=small or dropout=0.2 (repeatable)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate (default: 0.05 sgd, 1e-3 adamw)")
    g.add_argument("--weight-decay", type=float, help="(default: 5e-4 sgd, 0.05 adamw)")
    g.add_argument("--optimizer", choices=["sgd", "adamw"])
    g.add_argument("--schedule", choices=["cosine", "onecycle", "step"])
    g.add_argument("--warmup-epochs", type=float)
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--grad-clip", type=float, metavar="NORM")
    g.add_argument("--early-stop", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation macro-F1")
    g.add_argument("--pretrained", metavar="PATH", help="start from this local checkpoint")
    g = p.add_argument_group("split")
    g.add_argument("--test-fold", type=int, metavar="K", help="default: the fold named test, else the highest")
    g.add_argument("--val-fold", type=int, metavar="K", help="default: the fold named validation, else the one "
                   "before the test fold")
    g.add_argument("--cv", action="store_true", help="cross-validate: one model per fold, each fold the test "
                   "fold once; report mean and standard deviation")
    g = p.add_argument_group("augmentation")
    g.add_argument("--specaugment", action="store_const", const=True, help="SpecAugment frequency and time masks")
    g.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup with Beta(ALPHA, ALPHA)")
    g.add_argument("--time-shift", type=float, nargs="?", const=0.1, metavar="FRACTION",
                   help="random circular time shift of up to FRACTION of the width (default 0.1)")
    g.add_argument("--balance", action="store_const", const=True, help="weight the loss by inverse class frequency")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cuda, cuda:N, mps or cpu")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="mixed precision (default: on where it pays: CUDA, MPS, CPUs with AMX)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="NHWC memory format (default: on with CUDA, on the CPU and with mixed precision)")
    g.add_argument("--workers", type=int, help="DataLoader processes (default 0 on CPU, 4 on GPU)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int)
    g.add_argument("--resume", metavar="RUN", help="continue an interrupted run (or --cv directory)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="train several models on the same split and compare them: table, tests, "
                       "figure", description="Train every model on the same split of STORE with the same seed "
                       "(finished runs in OUT are reused, interrupted ones resumed), then compare them on the same "
                       "test examples: OUT/results.csv, results.md, report.md, comparison.png. Options left out "
                       "take the defaults of spectro.run.TrainConfig.")
    p.add_argument("--store", required=True, help="feature store")
    p.add_argument("--models", required=True, help="comma-separated model names, e.g. svm,cnn,resnet18,resnet34")
    p.add_argument("--out", default="compare", help="output directory (default: compare)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fold", type=int, metavar="K", help="default: the fold named test, else the highest")
    g.add_argument("--cv", action="store_true", help="every fold the test fold once; mean ± std over folds")
    p.add_argument("--jobs", type=int, default=1, help="train this many runs at once, in separate processes")
    g = p.add_argument_group("training (every network; the svm ignores them)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--optimizer", choices=["sgd", "adamw"])
    g.add_argument("--schedule", choices=["cosine", "onecycle", "step"])
    g.add_argument("--early-stop", type=int, metavar="PATIENCE")
    g.add_argument("--specaugment", action="store_const", const=True)
    g.add_argument("--mixup", type=float, metavar="ALPHA")
    g.add_argument("--time-shift", type=float, nargs="?", const=0.1, metavar="FRACTION")
    g.add_argument("--balance", action="store_const", const=True)
    g.add_argument("--device")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction)
    g.add_argument("--seed", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress lines")


_COMPARE_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "early_stop",
                    "specaugment", "mixup", "time_shift", "balance", "device", "amp", "seed")


def _cmd_compare(args: argparse.Namespace) -> int:
    from .comparison import compare

    options = {k: getattr(args, k) for k in _COMPARE_OPTIONS if getattr(args, k) is not None}
    if args.jobs < 1:
        raise SpectroError(f"--jobs must be at least 1, got {args.jobs}")
    result = compare(args.store, args.models, args.out, test_fold=args.test_fold, cv=args.cv, jobs=args.jobs,
                     progress=not args.quiet, **options)
    print(result.markdown())
    print()
    print(result.verdict)
    print(f"spectro: report {os.path.join(result.out, 'report.md')}, figure {result.figure_path}")
    return 0 if (result.table["status"] == "ok").all() else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except SpectroError as err:
        print(f"spectro: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spectro: interrupted; nothing already written was changed", file=sys.stderr)
        return 130


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from .config import FeatureConfig
    from .ingest import preprocess

    changes = {field: getattr(args, opt) for opt, field in _FEATURE_OPTIONS.items() if getattr(args, opt) is not None}
    if args.no_db:
        changes["db"] = False
    config = FeatureConfig(**changes)
    result = preprocess(
        args.source, args.out, config=config, k_folds=args.folds, seed=args.seed, workers=args.workers,
        device=args.device, progress=not args.quiet, manifest=args.manifest, path_col=args.path_col,
        label_col=args.label_col, fold_col=args.fold_col, group_col=args.group_col,
        label_regex=args.label_regex, group_regex=args.group_regex,
    )
    print(f"spectro: {result.summary_line()}")
    if args.png:
        _show(args.out, args.png, per_class=3, seed=args.seed)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .store import open_store

    info = open_store(args.store).summary()
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
    from .plots import show_examples
    from .store import open_store

    paths = show_examples(open_store(store_path), out, per_class=per_class, seed=seed)
    print(f"spectro: wrote {len(paths)} images to {out}")


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import describe_models

    try:
        shape = tuple(int(v) for v in args.input_shape.lower().split("x"))
    except ValueError:
        raise SpectroError(f"--input-shape takes CxFxT, e.g. 1x64x101; got {args.input_shape!r}") from None
    # Grouped by family, smallest first: resnet18, 34, 50, ... rather than 101, 110, 152, 18.
    rows = sorted(describe_models(input_shape=shape, num_classes=args.num_classes),
                  key=lambda r: (r["family"], r["params"] or 0))
    if args.json:
        print(json.dumps(rows))
        return 0
    _print_table(["model", "family", "parameters", f"GFLOPs at {args.input_shape}"],
                 [[r["name"], r["family"], "-" if r["params"] is None else f"{r['params']:,}",
                   "-" if r["gflops"] is None else f"{r['gflops']:.3f}"] for r in rows])
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import TrainingInterrupted, cross_validate, train

    settings = {k: getattr(args, k) for k in _TRAIN_OPTIONS if getattr(args, k) is not None}
    if args.option:
        settings["model_options"] = dict(_parse_option(o) for o in args.option)
    try:
        if args.cv:
            res = cross_validate(args.store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
            if res is not None:
                keys = list(res.mean)
                _print_table(["fold", *keys], [[str(r["fold"])] + [f"{r[k]:.4f}" for k in keys] for r in res.folds]
                             + [["mean", *(f"{res.mean[k]:.4f}" for k in keys)],
                                ["std", *(f"{res.std[k]:.4f}" for k in keys)]])
                print(f"spectro: cross-validation in {res.path} (summary: {res.path}/cv.csv)")
            return 0
        run = train(args.store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
    except TrainingInterrupted as stop:
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
    from .evaluation import evaluate, format_report

    metrics = evaluate(args.run, args.split, args.store)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_report(metrics))
        print(f"spectro: report in {os.path.join(args.run, 'eval')}")
    return 0


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))


_COMMANDS = {"preprocess": _cmd_preprocess, "info": _cmd_info, "show": _cmd_show, "models": _cmd_models,
             "train": _cmd_train, "compare": _cmd_compare,
             "evaluate": _cmd_evaluate}
