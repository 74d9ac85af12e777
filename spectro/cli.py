"""The command line: parse, call the Python API, print. No pipeline logic here.

Feature options default to ``None`` so that the only defaults are those of
:class:`~spectro.config.FeatureConfig`; a user error (:class:`SpectroError`)
is printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
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
    return parser


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


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))


_COMMANDS = {"preprocess": _cmd_preprocess, "info": _cmd_info, "show": _cmd_show}
