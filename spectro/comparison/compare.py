"""``compare``: several models on the same split of one store, one table, one figure, one report.

(The package is ``comparison``, not ``compare``: a package named like the
function would shadow ``spectro.compare`` once imported.) The runs are
planned and trained by :mod:`~spectro.comparison.jobs`, scored and tested by
:mod:`~spectro.comparison.scoring`, written up by :mod:`~spectro.comparison.report`.

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

import functools
import hashlib
import os
import re
import time
import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spectro.comparison.curves import LearningCurve, learning_curve
from spectro.comparison.jobs import Job, job_config, one_line, options_hash, run_jobs
from spectro.comparison.report import format_markdown, report_markdown
from spectro.comparison.scoring import (
    ALPHA,
    N_BOOT,
    Predictions,
    flag_clauses,
    has_groups,
    order_columns,
    score_ensemble,
    score_model,
    failed_clause,
    score_reference,
    significance,
)
from spectro.comparison.defaults import COMPARE_JOBS, COMPARE_OUT
from spectro.config import RUNTIME_FIELDS, TrainConfig
from spectro.dataset.splits import default_folds, rows_of_ids
from spectro.errors import SpectroError, cannot_write
from spectro.explain.explain import Explanation, explain_runs
from spectro.models.catalog import COMPARE_ONLY, list_models
from spectro.models.reference import store_logmels
from spectro.plots.comparison import plot_comparison
from spectro.signals.store import Store, open_store
from spectro.training.classifier import classifier_class
from spectro.training.run import read_split
from spectro.utils.console import note, printer
from spectro.utils.files import exclusive, read_json, write_json, write_npy, write_text

__all__ = ["compare", "Comparison", "Predictions", "ALPHA"]

COMPARE_FORMAT = "spectro-compare-1"
#: The model name of the ensemble row: the mean of the other compared models' probabilities (no training).
ENSEMBLE = COMPARE_ONLY["ensemble"].name
#: The model name of the practitioner's script (spectro.models.reference): trained here on the same folds.
REFERENCE = COMPARE_ONLY["reference"].name
#: Rows of the table that no spectro.train run makes.
_UNTRAINED = tuple(COMPARE_ONLY)
# Options compare sets itself (the split) or that describe where a run runs, not what it computes.
_NOT_OPTIONS = {"model", "test_fold", "val_fold"}


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
    warnings : dict of str to list of str
        Per model, the warnings of its runs ("fold K: still improving ..."), from their run.json.
    seeds : list of int or None
        The seeds every model was trained with (None: one run per fold, the configured seed).
    cv : bool
        Every fold was the test fold once.
    failed : dict of str to str
        Per model that did not finish, why (its error); the verdict, report.md and a
        :class:`UserWarning` from :func:`compare` name them too.
    """

    table: pd.DataFrame
    predictions: dict[str, Predictions]
    labels: list[str]
    best: str | None
    verdict: str
    out: str
    runs: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seeds: list[int] | None = None
    cv: bool = False
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def figure_path(self) -> str:
        return os.path.join(self.out, "comparison.png")

    def confusion(self, model: str) -> np.ndarray:
        """Counts [shape=(C, C)] of ``model``: rows true class, columns predicted."""
        p, c = self.predictions[model], len(self.labels)
        return np.bincount(p.y_true * c + p.y_pred, minlength=c * c).reshape(c, c)

    def figure(self, path: str | None = None) -> Any:
        """The comparison figure (a matplotlib Figure; a notebook shows it inline), saved to ``path`` if given."""
        spread = bool(self.table["accuracy_std"].notna().any())
        over = " and ".join(w for w, on in (("seeds", bool(self.seeds)), ("folds", self.cv)) if on)
        return plot_comparison(self.table, {m: self.confusion(m) for m in self.predictions}, self.labels, path=path,
                               cv=spread, over=over)

    def markdown(self) -> str:
        """The table as Markdown (what ``results.md`` holds and the CLI prints)."""
        return format_markdown(self.table)

    def explain(self, out: str | None = None, *, figures: Sequence[tuple[str, bytes | str]] = (),
                **options: Any) -> Explanation:
        """Why one model beats another: figures and a self-contained ``report.html`` in ``out``
        (default ``OUT/explain``), with this comparison's verdict and table on top.

        The models are explained on the runs of the first test fold (every model's test examples
        are the same there; the ensemble, which has no run of its own, is in the table only);
        ``figures`` ((caption, PNG bytes or path), e.g. a learning curve) go on top
        of the report after the comparison's own; ``options`` as in
        :func:`spectro.explain.explain.explain_runs`.
        """
        runs = {m: self.runs[m][0] for m in self.predictions if self.runs.get(m)}
        columns = [c for c in ("model", "accuracy", "macro_f1", "params", "diff_vs_best", "p_holm", "significant")
                   if c in self.table.columns]
        shown = []
        if os.path.isfile(self.figure_path):
            shown.append(("the comparison: scores, training time, confusion matrices", self.figure_path))
        return explain_runs(runs, out=out or os.path.join(self.out, OUT_EXPLAIN), verdict=self.verdict,
                            table=self.table[self.table["status"] == "ok"][columns], figures=[*shown, *figures],
                            title=f"Why one model beats another: {', '.join(runs)}", **options)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def _one_writer(fn):
    """Hold ``out`` for the whole comparison, as stores and runs are held (:func:`~spectro.utils.files.exclusive`):
    a second compare into the same directory is refused at once instead of writing over the first's runs."""
    @functools.wraps(fn)
    def held(store: str | Store, models: str | list[str], out: str = COMPARE_OUT, *args: Any, **kwargs: Any):
        with exclusive(out, what="comparison"):
            return fn(store, models, out, *args, **kwargs)
    return held


