"""``compare``: several models on the same split of one store, one table, one figure, one report.

(The module is ``comparison``, not ``compare``: a submodule named like the
function would shadow ``spectro.compare`` once imported, as with
``training`` and ``evaluation``.)

Every model trains through :func:`spectro.train` on the same folds with the
same seed; each (model, test fold) is an independent run directory
``OUT/<model>-<options hash>/fold<k>/``, so

* a finished run with the same store, model and options is reused, an
  interrupted one resumed, and other options land in another directory
  (nothing finished is ever overwritten);
* ``jobs=N`` trains N of them side by side in separate processes, and past
  one machine each is a plain ``spectro train`` invocation any scheduler can
  run.

Then every model is scored on the same test examples (under ``cv``: the
pooled out-of-fold predictions, every example tested exactly once) and
compared with the best one (:mod:`spectro.metrics.stats`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import torch

from spectro.comparison.report import format_markdown, report_markdown
from spectro.config import COMPARE_JOBS, COMPARE_OUT, RUNTIME_FIELDS, TrainConfig
from spectro.dataset.splits import default_folds, rows_of_ids
from spectro.errors import SpectroError, first_line
from spectro.metrics.scores import compute_metrics, metrics_from_confusion
from spectro.metrics.stats import bootstrap_weights, holm, mcnemar_exact, paired_bootstrap_diff, percentile_interval
from spectro.models.catalog import list_models
from spectro.plots.comparison import plot_comparison
from spectro.signals.store import Store, open_store
from spectro.training.classifier import classifier_class
from spectro.training.run import load_run, read_split, run_status
from spectro.training.train import train
from spectro.utils.console import note, printer
from spectro.utils.files import read_json, write_json, write_text

__all__ = ["compare", "Comparison", "Predictions", "ALPHA"]

ALPHA = 0.05  # significance level of the table's marks
N_BOOT = 2000  # bootstrap resamples (intervals move by < 0.005 between seeds at this size)
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")
COMPARE_FORMAT = "spectro-compare-1"
# Options compare sets itself (the split) or that describe where a run runs, not what it computes.
_NOT_OPTIONS = {"model", "test_fold", "val_fold"}


@dataclass
class Predictions:
    """One model's predictions on the compared test examples, sorted by store row.

    Attributes
    ----------
    rows : np.ndarray [shape=(N,), dtype=int64]
        Store row numbers.
    ids : np.ndarray [shape=(N,), dtype=object]
        Store example ids.
    y_true, y_pred : np.ndarray [shape=(N,), dtype=int64]
        Label ids (index ``labels``).
    proba : np.ndarray [shape=(N, C), dtype=float32]
    fold : np.ndarray [shape=(N,), dtype=int64]
        The test fold (run) each prediction came from.
    """

    rows: np.ndarray
    ids: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    fold: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.y_true == self.y_pred


@dataclass
class Comparison:
    """What :func:`compare` returns (and writes into ``out``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (columns: see ``OUT/results.csv``).
    predictions : dict of str to Predictions
        Per model that finished.
    labels : list of str
    best : str or None
        The model with the highest accuracy (None if every model failed).
    verdict : str
        One sentence: which model is best and whether the runner-up is distinguishable.
    out : str
    runs : dict of str to list of str
        Run directories of each model (one per test fold).
    """

    table: pd.DataFrame
    predictions: dict[str, Predictions]
    labels: list[str]
    best: Optional[str]
    verdict: str
    out: str
    runs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def figure_path(self) -> str:
        return os.path.join(self.out, "comparison.png")

    def confusion(self, model: str) -> np.ndarray:
        """Counts [shape=(C, C)] of ``model``: rows true class, columns predicted."""
        p, c = self.predictions[model], len(self.labels)
        return np.bincount(p.y_true * c + p.y_pred, minlength=c * c).reshape(c, c)

    def figure(self, path: Optional[str] = None) -> Any:
        """The comparison figure (a matplotlib Figure; a notebook shows it inline), saved to ``path`` if given."""
        cv = bool(self.table["accuracy_std"].notna().any())
        return plot_comparison(self.table, {m: self.confusion(m) for m in self.predictions}, self.labels, path=path,
                               cv=cv)

    def markdown(self) -> str:
        """The table as Markdown (what ``results.md`` holds and the CLI prints)."""
        return format_markdown(self.table)


@dataclass(frozen=True)
class _Job:
    model: str
    test_fold: int
    run_dir: str
    store: str
    config: dict
    threads: int = 0
    progress: bool = False


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def compare(store: Union[str, Store], models: Union[str, list[str]], out: str = COMPARE_OUT, *,
            test_fold: Optional[int] = None, cv: bool = False, jobs: int = COMPARE_JOBS, progress: bool = True, model_options: Optional[dict] = None,
            timing: bool = True, **training_options: Any) -> Comparison:
    """Train ``models`` on the same split of ``store`` and compare them on the same test examples.

    Parameters
    ----------
    store : str or Store
    models : list of str or str
        Registered model names (a comma-separated string is split).
    out : str
        Output directory: one sub-directory of runs per model, and
        ``results.csv``, ``results.md``, ``report.md``, ``comparison.png``,
        ``compare.json``.
    test_fold : int, optional
        The held-out fold (default: as :func:`spectro.train`). Not with ``cv``.
    cv : bool
        One run per fold and model; metrics are mean and std over folds, the
        tests use the pooled out-of-fold predictions.
    jobs : int
        Train this many runs at once in separate processes (spawned), the
        CPU threads divided among them.
    progress : bool
        Progress lines on stderr.
    model_options : dict, optional
        ``{model name: {option: value}}``, e.g. ``{"resnet18": {"stem": "small"}}``.
    timing : bool
        Measure inference milliseconds per clip (batch 1 and 64).
    **training_options
        Any :class:`~spectro.training.run.TrainConfig` field (epochs, batch_size, lr,
        specaugment, mixup, seed, device, ...), given to every network; the
        SVM ignores those of networks and says so once.

    Returns
    -------
    Comparison

    Raises
    ------
    SpectroError
        An unknown model name or option, a store with fewer than two classes
        (or folds for ``cv``), a test fold it lacks, or an ``out`` holding
        runs of another store. No run is deleted.
    """
    say = printer(progress, "compare: ")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SpectroError(f"--jobs must be a whole number of at least 1, got {jobs!r}")
    st = store if isinstance(store, Store) else open_store(store)
    names = _parse_models(models)
    _check_options(training_options, model_options or {}, names)
    _check_store(st, cv, test_fold)
    identity = _store_identity(st)
    _check_out(out, st, identity)
    folds = st.fold_ids if cv else [default_folds(st, test_fold)[0]]

    for m in names:  # said even when quiet: such a run differs from what was asked
        ignored = sorted(k for k in training_options if k in classifier_class(m).ignores and k not in RUNTIME_FIELDS)
        if ignored:
            note(f"the {m} ignores {', '.join(ignored)} (settings of networks)", prefix="compare: ")
    configs = {m: _config(m, training_options, (model_options or {}).get(m, {})) for m in names}
    run_dirs = {m: os.path.join(out, f"{m}-{_options_hash(configs[m])}") for m in names}
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "compare.json"), {
        "format": COMPARE_FORMAT, "store": identity, "models": names, "cv": cv, "folds": folds,
        "options": training_options, "runs": {m: os.path.basename(d) for m, d in run_dirs.items()}})

    store_path = os.path.abspath(st.path)
    all_jobs = [_Job(m, k, os.path.join(run_dirs[m], f"fold{k}"), store_path,
                     configs[m].replace(test_fold=k, val_fold=default_folds(st, k)[1]).to_dict())
                for m in names for k in folds]
    t0 = time.perf_counter()
    outcomes = _run_jobs(all_jobs, jobs, progress, say)
    train_wall = time.perf_counter() - t0
    _record_seconds(out, outcomes)

    t1 = time.perf_counter()
    clock: dict[str, float] = {}
    comparison = _assemble(st, names, folds, all_jobs, outcomes, out, cv=cv, timing=timing, clock=clock)
    write_json(os.path.join(out, "compare.json"), {
        **read_json(os.path.join(out, "compare.json")), "best": comparison.best, "verdict": comparison.verdict,
        "seconds": {"training_wall": train_wall, "compare": time.perf_counter() - t1, **clock}})
    say(f"compared {len(names)} models in {time.perf_counter() - t0:.1f} s "
        f"(training {train_wall:.1f} s); report in {os.path.join(out, 'report.md')}")
    return comparison


# ---------------------------------------------------------------------------
# Checks: everything is refused before anything is trained
# ---------------------------------------------------------------------------

def _parse_models(models: Union[str, list[str]]) -> list[str]:
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m.strip()]
    names = list(dict.fromkeys(names))  # first occurrence wins, order kept
    if not names:
        raise SpectroError("compare needs at least one model, e.g. --models svm,cnn,resnet18")
    known = set(list_models())
    unknown = [m for m in names if m not in known]
    if unknown:
        raise SpectroError(f"unknown model {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return names


def _check_options(options: dict, model_options: dict, names: list[str]) -> None:
    fields = set(TrainConfig.__dataclass_fields__) - _NOT_OPTIONS - {"model_options"}
    bad = sorted(set(options) - fields)
    if bad:
        raise SpectroError(f"unknown or misplaced training option(s) for compare: {bad} "
                           "(the split is --test-fold or --cv; model options go in model_options)")
    stray = sorted(set(model_options) - set(names))
    if stray:
        raise SpectroError(f"model_options names models that are not compared: {stray}")


def _check_store(st: Store, cv: bool, test_fold: Optional[int]) -> None:
    classes = np.unique(st.y).size
    if classes < 2:
        raise SpectroError(f"store {st.path} has {classes} class(es); comparing classifiers needs two or more")
    if cv:
        if test_fold is not None:
            raise SpectroError("--cv tests every fold in turn; drop --test-fold")
        if len(st.fold_ids) < 2:
            raise SpectroError(f"--cv needs a store with two or more folds; {st.path} has {len(st.fold_ids)} "
                               "(rebuild it with preprocess --folds 5)")
    else:
        default_folds(st, test_fold)  # a missing fold or a single-fold store fails here


def _store_identity(st: Store) -> dict:
    """What makes two stores the same for compare: FeatureConfig, examples, their labels and folds."""
    h = hashlib.sha256()
    h.update("\n".join(st.ids.tolist()).encode())
    h.update(np.ascontiguousarray(st.y).tobytes())
    h.update(np.ascontiguousarray(st.folds).tobytes())
    return {"path": os.path.abspath(st.path), "fingerprint": st.config.fingerprint(), "examples": len(st),
            "content": h.hexdigest()[:16]}


def _check_out(out: str, st: Store, identity: dict) -> None:
    if os.path.isfile(os.path.join(out, "run.json")):
        raise SpectroError(f"--out {out} is a training run; give compare a directory of its own")
    meta = os.path.join(out, "compare.json")
    if os.path.isfile(meta):
        old = read_json(meta).get("store", {})
        if old.get("content") != identity["content"] or old.get("fingerprint") != identity["fingerprint"]:
            raise SpectroError(f"--out {out} holds runs of another store ({old.get('path')}); "
                               "choose another --out (nothing was changed)")
    # Runs in OUT (also without compare.json): their run.json names the store they were trained on.
    for info_path in _run_infos(out):
        s = read_json(info_path).get("store", {})
        if s.get("fingerprint") != identity["fingerprint"] or s.get("examples") != identity["examples"]:
            raise SpectroError(f"--out {out} holds runs of another store ({os.path.dirname(info_path)} was "
                               f"trained on {s.get('path')}); choose another --out (nothing was changed)")


def _run_infos(out: str) -> list[str]:
    found = []
    if os.path.isdir(out):
        for model_dir in sorted(os.scandir(out), key=lambda e: e.name):
            if model_dir.is_dir():
                for fold_dir in sorted(os.scandir(model_dir.path), key=lambda e: e.name):
                    p = os.path.join(fold_dir.path, "run.json")
                    if fold_dir.is_dir() and os.path.isfile(p):
                        found.append(p)
    return found


def _config(model: str, options: dict, model_options: dict) -> TrainConfig:
    ignores = classifier_class(model).ignores  # left out, they do not change the run's options hash
    options = {k: v for k, v in options.items() if k not in ignores}
    try:
        return TrainConfig(model=model, model_options=dict(model_options), **options)
    except TypeError as err:
        raise SpectroError(f"bad training option: {err}") from None


def _options_hash(cfg: TrainConfig) -> str:
    """Six hex digits of what the run computes (not where it runs, not its folds)."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS and k not in ("test_fold", "val_fold")}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:6]


# ---------------------------------------------------------------------------
# Training: in this process, or side by side in spawned ones
# ---------------------------------------------------------------------------

def _run_jobs(all_jobs: list[_Job], jobs: int, progress: bool, say) -> dict[str, dict]:
    outcomes: dict[str, dict] = {}
    pending = []
    for job in all_jobs:
        if run_status(job.run_dir) == "done":
            outcomes[job.run_dir] = {"status": "reused", "seconds": 0.0}
            say(f"{job.model} fold {job.test_fold}: reusing the finished run {job.run_dir}")
        else:
            pending.append(job)
    workers = max(1, min(int(jobs), len(pending)))
    if workers == 1:
        for job in pending:
            outcomes[job.run_dir] = _train_job(replace(job, progress=progress))
            _say_outcome(say, job, outcomes[job.run_dir])
        return outcomes
    # Threads: the ones this process would use, shared out; oversubscribing cores slows every job.
    threads = max(1, torch.get_num_threads() // workers)
    say(f"training {len(pending)} runs, {workers} at a time, {threads} thread(s) each")
    context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state, same on every OS
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_train_job, replace(job, threads=threads)): job for job in pending}
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                outcomes[job.run_dir] = fut.result()
            except Exception as err:  # noqa: BLE001 - a worker that died (killed, out of memory)
                outcomes[job.run_dir] = {"status": "failed", "error": f"worker process failed: {_one_line(err)}"}
            _say_outcome(say, job, outcomes[job.run_dir])
    return outcomes


