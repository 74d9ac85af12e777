"""Scoring a comparison: every run on its test examples, the table's numbers, their intervals and tests.

Each model's runs are scored on the same test examples (pooled over folds under ``cv``: every
example tested once); each model is compared with the best by the exact McNemar test, Holm-
adjusted, and, where examples share groups, a bootstrap over groups (:mod:`spectro.metrics.stats`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from spectro.comparison.jobs import Job, train_seconds
from spectro.dataset.splits import rows_of_ids
from spectro.errors import SpectroError
from spectro.metrics.scores import HEADLINE, compute_metrics, metrics_from_confusion
from spectro.models.reference import ReferenceClassifier
from spectro.metrics.stats import bootstrap_weights, holm, mcnemar_exact, paired_bootstrap_diff, percentile_interval
from spectro.signals.store import Store
from spectro.training.run import load_run, read_split

__all__ = ["ALPHA", "N_BOOT", "FLAGS", "Predictions", "score_model", "score_ensemble", "score_reference", "run_flags",
           "flag_clauses", "inference_ms", "has_groups", "significance", "runner_clause", "failed_clause", "COLUMNS",
           "order_columns"]

ALPHA = 0.05  # significance level of the table's marks


N_BOOT = 2000  # bootstrap resamples (intervals move by < 0.005 between seeds at this size)


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
    seed : np.ndarray [shape=(N,), dtype=int64], optional
        The training seed of that run (compared over seeds: each example
        once per seed, sorted by row, then seed).
    """

    rows: np.ndarray
    ids: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    fold: np.ndarray
    seed: np.ndarray | None = None

    @property
    def correct(self) -> np.ndarray:
        return self.y_true == self.y_pred


#: What a run warning (:mod:`spectro.training.health`, run.json ``warnings``) means for a comparison:
#: a short name for the table, and the clause the verdict carries.
FLAGS = {
    "still_improving": ("still improving", "still improving at its last epoch; more epochs may change this ranking"),
    "at_chance": ("at chance", ("at chance level (its training accuracy is that of always answering the most "
                                "common class): it did not learn, so its place in the ranking says nothing of "
                                "the model")),
    "unseen_classes": ("unseen classes", ("tested on classes that no training example has (the groups may follow "
                                          "the classes), so every model must miss them")),
}


def run_flags(info: dict, fold: int) -> list[tuple[str, str]]:
    """``(code, "fold K: text")`` of each warning in a run's run.json."""
    return [(w["code"], f"fold {fold}: {w['text']}") for w in info.get("warnings") or [] if w.get("code") in FLAGS]


def flag_clauses(table: pd.DataFrame) -> str:
    """The verdict's warnings: one clause per flagged model that finished ("cnn: still improving ...")."""
    out = []
    for _, r in table.iterrows():
        if r["status"] == "ok" and r.get("warnings"):
            out += [f"{r['model']}: {FLAGS[code][1]}" for code in str(r["warnings"]).split(",")]
    return ("Warning: " + "; ".join(out) + ".") if out else ""


def score_model(st: Store, jobs_m: list[Job], labels: list[str], *, cv: bool,
                 timing: bool, clock: dict) -> tuple[dict, Predictions, list[str]]:
    """Score one model's runs: its table row, its predictions, and the warnings of its runs ("fold K: text")."""
    per_fold, parts, seconds, flags = [], [], [], []
    timed = None
    for job in jobs_m:
        run = load_run(job.run_dir, device="cpu")
        flags += run_flags(run.info, job.test_fold)
        if list(run.labels) != labels:
            raise SpectroError(f"{job.run_dir} was trained with other class names than {st.path}")
        rows = rows_of_ids(st, read_split(job.run_dir)["test"], what=f"test examples of {job.run_dir}")
        proba = run.predict_proba(st.features[rows]).astype(np.float32)  # (n, C)
        y = st.y[rows]
        per_fold.append(compute_metrics(y, proba, labels))
        parts.append((rows, y, proba, np.full(rows.size, job.test_fold), np.full(rows.size, job.config["seed"] if job.seed is None else job.seed)))
        seconds.append(train_seconds(job.run_dir))
        if timed is None and timing:
            t0 = time.perf_counter()
            timed = inference_ms(run, st.features[rows])
            clock["inference_timing"] = clock.get("inference_timing", 0.0) + time.perf_counter() - t0
    rows, seeds = np.concatenate([p[0] for p in parts]), np.concatenate([p[4] for p in parts]).astype(np.int64)
    order = np.lexsort((seeds, rows))  # by row, then seed: every model's predictions line up pair by pair
    proba = np.concatenate([p[2] for p in parts])[order]
    pred = Predictions(rows=rows[order], ids=st.ids[rows[order]], y_true=np.concatenate([p[1] for p in parts])[order],
                       y_pred=proba.argmax(axis=1).astype(np.int64), proba=proba,
                       fold=np.concatenate([p[3] for p in parts])[order], seed=seeds[order])
    out = _summary(per_fold, pred)
    out["params"] = run.classifier.n_parameters()
    out["train_s"] = float(np.mean(seconds))
    out["infer_ms_b1"], out["infer_ms_b64"] = timed if timed else (np.nan, np.nan)
    out["warnings"] = ",".join(dict.fromkeys(code for code, _ in flags))  # codes, first seen first
    return out, pred, [text for _, text in flags]


