"""Accuracy on unseen groups: spectro against the script a practitioner writes, on the same folds.

The folds are leave-groups-out: the store's folds, assigned by ``spectro.preprocess``
with ``StratifiedGroupKFold`` over the groups (voices of data/digits, sample
sets of the instruments data set), so a test fold's groups never train. Both
sides use exactly that fold of every file: the script reads the store's files
with librosa.

The script (what issue 8 compares against), per test fold:

* ``script-svc``: librosa log-mel (64 bands, librosa's n_fft 2048 and hop 512, at
  the files' own rate, every clip padded/cropped to the longest clip, at most
  10 s; ``power_to_db(ref=np.max)``) -> per-band mean and std -> StandardScaler
  -> RBF SVC (gamma="scale"), C in {0.1, 1, 10, 100} chosen by a 3-fold
  StratifiedGroupKFold grid search on the training folds (fewer folds when
  they hold fewer groups).
* ``script-resnet18``: torchvision's resnet18 with a 1-channel conv1 on the same
  log-mels (standardised by the training folds' mean and std), Adam (lr 1e-3),
  batch 32, ``--epochs`` epochs, no validation: the last epoch is scored.

spectro, per test fold: ``spectro.train(store, model, out, test_fold=k,
epochs=..., **settings)`` with its defaults (validation and all), scored on
the test fold as ``spectro train`` reports it. A model spec is a model name
followed by ``+flag`` switches (any order):

=============  ======================================================
``small``      model option ``stem="small"`` (3x3/1 stem, no max-pool)
``specaug``    ``specaugment=True``
``mixup``      ``mixup=0.2``
``shift``      ``time_shift=0.1``
``ls``         ``label_smoothing=0.1``
``noval``      ``val_fraction=0``: no validation hold-out, last epoch kept
``holdout``    ``min_holdout=0``: a hold-out however small (before issue 20)
``gaineq``     ``gain_eq=6``: random gain and EQ of up to 6 dB
``pct``, ``delta``, ``dct``, ``pca``  (svm) a fixed front-end: ``stats`` and this part
``fe0`` ... ``fe4``  (svm) the fixed front-end ``FRONTENDS[i]`` of
               spectro.dataset.summaries instead of the inner-CV choice
``all``        (svm) fit ``spectro.make_classifier("svm")`` on every
               non-test row (normalised by their per-frequency
               statistics, with their groups) instead of
               ``spectro.train``, whose split holds out a validation
               fold the SVM does not need
=============  ======================================================

e.g. ``resnet18+small+specaug``, ``svm+delta+dct``.

``ensemble`` is the mean of the test probabilities of spectro's ``svm``, ``cnn``
and ``resnet18`` (as ``spectro compare --models ...,ensemble`` scores it): no
extra training when those ran.

Every spectro run's test probabilities are kept in
``--cache/probs/<set>-<features>-<store fingerprint>-<defaults stamp>/``, so a
re-run (another model list, more seeds, a stopped run started again) reuses
every finished fold; a changed default or store starts afresh.

Features: ``--features default`` builds the store as ``spectro preprocess`` does
when nothing is set: rate, STFT and duration read from the data (what a user gets); ``--features matched`` with the
script's own settings (the files' rate, 32 ms / 10 ms, the longest clip), so
only the models differ; ``--features pcen`` as ``default`` with PCEN instead of dB
(``spectro preprocess --compression pcen``).

Data sets: ``digits`` (bundled), ``instruments``, ``voices``, ``sfx``, ``percussion``,
``commands``, ``commands-xengine`` and ``notes`` (rendered into ``--cache`` from Debian
packages by the scripts in data/; see benchmarks/datasets.py, which also names each set's
number of folds and packages; ``--install`` apt-get installs them first). A set that
cannot be made exits 0 with the reason.
``--seeds 0,1`` runs every model on every fold once per seed.

Usage::

    python benchmarks/bench_accuracy.py --dataset digits --quick
    nice python benchmarks/bench_accuracy.py --dataset instruments --epochs 15 \\
        --models script-svc,script-resnet18,svm,cnn,resnet18 --csv results.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
import torchvision
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

import spectro
from spectro.dataset.summaries import FRONTENDS
from spectro.models.reference import HOP, N_FFT, ReferenceClassifier, script_logmels
from datasets import DEFAULT_FOLDS, dataset_source, install  # benchmarks/datasets.py
from spectro.dataset.feed import norm_stats, normalise
from spectro.training.defaults import defaults_stamp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "spectro-bench")
DEFAULT_MODELS = "script-svc,script-resnet18,svm,cnn,resnet18"
QUICK_MODELS = "script-svc,script-resnet18,svm,cnn"
FLAGS = {
    "small": {"model_options": {"stem": "small"}},
    "specaug": {"specaugment": True},
    "mixup": {"mixup": 0.2},
    "shift": {"time_shift": 0.1},
    "ls": {"label_smoothing": 0.1},
    "noval": {"val_fraction": 0.0},
    "holdout": {"min_holdout": 0},  # the hold-out of before issue 20, however small
    "gaineq": {"gain_eq": 6.0},
}
ENSEMBLE = ("svm", "cnn", "resnet18")
SVM_PARTS = ("pct", "delta", "dct", "pca")
MAX_SECONDS = 10.0


# ---------------------------------------------------------------------------
# Data sets and the store
# ---------------------------------------------------------------------------

def clip_info(paths: list[str]) -> tuple[int, float]:
    """(common sample rate, longest duration in seconds, capped) of the files."""
    infos = [sf.info(p) for p in paths]
    rates = sorted({i.samplerate for i in infos})
    return rates[0], min(MAX_SECONDS, max(i.duration for i in infos))


def build_store(name: str, features: str, folds: int, cache: str) -> spectro.Store:
    source, options = dataset_source(name, cache)
    out = os.path.join(cache, f"store-{name}-{features}-k{folds}")
    if features == "default":
        config = None  # what a user who sets nothing gets: rate, STFT and duration read from the data
    elif features == "pcen":
        config = {"compression": "pcen"}  # the rest read from the data, as with default
    else:
        paths = [os.path.join(source, f) for f in _audio_files(source)]
        rate, longest = clip_info(paths)
        n_fft, hop = script_stft(rate)
        config = spectro.FeatureConfig(sample_rate=rate, duration=longest, crop="start", n_fft=n_fft,
                                       hop_length=hop, n_mels=64)
    spectro.preprocess(source, out, config=config, k_folds=folds, seed=0, progress=False, **options)
    return spectro.open_store(out)


def _audio_files(source: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), source) for d, _, fs in os.walk(source)
                  for f in fs if f.endswith((".flac", ".wav", ".ogg")))


def store_paths(store: spectro.Store) -> list[str]:
    base = store.meta["source"]["path"]
    base = base if os.path.isdir(base) else os.path.dirname(base)
    return [p if os.path.isabs(p) else os.path.join(base, p) for p in store.paths]


# ---------------------------------------------------------------------------
# The script a practitioner writes
# ---------------------------------------------------------------------------

def script_stft(rate: int) -> tuple[int, int]:
    """n_fft of about 32 ms (a power of two) and a 10 ms hop at ``rate`` (``--features matched``)."""
    return 2 ** int(round(math.log2(0.032 * rate))), rate // 100


#: The script's own log-mels: librosa's defaults (issue 20's script), at the files' rate.
SCRIPT_N_FFT, SCRIPT_HOP = N_FFT, HOP


def script_svc(X: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray, test: np.ndarray,
               seed: int) -> np.ndarray:
    """The script's SVC: spectro's ``reference`` model (spectro/models/reference.py), one copy of the code."""
    clf = ReferenceClassifier(seed=seed).fit(X[train][:, None], y[train], groups=groups[train])
    return clf.predict(X[test][:, None])


def script_resnet18(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, *, epochs: int,
                    seed: int, classes: int) -> np.ndarray:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    mean, std = X[train].mean(), X[train].std()
    xt = torch.from_numpy((X[train] - mean) / std).unsqueeze(1)  # (N, 1, 64, T)
    yt = torch.from_numpy(y[train])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        xs = torch.from_numpy((X[test] - mean) / std).unsqueeze(1)
        return torch.cat([model(b).argmax(1) for b in xs.split(64)]).numpy()


# ---------------------------------------------------------------------------
# spectro
# ---------------------------------------------------------------------------

def spectro_settings(spec: str) -> tuple[str, dict]:
    """A model spec (``resnet18+small+specaug``) -> (model name, spectro.train settings)."""
    model, *flags = spec.split("+")
    settings: dict = {}
    parts = ["stats"]
    for flag in flags:
        if model == "svm" and flag == "all":
            settings["all_rows"] = True
        elif model == "svm" and flag in SVM_PARTS:
            parts.append(flag)
        elif model == "svm" and flag.startswith("fe") and flag[2:].isdigit() and int(flag[2:]) < len(FRONTENDS):
            settings["model_options"] = {**settings.get("model_options", {}), "frontend": FRONTENDS[int(flag[2:])]}
        elif flag in FLAGS:
            for k, v in FLAGS[flag].items():
                settings[k] = {**settings.get(k, {}), **v} if isinstance(v, dict) else v
        else:
            raise SystemExit(f"bench_accuracy: unknown flag {flag!r} in {spec!r}; "
                             f"valid: {', '.join([*FLAGS, *SVM_PARTS])}, fe0-fe{len(FRONTENDS) - 1}")
    if len(parts) > 1:
        settings["model_options"] = {**settings.get("model_options", {}), "features": "+".join(parts)}
    return model, settings


def spectro_proba(store: spectro.Store, spec: str, fold: int, *, epochs: int, seed: int, workdir: str,
                  probs: str) -> tuple[np.ndarray, float]:
    """(test probabilities [shape=(test, classes)], seconds the run took) of a spectro spec on ``fold``.

    Reused from ``probs`` when that run finished before (with the seconds it took then); the
    ensemble averages its members' probabilities and takes no time of its own.
    """
    if spec == "ensemble":
        parts = [spectro_proba(store, m, fold, epochs=epochs, seed=seed, workdir=workdir, probs=probs)[0]
                 for m in ENSEMBLE]
        return np.mean(parts, axis=0), 0.0
    model, _ = spectro_settings(spec)
    cached = os.path.join(probs, f"{spec}-e{epochs if model != 'svm' else 0}-seed{seed}-fold{fold}")
    if os.path.isfile(cached + ".npz"):
        with np.load(cached + ".npz") as z:
            RUN_INFO[(spec, seed, fold)] = json.loads(str(z["info"])) if "info" in z else {}
            return z["proba"], float(z["seconds"])
    t0 = time.perf_counter()
    p, info = run_spectro(store, spec, fold, epochs=epochs, seed=seed, workdir=workdir)
    seconds = time.perf_counter() - t0
    RUN_INFO[(spec, seed, fold)] = info
    np.savez(cached + ".tmp.npz", proba=p, seconds=seconds, info=json.dumps(info))
    os.replace(cached + ".tmp.npz", cached + ".npz")  # whole or absent: a stopped run leaves no half file
    return p, seconds


#: (spec, seed, fold) -> what its run recorded: warnings (codes), best and last epoch, the SVM's front-end.
RUN_INFO: dict[tuple[str, int, int], dict] = {}


def run_spectro(store: spectro.Store, spec: str, fold: int, *, epochs: int, seed: int, workdir: str) -> np.ndarray:
    """Train ``spec`` with fold ``fold`` held out; its test probabilities in the store's class order."""
    model, settings = spectro_settings(spec)
    test = np.flatnonzero(store.folds == fold)
    if settings.pop("all_rows", False):
        return svm_all_rows(store, store.features, fold, seed=seed, **settings.get("model_options", {})), {}
    if model != "svm":
        settings.update(epochs=epochs, device="cpu")
    out = os.path.join(workdir, f"{spec}-seed{seed}-fold{fold}")
    run = spectro.train(store, model, out, test_fold=fold, seed=seed, progress=False, **settings)
    info = {"warnings": [w.get("code") for w in run.info.get("warnings") or []],
            "best_epoch": run.info.get("best_epoch"), "epochs_done": run.info.get("epochs_done"),
            "frontend": getattr(run.classifier, "frontend_", None)}
    return _in_store_order(run.predict_proba(store.features[test]), run.labels, store), info