def _train_job(job: _Job) -> dict:
    """Train (or resume) one run; never raises for a failure of the run itself."""
    if job.threads:
        torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    try:
        status = run_status(job.run_dir)
        if status == "diverged":
            info = read_json(os.path.join(job.run_dir, "run.json"))
            return {"status": "failed", "error": f"diverged earlier: {info.get('error')}; try a lower lr"}
        if status is not None:
            run = train(job.store, resume=job.run_dir, progress=job.progress)
            action = "resumed"
        else:
            run = train(job.store, out=job.run_dir, config=TrainConfig.from_dict(job.config), progress=job.progress)
            action = "trained"
        if run is None or run.status != "done":
            return {"status": "failed", "error": f"stopped before the end ({getattr(run, 'status', 'no run')})"}
        return {"status": action, "seconds": time.perf_counter() - t0}
    except (SpectroError, RuntimeError, ValueError, OSError, MemoryError) as err:
        return {"status": "failed", "error": _one_line(err), "seconds": time.perf_counter() - t0}


def _say_outcome(say, job: _Job, outcome: dict) -> None:
    if outcome["status"] == "failed":
        say(f"{job.model} fold {job.test_fold}: FAILED: {outcome['error']}")
    else:
        say(f"{job.model} fold {job.test_fold}: {outcome['status']} in {outcome.get('seconds', 0):.1f} s")