def score_ensemble(members: dict[str, Predictions], table: pd.DataFrame,
                   labels: list[str]) -> tuple[dict, Predictions]:
    """The ensemble's row and predictions: the mean of ``members``' probabilities, no training of its own.

    ``members`` were scored on the same examples in the same order (and
    seeds); the ensemble is scored like them, per run (test fold and seed)
    for mean and std. Its size, training and inference cost are the sums of
    its members' (``table``: their rows).
    """
    first = next(iter(members.values()))
    for name, p in members.items():
        if not np.array_equal(p.rows, first.rows) or not _same(p.seed, first.seed):
            raise SpectroError(f"{name} was not tested on the same examples as the other models")
    proba = np.mean([p.proba for p in members.values()], axis=0).astype(np.float32)  # (N, C)
    pred = Predictions(rows=first.rows, ids=first.ids, y_true=first.y_true,
                       y_pred=proba.argmax(axis=1).astype(np.int64), proba=proba, fold=first.fold, seed=first.seed)
    seeds = first.seed if first.seed is not None else np.zeros_like(first.fold)
    runs = [(pred.fold == k) & (seeds == s) for k, s in sorted(set(zip(pred.fold.tolist(), seeds.tolist())))]
    per_run = [compute_metrics(pred.y_true[r], proba[r], labels) for r in runs]
    out = _summary(per_run, pred)
    rows = table.set_index("model").loc[list(members)]
    for col in ("params", "train_s", "infer_ms_b1", "infer_ms_b64"):
        out[col] = rows[col].sum(min_count=len(rows)) if col in rows else np.nan
    out["warnings"] = ""
    return out, pred


def score_reference(st: Store, images: np.ndarray, cells: list[tuple[int, int]], tests: dict[int, np.ndarray],
                    trains: dict[int, np.ndarray], labels: list[str]) -> tuple[dict, Predictions]:
    """The reference row (:mod:`spectro.models.reference`, the practitioner's script) and its predictions.

    ``images``: the script's log-mels of every store row [shape=(N, 1, 64, T)];
    ``cells``: the (test fold, seed) runs the other models made; ``tests``: each
    fold's test rows (those the other models were tested on) and ``trains`` its
    training rows (the other models' training and validation rows: the script
    holds nothing out). Its grouped search is seeded by the cell's seed.
    """
    names = np.asarray(labels, dtype=object)
    per_run, parts, seconds, params = [], [], [], 0
    for fold, seed in cells:
        rows, train = np.sort(tests[fold]), np.sort(trains[fold])
        t0 = time.perf_counter()
        clf = ReferenceClassifier(seed=seed, classes=labels).fit(images[train], names[st.y[train]],
                                                                 groups=st.groups[train])
        seconds.append(time.perf_counter() - t0)
        proba = clf.predict_proba(images[rows]).astype(np.float32)
        per_run.append(compute_metrics(st.y[rows], proba, labels))
        parts.append((rows, proba, np.full(rows.size, fold), np.full(rows.size, seed)))
        params = clf.n_parameters()
    rows, seeds = np.concatenate([p[0] for p in parts]), np.concatenate([p[3] for p in parts]).astype(np.int64)
    order = np.lexsort((seeds, rows))
    proba = np.concatenate([p[1] for p in parts])[order]
    pred = Predictions(rows=rows[order], ids=st.ids[rows[order]], y_true=st.y[rows[order]],
                       y_pred=proba.argmax(axis=1).astype(np.int64), proba=proba,
                       fold=np.concatenate([p[2] for p in parts])[order], seed=seeds[order])
    out = _summary(per_run, pred)
    out.update(params=params, train_s=float(np.mean(seconds)), infer_ms_b1=np.nan, infer_ms_b64=np.nan, warnings="")
    return out, pred