def svm_all_rows(store: spectro.Store, features, fold: int, *, seed: int, **options) -> np.ndarray:
    """``make_classifier("svm")`` fitted on every non-test row of ``features`` (the store's images, or a
    variant of them row for row), normalised by their per-frequency statistics, with their groups; its
    test probabilities in the store's class order."""
    train, test = np.flatnonzero(store.folds != fold), np.flatnonzero(store.folds == fold)
    mean, std = norm_stats(features, train)
    clf = spectro.make_classifier("svm", seed=seed, classes=list(store.labels), **options)
    clf.fit(normalise(features[train], mean, std), np.asarray(store.labels, dtype=object)[store.y[train]],
            groups=store.groups[train])
    return _in_store_order(clf.predict_proba(normalise(features[test], mean, std)), clf.classes_, store)


def _in_store_order(p: np.ndarray, classes, store: spectro.Store) -> np.ndarray:
    cols = [list(map(str, classes)).index(c) for c in store.labels]
    return np.asarray(p, dtype=np.float64)[:, cols]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=tuple(DEFAULT_FOLDS), default="digits")
    p.add_argument("--features", choices=("default", "matched", "pcen"), default="default")
    p.add_argument("--folds", type=int, default=None,
                   help="folds of the store (default per set: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_FOLDS.items()) + ")")
    p.add_argument("--only-folds", default=None, help="comma-separated test folds to run (default: all)")
    p.add_argument("--epochs", type=int, default=spectro.TrainConfig().epochs,
                   help="epochs of every network, the script's too (default: spectro's default recipe, %(default)s)")
    p.add_argument("--models", default=None, help=f"comma-separated specs (default {DEFAULT_MODELS})")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; every model and fold runs once per seed")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 2 test folds, no resnet18")
    p.add_argument("--cache", default=DEFAULT_CACHE, help="data sets and stores are built here once")
    p.add_argument("--csv", default=None, help="append per-fold rows here, as each fold ends")
    p.add_argument("--install", action="store_true",
                   help="apt-get install the Debian packages the set is rendered from, if it is not in --cache yet")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (1 trains faster on a CPU that other processes keep busy)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folds_k = args.folds or DEFAULT_FOLDS[args.dataset]
    seeds = [int(v) for v in args.seeds.split(",")]
    epochs = 2 if args.quick else args.epochs
    specs = (args.models or (QUICK_MODELS if args.quick else DEFAULT_MODELS)).split(",")
    for spec in specs:
        if not spec.startswith("script-") and spec != "ensemble":
            spectro_settings(spec)  # a bad spec fails before any work
    os.makedirs(args.cache, exist_ok=True)

    if args.install:
        install(args.dataset)
    store = build_store(args.dataset, args.features, folds_k, args.cache)
    test_folds = store.fold_ids
    if args.only_folds:
        test_folds = [int(f) for f in args.only_folds.split(",")]
    elif args.quick:
        test_folds = test_folds[:2]
    y, groups = store.y, store.groups
    print(f"bench_accuracy: {args.dataset}, {len(y)} clips, {len(store.labels)} classes, "
          f"{len(set(groups))} groups, folds {store.fold_ids} (testing {test_folds}), image "
          f"{store.image_shape}, features {args.features} ({store.config.sample_rate} Hz, "
          f"{store.config.duration:g} s, n_fft {store.config.n_fft}, hop {store.config.hop_length}), "
          f"epochs {epochs}", flush=True)
    for f in store.fold_ids:
        print(f"  fold {f}: {', '.join(sorted(set(groups[store.folds == f])))}")
    X_script = None
    if any(s.startswith("script-") for s in specs):
        t0 = time.perf_counter()
        # Keyed by the files in store order: two sets of the same files (commands, commands-xengine) share it.
        paths = store_paths(store)
        key = hashlib.sha256("\n".join(os.path.relpath(p, args.cache) for p in paths).encode()).hexdigest()[:12]
        cached = os.path.join(args.cache, f"script-logmels-{key}-{SCRIPT_N_FFT}-{SCRIPT_HOP}.npy")
        if os.path.isfile(cached):
            X_script = np.load(cached)
        else:
            X_script = script_logmels(paths)
            np.save(cached, X_script)
        print(f"  script log-mels {X_script.shape} in {time.perf_counter() - t0:.1f} s", flush=True)

    probs = os.path.join(args.cache, "probs", f"{args.dataset}-{args.features}-{store.config.fingerprint()}-"
                         f"{defaults_stamp()}")
    os.makedirs(probs, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for spec, seed in ((sp, se) for sp in specs for se in seeds):
            for fold in test_folds:
                train, test = np.flatnonzero(store.folds != fold), np.flatnonzero(store.folds == fold)
                t0, seconds = time.perf_counter(), None
                if spec == "script-svc":
                    pred = script_svc(X_script, y, groups, train, test, seed)
                elif spec == "script-resnet18":
                    pred = script_resnet18(X_script, y, train, test, epochs=epochs, seed=seed,
                                           classes=len(store.labels))
                else:
                    p, seconds = spectro_proba(store, spec, fold, epochs=epochs, seed=seed, workdir=workdir,
                                               probs=probs)
                    pred = p.argmax(axis=1)
                if seconds is None:
                    seconds = time.perf_counter() - t0
                row = {"dataset": args.dataset, "features": args.features, "model": spec, "seed": seed, "fold": fold,
                       "accuracy": accuracy_score(y[test], pred),
                       "macro_f1": f1_score(y[test], pred, average="macro", labels=np.unique(y)),
                       "seconds": seconds, "epochs": epochs}
                rows.append(row)
                if args.csv:  # row by row: a run stopped half-way keeps what it measured
                    with open(args.csv, "a", newline="") as f:
                        w = csv.DictWriter(f, fieldnames=list(row))
                        if f.tell() == 0:
                            w.writeheader()
                        w.writerow(row)
                info = RUN_INFO.get((spec, seed, fold), {})
                if args.csv and info:  # beside the rows: what each spectro run recorded (flags, front-end)
                    side = args.csv[:-4] + "-runs.csv" if args.csv.endswith(".csv") else args.csv + "-runs"
                    with open(side, "a", newline="") as f:
                        w = csv.DictWriter(f, fieldnames=["dataset", "features", "model", "seed", "fold", "warnings",
                                                          "best_epoch", "epochs_done", "frontend"])
                        if f.tell() == 0:
                            w.writeheader()
                        w.writerow({"dataset": args.dataset, "features": args.features, "model": spec, "seed": seed,
                                    "fold": fold, **info, "warnings": ",".join(info.get("warnings") or [])})
                extra = "".join(f"  {k} {v}" for k, v in info.items() if v not in (None, [], ""))
                print(f"  {spec:28s} seed {seed} fold {fold}: acc {row['accuracy']:.3f}  F1 {row['macro_f1']:.3f}  "
                      f"{seconds:6.1f} s{extra}", flush=True)
    print_table(rows, test_folds)
    return 0


def print_table(rows: list[dict], folds: list[int]) -> None:
    """Per model: accuracy per fold (mean over seeds), then mean and std over every fold and seed."""
    specs = list(dict.fromkeys(r["model"] for r in rows))
    head = f"{'model':28s} " + " ".join(f"{'f' + str(f):>5s}" for f in folds) + \
        "   acc mean±std    F1 mean±std   s/fold"
    print("\n" + head + "\n" + "-" * len(head))
    best_script = max((statistics.mean(r["accuracy"] for r in rows if r["model"] == s)
                       for s in specs if s.startswith("script-")), default=None)
    for spec in specs:
        rs = [r for r in rows if r["model"] == spec]
        acc = [r["accuracy"] for r in rs]
        f1 = [r["macro_f1"] for r in rs]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        per_fold = [statistics.mean(r["accuracy"] for r in rs if r["fold"] == f) for f in folds]
        line = (f"{spec:28s} " + " ".join(f"{a:5.3f}" for a in per_fold)
                + f"   {statistics.mean(acc):.3f}±{sd(acc):.3f}  {statistics.mean(f1):.3f}±{sd(f1):.3f}"
                + f"  {statistics.mean(r['seconds'] for r in rs):7.1f}")
        if best_script is not None and not spec.startswith("script-"):
            line += f"   {100 * (statistics.mean(acc) - best_script):+.1f} pts vs script's best"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