def _one_line(err: BaseException) -> str:
    """:func:`~spectro.errors.first_line`, with the type in front unless it is spectro's own one-line error."""
    if isinstance(err, SpectroError) or not str(err).strip():
        return first_line(err)
    return f"{type(err).__name__}: {first_line(err)}"


# ---------------------------------------------------------------------------
# Scoring, statistics, table, report, figure
# ---------------------------------------------------------------------------

def _assemble(st: Store, names: list[str], folds: list[int], all_jobs: list[_Job], outcomes: dict, out: str, *,
              cv: bool, timing: bool, clock: dict) -> Comparison:
    """Score, test, tabulate, draw and report; ``clock`` receives the seconds of each step."""
    t0 = time.perf_counter()
    labels = list(st.labels)
    rows, preds, runs = [], {}, {}
    for m in names:
        jobs_m = [j for j in all_jobs if j.model == m]
        runs[m] = [j.run_dir for j in jobs_m]
        row: dict[str, Any] = {"model": m, "status": "ok", "error": ""}
        failed = [outcomes[j.run_dir] for j in jobs_m if outcomes[j.run_dir]["status"] == "failed"]
        if failed:
            row.update(status="failed", error=failed[0]["error"])
            rows.append(row)
            continue
        try:
            row_m, preds[m] = _score_model(st, jobs_m, labels, cv=cv, timing=timing, clock=clock)
            row.update(row_m)
        except SpectroError as err:
            row.update(status="failed", error=_one_line(err))
        rows.append(row)
    table = pd.DataFrame(rows)
    clock["scoring"] = time.perf_counter() - t0 - clock.get("inference_timing", 0.0)
    t1 = time.perf_counter()
    best, verdict = _significance(table, preds, st, cv)
    clock["tests"] = time.perf_counter() - t1
    comparison = Comparison(table=_order_columns(table), predictions=preds, labels=labels, best=best,
                            verdict=verdict, out=out, runs=runs)
    # Written whole or not at all (a reader never sees half a table).
    write_text(os.path.join(out, "results.csv"), comparison.table.to_csv(index=False))
    write_text(os.path.join(out, "results.md"), comparison.markdown() + "\n")
    t2 = time.perf_counter()
    comparison.figure(comparison.figure_path)
    clock["figure"] = time.perf_counter() - t2
    grouped = best is not None and _has_groups(st, preds[best].rows)
    write_text(os.path.join(out, "report.md"), report_markdown(
        comparison, store_path=st.path, n_examples=len(st), folds=folds, cv=cv, grouped=grouped, alpha=ALPHA,
        n_boot=N_BOOT, n_groups=np.unique(st.groups[preds[best].rows].astype(str)).size if grouped else 0))
    return comparison