def inference_ms(run: Any, images: np.ndarray, *, repeats: int = 5) -> tuple[float, float]:
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


def has_groups(st: Store, rows: np.ndarray) -> bool:
    """Groups are known when some group holds several of the compared examples."""
    return np.unique(st.groups[rows].astype(str)).size < rows.size


def significance(table: pd.DataFrame, preds: dict[str, Predictions], st: Store, cv: bool) -> tuple[str | None, str]:
    """Fill the comparison-with-the-best columns of ``table`` in place; return the best model and the verdict."""
    for col in ("diff_vs_best", "p_mcnemar", "p_holm", "diff_low", "diff_high", "accuracy_low", "accuracy_high",
                "macro_f1_low", "macro_f1_high"):
        table[col] = np.nan
    table["significant"] = ""
    if not preds:
        return None, "Every model failed."
    ok = [m for m in table["model"] if m in preds]
    best = max(ok, key=lambda m: (preds[m].correct.mean(), -ok.index(m)))
    rows = preds[best].rows
    groups = st.groups[rows]
    grouped = has_groups(st, rows)
    at = {m: table.index[table["model"] == m][0] for m in ok}
    for m in ok:
        lo, hi = score_intervals(preds[m], groups, len(st.labels))
        table.loc[at[m], ["accuracy_low", "accuracy_high", "macro_f1_low", "macro_f1_high"]] = \
            [lo[0], hi[0], lo[1], hi[1]]
    others = [m for m in ok if m != best]
    if not np.array_equal(rows, np.sort(rows)) or any(
            not np.array_equal(preds[m].rows, rows) or not _same(preds[m].seed, preds[best].seed) for m in others):
        raise SpectroError("the models were not tested on the same examples (and seeds)")
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
    n_seeds = np.unique(preds[best].seed).size if preds[best].seed is not None else 1
    # With several seeds every example is tested once per seed: say both numbers.
    on = (f"{np.unique(rows).size} {where} examples x {n_seeds} seeds" if n_seeds > 1
          else f"{rows.size} {where} examples")
    if not others:
        return best, f"{best} reaches accuracy {acc[best]:.3f} on {on} (no other model finished)."
    runner = max(others, key=lambda m: acc[m])
    r = table.loc[at[runner]]
    verdict = (f"{best} is best with accuracy {acc[best]:.3f} on {on}; the runner-up "
               f"{runner} ({acc[runner]:.3f}, {acc[runner] - acc[best]:+.3f}) is "
               + runner_clause(p_holm=float(r["p_holm"]), low=float(r["diff_low"]), high=float(r["diff_high"]),
                               grouped=grouped, n_groups=int(np.unique(groups.astype(str)).size)))
    return best, verdict


def runner_clause(*, p_holm: float, low: float, high: float, grouped: bool, n_groups: int) -> str:
    """How the runner-up stands against the best: "[not ]distinguishable ...", naming the test that decides.

    Significance needs both McNemar and, where the examples share groups, the group interval; when they
    disagree the clause says which one holds the difference back and why, so it never reads as a contradiction.
    """
    p = f"McNemar, Holm-adjusted p = {p_holm:.3g}"
    if not grouped:
        return ("" if p_holm < ALPHA else "not ") + f"distinguishable from it at 5 % ({p})."
    kind = "group" if n_groups > 1 else "example (one test group)"
    ci = f"{kind} bootstrap 95 % interval of the difference [{low:+.3f}, {high:+.3f}]"
    excludes = low > 0 or high < 0
    if p_holm < ALPHA and excludes:
        return f"distinguishable from it at 5 % ({p}; the {ci} excludes 0)."
    if p_holm < ALPHA:
        return (f"not distinguishable from it at 5 %: McNemar alone would say it is ({p}), but it counts every "
                f"example as independent, and the examples come from only {n_groups} groups; the {ci} "
                "includes 0, so the group test holds the difference back (more groups would settle it).")
    if excludes:
        return (f"not distinguishable from it at 5 %: McNemar holds it back ({p}, too few examples where the "
                f"two disagree), although the {ci} excludes 0.")
    return f"not distinguishable from it at 5 % ({p}; the {ci} includes 0)."