@_one_writer
def compare(store: str | Store, models: str | list[str], out: str = COMPARE_OUT, *,
            test_fold: int | None = None, cv: bool = False, seeds: Sequence[int] | None = None,
            jobs: int = COMPARE_JOBS, progress: bool = True, model_options: dict | None = None,
            timing: bool = True, train_sizes: str | Sequence[float] | None = None,
            **training_options: Any) -> Comparison | LearningCurve:
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
    seeds : sequence of int, optional
        Train every model once per seed (``[0, 1, 2]``; with ``cv``, once per
        seed and fold); metrics are mean and std over the runs, the tests use
        the predictions pooled over seeds, each example paired with itself
        under the same seed. Not with a ``seed`` training option.
    jobs : int
        Train this many runs at once in separate processes (spawned), the
        CPU threads divided among them.
    progress : bool
        Progress lines on stderr.
    model_options : dict, optional
        ``{model name: {option: value}}``, e.g. ``{"resnet18": {"stem": "small"}}``.
    timing : bool
        Measure inference milliseconds per clip (batch 1 and 64).
    train_sizes : list of float or str, optional
        A learning curve: the comparison at each of these shares of the
        training groups (nested, seeded, class-stratified; ``OUT/size-F/``),
        returned as a :class:`~spectro.comparison.curves.LearningCurve`.
    **training_options
        Any :class:`~spectro.training.run.TrainConfig` field (epochs, batch_size, lr,
        specaugment, mixup, seed, device, ...), given to every network; the
        SVM ignores those of networks and says so once.

    Returns
    -------
    Comparison, or LearningCurve with ``train_sizes``

    Raises
    ------
    SpectroError
        An unknown model name or option, a store with fewer than two classes
        (or folds for ``cv``), a test fold it lacks, or an ``out`` holding
        runs of another store. No run is deleted.
    """
    if train_sizes is not None:
        return learning_curve(compare, store, models, out, train_sizes=train_sizes, test_fold=test_fold, cv=cv,
                              seeds=seeds,
                              jobs=jobs, progress=progress, model_options=model_options, timing=timing,
                              **training_options)
    say = printer(progress, "compare: ")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SpectroError(f"--jobs must be a whole number of at least 1, got {jobs!r}")
    st = store if isinstance(store, Store) else open_store(store)
    names = _parse_models(models)
    _check_options(training_options, model_options or {}, names)
    _check_store(st, cv, test_fold)
    st.check_finite()  # a damaged features.npy is one line here, not "failed: ValueError" for every model
    seeds = _parse_seeds(seeds, training_options)
    identity = _store_identity(st)
    _check_out(out, st, identity)
    folds = st.fold_ids if cv else [default_folds(st, test_fold)[0]]

    trained = [m for m in names if m not in _UNTRAINED]  # fitted below (reference) or none (ensemble)
    for m in trained:  # said even when quiet: such a run differs from what was asked
        ignored = sorted(k for k in training_options if k in classifier_class(m).ignores and k not in RUNTIME_FIELDS)
        if ignored:
            note(f"the {m} ignores {', '.join(ignored)} (settings of networks)", prefix="compare: ")
    # One configuration, and so one directory of runs, per model and seed (the seed is in the options hash).
    variants = seeds or [None]
    configs = {(m, s): job_config(m, training_options if s is None else {**training_options, "seed": s},
                                  (model_options or {}).get(m, {})) for m in trained for s in variants}
    run_dirs = {key: os.path.join(out, f"{key[0]}-{options_hash(cfg)}") for key, cfg in configs.items()}
    os.makedirs(out, exist_ok=True)
    runs_json = {m: ({str(s): os.path.basename(run_dirs[m, s]) for s in variants} if seeds
                     else os.path.basename(run_dirs[m, None])) for m in trained}
    meta = {"format": COMPARE_FORMAT, "store": identity, "models": names, "cv": cv, "folds": folds, "seeds": seeds,
            "options": training_options, "runs": runs_json}
    write_json(os.path.join(out, "compare.json"), meta)

    store_path = os.path.abspath(st.path)
    all_jobs = [Job(m, k, os.path.join(run_dirs[m, s], f"fold{k}"), store_path,
                     configs[m, s].replace(test_fold=k, val_fold=default_folds(st, k)[1]).to_dict(), seed=s)
                for m in trained for s in variants for k in folds]
    t0 = time.perf_counter()
    # A model whose runs do not depend on the seed trains once and serves every seed.
    unique = list({j.run_dir: j for j in all_jobs}.values())
    outcomes = run_jobs(unique, jobs, progress, say)
    train_wall = time.perf_counter() - t0
    _check_unchanged(st, identity, out)

    t1 = time.perf_counter()
    clock: dict[str, float] = {}
    default_seed = training_options.get("seed", TrainConfig().seed)
    comparison = _assemble(st, names, folds, all_jobs, outcomes, out, cv=cv, seeds=seeds, timing=timing,
                           clock=clock, default_seed=default_seed)
    write_json(os.path.join(out, "compare.json"), {
        **meta, "best": comparison.best, "verdict": comparison.verdict,
        "seconds": {"training_wall": train_wall, "compare": time.perf_counter() - t1, **clock}})
    _warn_failed(comparison.failed)
    say(f"compared {len(names)} models in {time.perf_counter() - t0:.1f} s "
        f"(training {train_wall:.1f} s); report in {os.path.join(out, 'report.md')}")
    return comparison


def _warn_failed(failed: dict[str, str]) -> None:
    """One :class:`UserWarning` per model that failed: an API caller sees it without reading the table."""
    for m, why in failed.items():
        _warnings.warn(f"compare: {m} failed: {why}", UserWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# Checks: everything is refused before anything is trained
# ---------------------------------------------------------------------------

def _parse_models(models: str | list[str]) -> list[str]:
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m.strip()]
    names = list(dict.fromkeys(names))  # first occurrence wins, order kept
    if not names:
        raise SpectroError("compare needs at least one model, e.g. --models svm,cnn,resnet18")
    known = set(list_models())
    unknown = [m for m in names if m not in known and m not in _UNTRAINED]
    if unknown:
        raise SpectroError(f"unknown model {unknown[0]!r}; known: {', '.join(sorted(known))} (and "
                           f"{', '.join(_UNTRAINED)})")
    if ENSEMBLE in names and len([m for m in names if m != REFERENCE]) < 3:
        raise SpectroError(f"{ENSEMBLE} averages the other compared models: give two or more, e.g. "
                           f"--models svm,cnn,{ENSEMBLE}")
    return names


def _parse_seeds(seeds: Sequence[int] | None, options: dict) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, str):
        seeds = [s.strip() for s in seeds.split(",") if s.strip()]
    try:
        parsed = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise SpectroError(f"--seeds takes whole numbers, e.g. 0,1,2; got {seeds!r}") from None
    if not parsed or len(set(parsed)) != len(parsed) or any(s < 0 for s in parsed):
        raise SpectroError(f"--seeds takes distinct whole numbers >= 0, e.g. 0,1,2; got {seeds!r}")
    if "seed" in options:
        raise SpectroError("give --seed or --seeds, not both")
    return parsed


def _check_options(options: dict, model_options: dict, names: list[str]) -> None:
    fields = set(TrainConfig.__dataclass_fields__) - _NOT_OPTIONS - {"model_options"}
    bad = sorted(set(options) - fields)
    if bad:
        raise SpectroError(f"unknown or misplaced training option(s) for compare: {bad} "
                           "(the split is --test-fold or --cv; model options go in model_options)")
    stray = sorted(set(model_options) - set(names))
    if stray:
        raise SpectroError(f"model_options names models that are not compared: {stray}")


def _check_store(st: Store, cv: bool, test_fold: int | None) -> None:
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


#: The files compare writes at the top of ``out`` (beside one directory of runs per model).
OUT_FILES = frozenset({"compare.json", "results.csv", "results.md", "report.md", "comparison.png",
                       "seconds.json"})  # seconds.json: what older versions wrote
OUT_EXPLAIN = "explain"
OUT_REFERENCE = "reference"  # the reference model's log-mels of the store, computed once
_RUNS_DIR = re.compile(r"^(?P<model>.+)-[0-9a-f]{6}$")  # OUT/<model>-<options hash>/
_OWN_HIDDEN = re.compile(r"^\.tmp-|\.lock$")  # atomic writes in flight, locks of run directories


def _check_out(out: str, st: Store, identity: dict) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise SpectroError(f"--out {out} is a file; give compare a directory of its own")
    if os.path.isfile(os.path.join(out, "run.json")):
        raise SpectroError(f"--out {out} is a training run; give compare a directory of its own")
    if any(os.path.isfile(os.path.join(out, f)) for f in ("features.npy", "index.csv")):
        raise SpectroError(f"--out {out} is a spectro store; give compare a directory of its own "
                           "(nothing was changed)")
    foreign = _foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SpectroError(f"--out {out} holds files compare did not write ({shown}); give compare an empty "
                           "or new directory, or one it wrote before (nothing was changed)")
    meta = os.path.join(out, "compare.json")
    if os.path.isfile(meta):
        old = read_json(meta).get("store", {})
        if old.get("content") != identity["content"] or old.get("fingerprint") != identity["fingerprint"]:
            if old.get("path") == identity["path"]:
                raise SpectroError(f"--out {out} holds runs of {identity['path']} as it was before it was "
                                   f"rebuilt ({_what_changed(old, identity)}); compare the rebuilt store into "
                                   f"another --out, or remove {out} to start over (nothing was changed)")
            raise SpectroError(f"--out {out} holds runs of another store ({old.get('path')}); "
                               "choose another --out (nothing was changed)")
    # Runs in OUT (also without compare.json): their run.json names the store they were trained on.
    for info_path in _run_infos(out):
        s = read_json(info_path).get("store", {})
        if s.get("fingerprint") != identity["fingerprint"] or s.get("examples") != identity["examples"]:
            raise SpectroError(f"--out {out} holds runs of another store ({os.path.dirname(info_path)} was "
                               f"trained on {s.get('path')}); choose another --out (nothing was changed)")


def _what_changed(old: dict, new: dict) -> str:
    if old.get("fingerprint") != new["fingerprint"]:
        return "other feature settings"
    if old.get("examples") != new["examples"]:
        return f"{old.get('examples')} examples then, {new['examples']} now"
    return "its examples, labels or folds changed"


def _check_unchanged(st: Store, identity: dict, out: str) -> None:
    """After training: the store is still the one the runs were planned on (not rebuilt meanwhile)."""
    try:
        now = _store_identity(open_store(st.path))
    except SpectroError as err:
        raise SpectroError(f"store {st.path} changed while compare trained ({err}); run the same compare again "
                           "once the store is whole") from None
    if now["content"] != identity["content"] or now["fingerprint"] != identity["fingerprint"]:
        raise SpectroError(f"store {st.path} was rebuilt while compare trained ({_what_changed(identity, now)}): "
                           f"the runs in {out} are of the store as it was, so they are not scored on the new one; "
                           f"compare the rebuilt store into another --out, or remove {out} and run the same "
                           "compare again")


def _foreign_entries(out: str) -> list[str]:
    """Names at the top of ``out`` that compare does not write: a user's folder is never compare's to fill."""
    if not os.path.isdir(out):
        return []
    known = set(list_models())
    foreign = []
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        runs = _RUNS_DIR.match(entry.name)
        if entry.is_dir(follow_symlinks=False) and runs and runs["model"] in known:
            continue
        if entry.is_dir(follow_symlinks=False) and entry.name in (OUT_EXPLAIN, OUT_REFERENCE):
            continue  # Comparison.explain()'s default; the reference's log-mels
        if entry.is_file(follow_symlinks=False) and (entry.name in OUT_FILES or _OWN_HIDDEN.search(entry.name)):
            continue
        foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


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


# ---------------------------------------------------------------------------
# Scoring, statistics, table, report, figure
# ---------------------------------------------------------------------------

def _figure_or_note(comparison: Comparison) -> None:
    """The figure, or (a full disk, a read-only folder) a note: the tables and report.md are written anyway."""
    try:
        comparison.figure(comparison.figure_path)
    except OSError as err:
        failure = cannot_write(err, "report.md and the tables are written without it; free some space and run "
                                    "the same compare again to draw it")
        if failure is None:
            raise
        note(str(failure), prefix="compare: ")


def _assemble(st: Store, names: list[str], folds: list[int], all_jobs: list[Job], outcomes: dict, out: str, *,
              cv: bool, seeds: list[int] | None, timing: bool, clock: dict, default_seed: int = 0) -> Comparison:
    """Score, test, tabulate, draw and report; ``clock`` receives the seconds of each step."""
    t0 = time.perf_counter()
    labels = list(st.labels)
    rows, preds, runs, warnings = [], {}, {}, {}
    for m in names:
        if m in _UNTRAINED:
            continue  # scored below
        jobs_m = [j for j in all_jobs if j.model == m]
        runs[m] = list(dict.fromkeys(j.run_dir for j in jobs_m))
        row: dict[str, Any] = {"model": m, "status": "ok", "error": ""}
        failed = [outcomes[j.run_dir] for j in jobs_m if outcomes[j.run_dir]["status"] == "failed"]
        if failed:
            row.update(status="failed", error=failed[0]["error"])
            rows.append(row)
            continue
        try:
            row_m, preds[m], warnings[m] = score_model(st, jobs_m, labels, cv=cv, timing=timing, clock=clock)
            row.update(row_m)
        except SpectroError as err:
            row.update(status="failed", error=one_line(err))
        rows.append(row)
    if ENSEMBLE in names:
        members = [m for m in names if m in preds]  # spectro's models (the reference is scored after)
        row = {"model": ENSEMBLE, "status": "ok", "error": ""}
        if len(members) < 2:
            row.update(status="failed", error=f"needs two finished models to average, has {len(members)}")
        else:
            row_e, preds[ENSEMBLE] = score_ensemble({m: preds[m] for m in members}, pd.DataFrame(rows), labels)
            row.update(row_e)
        rows.insert([m for m in names if m != REFERENCE].index(ENSEMBLE), row)
    if REFERENCE in names:
        t_ref = time.perf_counter()
        rows.insert(names.index(REFERENCE), _reference_row(st, folds, all_jobs, out, labels, seeds, default_seed,
                                                           preds))
        clock["reference"] = time.perf_counter() - t_ref
    table = pd.DataFrame(rows)
    clock["scoring"] = time.perf_counter() - t0 - clock.get("inference_timing", 0.0) - clock.get("reference", 0.0)
    t1 = time.perf_counter()
    best, verdict = significance(table, preds, st, cv)
    flagged = flag_clauses(order_columns(table))  # a ranking that rests on unfinished training says so
    failed = {r["model"]: r["error"] for r in rows if r["status"] == "failed"}
    verdict = " ".join(v for v in (verdict, flagged, failed_clause(failed)) if v)
    clock["tests"] = time.perf_counter() - t1
    comparison = Comparison(table=order_columns(table), predictions=preds, labels=labels, best=best,
                            verdict=verdict, out=out, runs=runs, warnings=warnings, seeds=seeds,
                            cv=cv, failed=failed)
    # Written whole or not at all (a reader never sees half a table).
    write_text(os.path.join(out, "results.csv"), comparison.table.to_csv(index=False))
    write_text(os.path.join(out, "results.md"), comparison.markdown() + "\n")
    t2 = time.perf_counter()
    _figure_or_note(comparison)
    clock["figure"] = time.perf_counter() - t2
    grouped = best is not None and has_groups(st, preds[best].rows)
    write_text(os.path.join(out, "report.md"), report_markdown(
        comparison, store_path=st.path, n_examples=len(st), folds=folds, cv=cv, grouped=grouped, alpha=ALPHA,
        seeds=seeds,
        n_boot=N_BOOT, n_groups=np.unique(st.groups[preds[best].rows].astype(str)).size if grouped else 0))
    return comparison




def _reference_row(st: Store, folds: list[int], all_jobs: list[Job], out: str, labels: list[str],
                   seeds: list[int] | None, default_seed: int, preds: dict) -> dict:
    """The reference model's row (its predictions into ``preds``): the script, on the other models' test rows."""
    row: dict[str, Any] = {"model": REFERENCE, "status": "ok", "error": ""}
    # The (fold, seed) runs and each fold's test rows, as the other models had them.
    cells = sorted({(j.test_fold, j.config["seed"] if j.seed is None else j.seed) for j in all_jobs}) or \
        [(k, s) for k in folds for s in (seeds or [default_seed])]
    tests = {k: np.flatnonzero(st.folds == k) for k in folds}
    trains = {k: np.flatnonzero(st.folds != k) for k in folds}
    for j in all_jobs:
        if os.path.isfile(os.path.join(j.run_dir, "split.csv")):
            split = read_split(j.run_dir)
            tests[j.test_fold] = rows_of_ids(st, split["test"], what=f"test examples of {j.run_dir}")
            # Training and validation rows alike: the script holds nothing out (a learning curve's share too).
            trains[j.test_fold] = rows_of_ids(st, split["train"] + split["val"], what=f"training examples of {j.run_dir}")
    try:
        cache = os.path.join(out, OUT_REFERENCE, f"logmels-{_store_identity(st)['content']}.npy")
        if os.path.isfile(cache):
            images = np.load(cache)
        else:
            images = store_logmels(st)
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            write_npy(cache, images)
        row_r, preds[REFERENCE] = score_reference(st, images, cells, tests, trains, labels)
        row.update(row_r)
    except (SpectroError, OSError, ValueError, RuntimeError) as err:  # e.g. the raw files are gone
        row.update(status="failed", error=one_line(err))
    return row