def _score_model(st: Store, jobs_m: list[_Job], labels: list[str], *, cv: bool,
                 timing: bool, clock: dict) -> tuple[dict, Predictions]:
    per_fold, parts, seconds = [], [], []
    timed = None
    for job in jobs_m:
        run = load_run(job.run_dir, device="cpu")
        if list(run.labels) != labels:
            raise SpectroError(f"{job.run_dir} was trained with other class names than {st.path}")
        rows = rows_of_ids(st, read_split(job.run_dir)["test"], what=f"test examples of {job.run_dir}")
        proba = run.predict_proba(st.features[rows]).astype(np.float32)  # (n, C)
        y = st.y[rows]
        per_fold.append(compute_metrics(y, proba, labels))
        parts.append((rows, y, proba, np.full(rows.size, job.test_fold)))
        seconds.append(_train_seconds(job.run_dir))
        if timed is None and timing:
            t0 = time.perf_counter()
            timed = _inference_ms(run, st.features[rows])
            clock["inference_timing"] = clock.get("inference_timing", 0.0) + time.perf_counter() - t0
    rows = np.concatenate([p[0] for p in parts])
    order = np.argsort(rows, kind="stable")
    proba = np.concatenate([p[2] for p in parts])[order]
    pred = Predictions(rows=rows[order], ids=st.ids[rows[order]], y_true=np.concatenate([p[1] for p in parts])[order],
                       y_pred=proba.argmax(axis=1).astype(np.int64), proba=proba,
                       fold=np.concatenate([p[3] for p in parts])[order])
    out: dict[str, Any] = {}
    for k in HEADLINE:
        v = np.array([m[k] for m in per_fold])
        out[k] = float(v.mean())
        out[f"{k}_std"] = float(v.std(ddof=1)) if v.size > 1 else np.nan
    out["pooled_accuracy"] = float(pred.correct.mean())
    out["n_test"] = int(pred.rows.size)
    out["params"] = run.classifier.n_parameters()
    out["train_s"] = float(np.mean(seconds))
    out["infer_ms_b1"], out["infer_ms_b64"] = timed if timed else (np.nan, np.nan)
    return out, pred