def failed_clause(failed: dict[str, str]) -> str:
    """The verdict's word on models that did not finish: "cnn failed: <why>; ..." ("" when none failed)."""
    if not failed:
        return ""
    return ("Not in the ranking: " + "; ".join(f"{m} failed: {why}" for m, why in failed.items())
            + " (see the error column).")


def score_intervals(p: Predictions, groups: np.ndarray, c: int) -> tuple[list[float], list[float]]:
    """95 % intervals of accuracy and macro-F1: ``[acc_low, f1_low], [acc_high, f1_high]``.

    The hull of a bootstrap over groups, one over examples, and for accuracy
    the exact binomial (Clopper-Pearson) interval. Resampling whole groups
    alone can give a zero-width interval: when every group holds each class
    in the same share (a voice saying every digit), a model that answers one
    class scores exactly 1/C in every draw, and the interval would claim a
    certainty no test set of this size has. The example bootstrap moves the
    class shares, and the binomial interval bounds what ``n`` examples can
    show, so an interval is never narrower than the data allow.
    """
    draws = [bootstrap_weights(groups, n_boot=N_BOOT, seed=0),  # (B, N): the same draws for every model
             bootstrap_weights(p.rows, n_boot=N_BOOT, seed=0)]  # an example with all its seeds
    los, his = zip(*(bootstrap_metrics(p, w, c) for w in draws))
    lo, hi = np.min(los, axis=0), np.max(his, axis=0)
    n, k = p.rows.size, int(p.correct.sum())
    if n:
        exact = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        lo[0], hi[0] = min(lo[0], exact.low), max(hi[0], exact.high)
    return [float(v) for v in lo], [float(v) for v in hi]


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def bootstrap_metrics(p: Predictions, weights: np.ndarray, c: int) -> tuple[list[float], list[float]]:
    """95 % intervals of accuracy and macro-F1 under the resampling ``weights`` [shape=(B, N)]."""
    cell = p.y_true * c + p.y_pred  # (N,) confusion-matrix cell of each example
    cms = np.zeros((weights.shape[0], c * c))
    for k in np.unique(cell):
        cms[:, k] = weights[:, cell == k].sum(axis=1)
    acc = np.array([metrics_from_confusion(m.reshape(c, c))["accuracy"] for m in cms])
    f1 = np.array([metrics_from_confusion(m.reshape(c, c))["macro_f1"] for m in cms])
    (a_lo, a_hi), (f_lo, f_hi) = percentile_interval(acc), percentile_interval(f1)
    return [a_lo, f_lo], [a_hi, f_hi]


COLUMNS = ["model", "status", "accuracy", "accuracy_std", "accuracy_low", "accuracy_high", "balanced_accuracy",
            "balanced_accuracy_std", "macro_f1", "macro_f1_std", "macro_f1_low", "macro_f1_high", "pooled_accuracy",
            "n_test", "params", "train_s", "infer_ms_b1", "infer_ms_b64", "diff_vs_best", "p_mcnemar", "p_holm",
            "diff_low", "diff_high", "significant", "warnings", "error"]


def order_columns(table: pd.DataFrame) -> pd.DataFrame:
    for col in COLUMNS:
        if col not in table:
            table[col] = np.nan
    return table[COLUMNS]


def _summary(per_run: list[dict], pred: Predictions) -> dict[str, Any]:
    """Mean and (sample) std over runs of each headline metric, the pooled accuracy and the test count."""
    out: dict[str, Any] = {}
    for k in HEADLINE:
        v = np.array([m[k] for m in per_run])
        out[k] = float(v.mean())
        out[f"{k}_std"] = float(v.std(ddof=1)) if v.size > 1 else np.nan
    out["pooled_accuracy"] = float(pred.correct.mean())
    out["n_test"] = int(pred.rows.size)
    return out
