"""The commands: each turns parsed options into one call of the ``spectro`` API and prints the result.

No pipeline logic and no defaults here (the API and :mod:`spectro.config`
hold them); importing this module imports nothing heavy: the facade loads a
submodule only when a command calls it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, Callable, Sequence

import spectro
from spectro.cli.parsers import COMPARE_EXCLUDED, FEATURE_OPTIONS, TRAINING_OPTIONS
from spectro.errors import SpectroError
from spectro.models.catalog import COMPARE_ONLY, DESCRIBE_SHAPE, list_models, model_info
from spectro.utils.names import name_depth
from spectro.utils.signals import exit_status

__all__ = ["COMMANDS"]


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The options among ``names`` that the user set (None: left to the API's default)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _store(args: argparse.Namespace) -> Any:
    """STORE given positionally or with --store (not both, unless they agree)."""
    if args.store and args.store_option and args.store != args.store_option:
        raise SpectroError(f"two stores given: {args.store} and --store {args.store_option}")
    return args.store or args.store_option


def preprocess(args: argparse.Namespace) -> int:
    settings = {field: getattr(args, opt) for opt, field in FEATURE_OPTIONS.items() if getattr(args, opt) is not None}
    if args.no_db:
        settings["db"] = False
    source = _given(args, ("manifest", "path_col", "label_col", "fold_col", "group_col", "rate_col", "label_regex",
                           "group_regex", "fold_regex"))
    run = {k: v for k, v in (("k_folds", args.folds), ("seed", args.seed), ("device", args.device)) if v is not None}
    # Settings given are used as given; what is not given is read from the data (as with config=None).
    result = spectro.preprocess(args.source, args.out, config=settings, workers=args.workers,
                                progress=not args.quiet, **run, **source)
    print(f"spectro: {result.summary_line()}")
    if args.png:
        _show(args.out, args.png, **({"seed": args.seed} if args.seed is not None else {}))
    return 0


def info(args: argparse.Namespace) -> int:
    store = spectro.open_store(args.store)
    verified = store.verify() if args.verify else None  # a changed image is a StoreDamaged line
    info = store.summary() | ({"verified_blocks": verified} if verified is not None else {})
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
    print_table(head, table + [totals])
    for name, fold in info["empty"]:
        print(f"WARNING: class {name!r} has no examples in fold {fold}: a model tested on that fold never meets it")
    cfg = info["feature_config"]
    print("features   " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    if verified is not None:
        print(f"verified   all {info['examples']} images match their checksums ({verified} blocks)")
    elif not info["checksums"]:
        print("checksums  none (written by an older spectro): rebuild with spectro preprocess to add them")
    return 0


def show(args: argparse.Namespace) -> int:
    _show(args.store, args.out, per_class=args.per_class, seed=args.seed)
    return 0


def _show(store_path: str, out: str, **options: Any) -> None:
    paths = spectro.show_examples(spectro.open_store(store_path), out, **options)
    print(f"spectro: wrote {len(paths)} images to {out}")


def models(args: argparse.Namespace) -> int:
    sized = args.size or args.input_shape is not None or args.num_classes is not None
    if sized:
        options: dict[str, Any] = {} if args.num_classes is None else {"num_classes": args.num_classes}
        if args.input_shape is not None:
            try:
                options["input_shape"] = tuple(int(v) for v in args.input_shape.lower().split("x"))
            except ValueError:
                raise SpectroError(f"--input-shape takes CxFxT, e.g. 1x64x101; got {args.input_shape!r}") from None
        rows = spectro.describe_models(**options)
    else:
        rows = [{"name": m.name, "family": m.family, "kind": m.kind, "summary": m.summary}
                for m in map(model_info, list_models())]
    rows += [{"name": m.name, "family": m.family, "kind": m.kind, "summary": m.summary}
             | ({"params": None, "gflops": None} if sized else {}) for m in COMPARE_ONLY.values()]
    # Grouped by family, smallest first: resnet18, 34, 50, ... rather than 101, 110, 152, 18.
    rows = sorted(rows, key=lambda r: (r["family"], name_depth(r["name"])))
    if args.json:
        print(json.dumps(rows))
        return 0
    if sized:
        shape = args.input_shape or "x".join(map(str, DESCRIBE_SHAPE))
        print_table(["model", "family", "parameters", f"GFLOPs at {shape}"],
                    [[r["name"], r["family"], "-" if r["params"] is None else f"{r['params']:,}",
                      "-" if r["gflops"] is None else f"{r['gflops']:.3f}"] for r in rows])
    else:
        print_table(["model", "family", "what it is"], [[r["name"], r["family"], r["summary"]] for r in rows],
                    align_left=True)
        print("spectro: --size adds parameters and GFLOPs")
    return 0


def train(args: argparse.Namespace) -> int:
    settings = _given(args, TRAINING_OPTIONS)
    if args.option:
        settings["model_options"] = parse_model_options(args.option)[None]
    if args.model is not None:
        settings["model"] = args.model
    store = _store(args)
    try:
        if args.cv:
            res = spectro.cross_validate(store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
            if res is not None:
                keys = list(res.mean)
                print_table(["fold", *keys], [[str(r["fold"])] + [f"{r[k]:.4f}" for k in keys] for r in res.folds]
                            + [["mean", *(f"{res.mean[k]:.4f}" for k in keys)],
                               ["std", *(f"{res.std[k]:.4f}" for k in keys)]])
                print(f"spectro: cross-validation in {res.path} (summary: {res.path}/cv.csv)")
            return 0
        run = spectro.train(store, out=args.out, resume=args.resume, progress=not args.quiet, **settings)
    except spectro.TrainingInterrupted as stop:
        print(f"spectro: interrupted: {stop}", file=sys.stderr)
        return exit_status(stop.signum)  # 143 for SIGTERM, 130 for Ctrl-C
    if run is not None:
        t = run.test_metrics
        found = run.classifier.describe_fit() or f"best epoch {run.info.get('best_epoch')}"  # an SVM has no epochs
        line = f"spectro: run {run.path} ({run.status}, {found})"
        if t:
            line += (f": test accuracy {t['accuracy']:.4f}, balanced accuracy {t['balanced_accuracy']:.4f}, "
                     f"macro-F1 {t['macro_f1']:.4f} on {t['n']} examples")
        warnings = [w["text"] for w in run.info.get("warnings") or []]
        print(line + (f"; WARNING: {'; '.join(warnings)}" if warnings else ""))
    return 0


def parse_model_options(texts: Sequence[str], models: Sequence[str] | None = None) -> dict[Any, dict[str, Any]]:
    """``--option`` values, ``KEY=VALUE`` or (with ``models``: compare) ``MODEL:KEY=VALUE``, as
    ``{model: {key: value}}``; a bare KEY=VALUE is under None (train), or under every one of ``models``.

    A VALUE that is JSON (``0.2``, ``true``, ``[1, 2]``) is parsed, any other is a string.
    """
    shared: dict[str, Any] = {}
    own: dict[str, dict[str, Any]] = {}
    form = "[MODEL:]KEY=VALUE" if models is not None else "KEY=VALUE"
    for text in texts:
        key, sep, value = text.partition("=")
        model, colon, name = key.rpartition(":") if models is not None else ("", "", key)
        if not sep or not name or (colon and not model):
            raise SpectroError(f"--option takes {form}, got {text!r}")
        if colon and model not in models:
            raise SpectroError(f"--option {text!r} is for {model!r}, which is not compared "
                               f"(--models {','.join(models)})")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        (own.setdefault(model, {}) if colon else shared)[name.replace("-", "_")] = parsed
    if models is None:
        return {None: shared}
    return {m: {**shared, **own.get(m, {})} for m in models if shared or m in own}


def compare(args: argparse.Namespace) -> int:
    options = _given(args, [o for o in TRAINING_OPTIONS if o not in COMPARE_EXCLUDED])
    trained = [m for m in (m.strip() for m in args.models.split(",")) if m and m not in COMPARE_ONLY]
    model_options = parse_model_options(args.option, trained) if args.option else None
    try:
        with warnings.catch_warnings():  # a failed model's UserWarning: the verdict printed below says it
            warnings.filterwarnings("ignore", message="compare: ", category=UserWarning)
            result = spectro.compare(_store(args), args.models, args.out, test_fold=args.test_fold, cv=args.cv,
                                     seeds=args.seeds, jobs=args.jobs, progress=not args.quiet,
                                     train_sizes=args.train_sizes, model_options=model_options, **options)
    except spectro.TrainingInterrupted as stop:
        print(f"spectro: interrupted: {stop}", file=sys.stderr)
        return exit_status(stop.signum)
    ok = bool((result.table["status"] == "ok").all())
    if args.train_sizes is not None:
        print(result.markdown())
        print(f"spectro: learning curve {os.path.join(result.out, 'curve.png')}, each size's report in "
              f"{os.path.join(result.out, 'size-F', 'report.md')}")
        curve_png = os.path.join(result.out, "curve.png")
        result = result.comparisons[max(result.comparisons)]  # all of the training groups
    else:
        curve_png = None
        print(result.markdown())
        print()
        print(result.verdict)
        print(f"spectro: report {os.path.join(result.out, 'report.md')}, figure {result.figure_path}")
    if args.explain and result.predictions:
        shown = []
        if curve_png is not None:
            shown.append(("the learning curve: test accuracy against training examples", curve_png))
        why = result.explain(figures=shown, progress=not args.quiet)
        print(f"spectro: explained in {why.report_path}")
    return 0 if ok else 1


def explain(args: argparse.Namespace) -> int:
    result = spectro.explain_run(args.run, store=args.store, out=args.out, examples=args.examples,
                                 method=args.projection, progress=not args.quiet,
                                 device=None if args.device in (None, "auto") else args.device)
    print(result.table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"spectro: report {result.report_path}, figures in {result.out}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    metrics = spectro.evaluate(args.run, args.split, args.store, write=not args.no_write)
    if args.json:
        print(json.dumps(metrics, allow_nan=False))  # evaluate gives null, never NaN
    else:
        print(spectro.format_report(metrics))
        if not args.no_write:
            print(f"spectro: report in {os.path.join(args.run, 'eval')}")
    return 0


def predict(args: argparse.Namespace) -> int:
    predictor = spectro.load(args.run, device=None if args.device in (None, "auto") else args.device,
                             model=args.model)
    paths = spectro.find_inputs(args.inputs, required=True, images=predictor.feature_config.is_image)
    options = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    results = predictor.predict_files(paths, window=args.window, hop=args.hop, workers=args.workers,
                                      sample_rate=args.sample_rate,
                                      progress=not args.quiet and args.format == "table", **options)
    summary = spectro.write_predictions(results, sys.stdout, fmt=args.format, top_k=args.top_k,
                                        png=args.png, predictor=predictor)
    for line in summary.messages:
        print(f"spectro: {line}", file=sys.stderr)
    return 1 if summary.failed else 0


def export(args: argparse.Namespace) -> int:
    result = spectro.export_onnx(args.run, args.out, **({"opset": args.opset} if args.opset is not None else {}))
    print(f"spectro: wrote {', '.join(result.files)} (opset {result.opset}); ONNX Runtime vs {result.against} on "
          f"{result.checked}: largest absolute difference {result.max_abs_diff:.2e} (limit {result.tolerance:g})")
    return 0


def print_table(head: list[str], rows: list[list[str]], *, align_left: bool = False) -> None:
    """Columns padded to their widest cell; the first (and with ``align_left`` every) column left-aligned."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        cells = [c.ljust(w) if i == 0 or align_left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells).rstrip())


def doctor(args: argparse.Namespace) -> int:
    report = spectro.system_report(args.device)
    print(json.dumps(report, indent=2) if args.json else spectro.format_system_report(report))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "preprocess": preprocess, "info": info, "show": show, "models": models, "train": train, "compare": compare,
    "explain": explain, "evaluate": evaluate, "predict": predict, "export": export, "doctor": doctor,
}