def _record_seconds(out: str, outcomes: dict) -> None:
    """Wall seconds of each run trained now, kept in OUT/seconds.json so a reused run keeps its cost."""
    path = os.path.join(out, "seconds.json")
    known = read_json(path) if os.path.isfile(path) else {}
    for run_dir, o in outcomes.items():
        if o["status"] == "trained":
            known[os.path.relpath(run_dir, out)] = o["seconds"]
        elif o["status"] == "resumed":  # the time before the interruption is not known; add what this took
            key = os.path.relpath(run_dir, out)
            known[key] = known.get(key, 0.0) + o["seconds"]
    write_json(path, known)


def _train_seconds(run_dir: str) -> float:
    """Wall seconds to train (and test) a run: from seconds.json, else the sum of its epochs in metrics.csv."""
    out = os.path.dirname(os.path.dirname(run_dir))
    path = os.path.join(out, "seconds.json")
    known = read_json(path) if os.path.isfile(path) else {}
    key = os.path.relpath(run_dir, out)
    if key in known:
        return float(known[key])
    return float(pd.read_csv(os.path.join(run_dir, "metrics.csv"))["seconds"].sum())


def _inference_ms(run: Any, images: np.ndarray, *, repeats: int = 5) -> tuple[float, float]:
    """Median milliseconds per clip of ``run.predict_proba`` at batch 1 and at batch 64 (CPU, this process)."""
    x = np.asarray(images[:64], dtype=np.float16)
    x64 = np.concatenate([x] * int(np.ceil(64 / len(x))))[:64]
    result = []
    for batch, n in ((x64[:1], repeats * 4), (x64, repeats)):
        run.predict_proba(batch, batch_size=64)  # warm-up: first-call allocations, lazy init
        times = []
        for _ in range(n):
            t = time.perf_counter()
            run.predict_proba(batch, batch_size=64)  # one forward pass of 64, not two of 32
            times.append(time.perf_counter() - t)
        result.append(float(np.median(times)) * 1000 / len(batch))
    return result[0], result[1]


def _has_groups(st: Store, rows: np.ndarray) -> bool:
    """Groups are known when some group holds several of the compared examples."""
    return np.unique(st.groups[rows].astype(str)).size < rows.size


def _significance(table: pd.DataFrame, preds: dict[str, Predictions], st: Store, cv: bool) -> tuple[Optional[str], str]:
    """Fill the comparison-with-the-best columns of ``table`` in place; return the best model and the verdict."""
    for col in ("diff_vs_best", "p_mcnemar", "p_holm", "diff_low", "diff_high", "accuracy_low", "accuracy_high",
                "macro_f1_low", "macro_f1_high"):
        table[col] = np.nan
    table["significant"] = ""
    if not preds:
        return None, "Every model failed; see the error column."
    ok = [m for m in table["model"] if m in preds]
    best = max(ok, key=lambda m: (preds[m].correct.mean(), -ok.index(m)))
    rows = preds[best].rows
    groups = st.groups[rows]
    grouped = _has_groups(st, rows)
    weights = bootstrap_weights(groups, n_boot=N_BOOT, seed=0)  # (B, N): the same draws for every model
    at = {m: table.index[table["model"] == m][0] for m in ok}
    for m in ok:
        lo, hi = _bootstrap_metrics(preds[m], weights, len(st.labels))
        table.loc[at[m], ["accuracy_low", "accuracy_high", "macro_f1_low", "macro_f1_high"]] = \
            [lo[0], hi[0], lo[1], hi[1]]
    others = [m for m in ok if m != best]
    if not np.array_equal(rows, np.sort(rows)) or any(not np.array_equal(preds[m].rows, rows) for m in others):
        raise SpectroError("the models were not tested on the same examples")
    raw = [mcnemar_exact(preds[best].correct, preds[m].correct)[0] for m in others]
    adjusted = holm(raw) if raw else []
    for m, p, padj in zip(others, raw, adjusted):
        # The model's accuracy minus the best one's (<= 0), with its interval over groups.
        diff, lo, hi = paired_bootstrap_diff(preds[m].correct, preds[best].correct, groups, n_boot=N_BOOT, seed=0)
        # Significant: McNemar after Holm, and, where clips share speakers, the group interval excluding 0.
        sig = padj < ALPHA and (not grouped or lo > 0 or hi < 0)
        table.loc[at[m], ["diff_vs_best", "p_mcnemar", "p_holm"]] = [diff, p, padj]
        if grouped:
            table.loc[at[m], ["diff_low", "diff_high"]] = [lo, hi]
        table.loc[at[m], "significant"] = "yes" if sig else "no"
    table.loc[at[best], "significant"] = "best"
    acc = {m: preds[m].correct.mean() for m in ok}
    where = "pooled out-of-fold" if cv else "held-out"
    if not others:
        return best, (f"{best} reaches accuracy {acc[best]:.3f} on {rows.size} {where} examples "
                      "(no other model finished).")
    runner = max(others, key=lambda m: acc[m])
    i = others.index(runner)
    sig = table.loc[at[runner], "significant"] == "yes"
    ci = (f"; group bootstrap 95 % interval of the difference [{table.loc[at[runner], 'diff_low']:+.3f}, "
          f"{table.loc[at[runner], 'diff_high']:+.3f}]" if grouped else "")
    verdict = (f"{best} is best with accuracy {acc[best]:.3f} on {rows.size} {where} examples; the runner-up "
               f"{runner} ({acc[runner]:.3f}, {acc[runner] - acc[best]:+.3f}) is "
               + ("" if sig else "not ") + f"distinguishable from it at 5 % (McNemar, Holm-adjusted "
               f"p = {adjusted[i]:.3g}{ci}).")
    return best, verdict


def _bootstrap_metrics(p: Predictions, weights: np.ndarray, c: int) -> tuple[list[float], list[float]]:
    """95 % intervals of accuracy and macro-F1 under the resampling ``weights`` [shape=(B, N)]."""
    cell = p.y_true * c + p.y_pred  # (N,) confusion-matrix cell of each example
    cms = np.zeros((weights.shape[0], c * c))
    for k in np.unique(cell):
        cms[:, k] = weights[:, cell == k].sum(axis=1)
    acc = np.array([metrics_from_confusion(m.reshape(c, c))["accuracy"] for m in cms])
    f1 = np.array([metrics_from_confusion(m.reshape(c, c))["macro_f1"] for m in cms])
    (a_lo, a_hi), (f_lo, f_hi) = percentile_interval(acc), percentile_interval(f1)
    return [a_lo, f_lo], [a_hi, f_hi]


_COLUMNS = ["model", "status", "accuracy", "accuracy_std", "accuracy_low", "accuracy_high", "balanced_accuracy",
            "balanced_accuracy_std", "macro_f1", "macro_f1_std", "macro_f1_low", "macro_f1_high", "pooled_accuracy",
            "n_test", "params", "train_s", "infer_ms_b1", "infer_ms_b64", "diff_vs_best", "p_mcnemar", "p_holm",
            "diff_low", "diff_high", "significant", "error"]


def _order_columns(table: pd.DataFrame) -> pd.DataFrame:
    for col in _COLUMNS:
        if col not in table:
            table[col] = np.nan
    return table[_COLUMNS]
