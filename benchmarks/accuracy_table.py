"""The README's accuracy table, and issue 28's targets, from bench_accuracy.py's CSV rows.

Reads one or more ``--csv`` files of ``bench_accuracy.py`` and prints, per data
set, a Markdown table: per model the mean accuracy over every fold and seed,
its standard deviation, the mean per seed, the worst fold, and the seconds per
fold; then the four targets of issue 28, each with its margin:

* spectro's svm at least the script's svc;
* spectro's resnet18 at least the script's resnet18;
* spectro's best default model (svm, cnn, resnet18 or ensemble) at least the
  script's best + 3 points (the goal is + 5);
* no default model at chance on the set (mean within 5 points of 1 / classes).

Then which targets each set misses, and the SVM's default chosen on the suite:
each ``svm`` spec (``svm``, ``svm+fe0`` ...) against the script's SVC set by set,
the spec whose worst set is best, and the same choice made leave-one-set-out
(chosen on the other sets, checked on the one left out).

Each model's row uses every (seed, fold) it ran (the table says how many); each
target compares its models on the cells they all ran. A repeated cell (a
re-run) counts once: the last row.

Usage::

    python benchmarks/accuracy_table.py            # the committed suite: SUITE below
    python benchmarks/accuracy_table.py benchmarks/results/accuracy-2026-12-03-*.csv
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from datasets import CLASSES  # benchmarks/datasets.py

#: The committed rows the README's accuracy section is made from, in the order read (a later row of a cell wins).
SUITE = ("accuracy-2026-12-03-nets-reused.csv", "accuracy-2026-12-07-suite.csv", "accuracy-2026-12-07-frontends.csv",
         "accuracy-2026-12-07-nets.csv")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULTS = ("svm", "cnn", "resnet18", "ensemble")
CHANCE = CLASSES  # one in this many


def load(paths: list[str]) -> pd.DataFrame:
    rows = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    key = ["dataset", "features", "model", "seed", "fold"]
    return rows.drop_duplicates(key, keep="last")


def table(rows: pd.DataFrame, dataset: str) -> tuple[str, list[str]]:
    d = rows[rows.dataset == dataset].copy()
    d["spec"] = d.model.where(d.features == "default", d.model + " (" + d.features + ")")
    seeds = sorted(d.seed.unique())
    lines = ["| model | runs (fold x seed) | accuracy mean ± std | " + " | ".join(f"seed {s}" for s in seeds)
             + " | worst fold | s per fold |", "|---|---|---|" + "---|" * len(seeds) + "---|---|"]
    mean = d.groupby("spec").accuracy.mean()
    for spec in mean.sort_values(ascending=False).index:
        g = d[d.spec == spec]
        per_seed = [f"{g[g.seed == s].accuracy.mean():.3f}" if (g.seed == s).any() else "-" for s in seeds]
        sd = g.accuracy.std(ddof=1) if len(g) > 1 else 0.0
        lines.append(f"| {spec} | {len(g)} | {g.accuracy.mean():.3f} ± {sd:.3f} | " + " | ".join(per_seed)
                     + f" | {g.accuracy.min():.3f} | {g.seconds.mean():.0f} |")
    lines.append(f"\n{len(d)} runs, {d.seconds.sum() / 60:.0f} min of training and testing in all (the script's "
                 f"log-mels and the stores once more; the ensemble reuses its members' runs)")
    return "\n".join(lines), targets(d, dataset)


def paired(d: pd.DataFrame, a: str, b: str) -> tuple[float, float, int]:
    """Mean accuracy of specs ``a`` and ``b`` over the (seed, fold) cells both ran, and how many."""
    x = d[d.spec == a].set_index(["seed", "fold"]).accuracy
    y = d[d.spec == b].set_index(["seed", "fold"]).accuracy
    both = x.index.intersection(y.index)
    return float(x[both].mean()), float(y[both].mean()), len(both)


def targets(d: pd.DataFrame, dataset: str) -> list[str]:
    """Issue 28's targets on one set, each pair compared on the cells both of its models ran."""
    return [line for _, line in target_margins(d, dataset)]


def target_margins(d: pd.DataFrame, dataset: str) -> list[tuple[str, str]]:
    """(target name, line with its margin) of each of issue 28's targets that the rows can judge."""
    out = []
    have = set(d.spec)
    if {"svm", "script-svc"} <= have:
        a, b, n = paired(d, "svm", "script-svc")
        out.append(("svm >= script-svc", f"svm {a:.3f} vs script-svc {b:.3f} on {n} fold x seed: "
                    f"{100 * (a - b):+.1f} points ({'met' if a >= b else 'MISSED'})"))
    if {"resnet18", "script-resnet18"} <= have:
        a, b, n = paired(d, "resnet18", "script-resnet18")
        out.append(("resnet18 >= script-resnet18", f"resnet18 {a:.3f} vs script-resnet18 {b:.3f} on {n}: "
                    f"{100 * (a - b):+.1f} points ({'met' if a >= b else 'MISSED'})"))
    script = [m for m in ("script-svc", "script-resnet18") if m in have]
    ours = [m for m in DEFAULTS if m in have]
    if script and ours:
        # The best of each side, judged on the cells every one of these models ran.
        cells = set.intersection(*(set(zip(d[d.spec == m].seed, d[d.spec == m].fold)) for m in script + ours))
        sub = d[[(s, f) in cells for s, f in zip(d.seed, d.fold)]]
        mean = sub.groupby("spec").accuracy.mean()
        best_m = max(ours, key=lambda m: mean[m])
        s_m = max(script, key=lambda m: mean[m])
        gap = 100 * (mean[best_m] - mean[s_m])
        verdict = "met, goal +5 met" if gap >= 5 else "met (goal +5 not)" if gap >= 3 else \
            f"MISSED by {3 - gap:.1f}"
        out.append(("best >= script best + 3", f"best default ({best_m} {mean[best_m]:.3f}) vs script's best "
                    f"({s_m} {mean[s_m]:.3f}) on {len(cells)} fold x seed: {gap:+.1f} points ({verdict}; "
                    f"models here: {', '.join(ours)})"))
    chance = 1 / CHANCE.get(dataset, 2)
    if ours:
        means = {m: d[d.spec == m].accuracy.mean() for m in ours}
        low = min(means, key=means.get)
        out.append(("no default at chance", f"lowest default {low} {means[low]:.3f} against chance {chance:.3f} "
                    f"({'above' if means[low] > chance + 0.05 else 'AT CHANCE'}; worst fold of any default "
                    f"{d[d.spec.isin(ours)].accuracy.min():.3f})"))
    return out


def suite_means(rows: pd.DataFrame, against: str = "script-svc") -> pd.DataFrame:
    """Per (set, spec): mean accuracy minus ``against``'s on the cells both ran [points]; default-feature rows."""
    d = rows[rows.features == "default"]
    out = {}
    for dataset in d.dataset.unique():
        dd = d[d.dataset == dataset].assign(spec=lambda x: x.model)
        if against not in set(dd.spec):
            continue
        for spec in set(dd.spec) - {against}:
            a, b, n = paired(dd, spec, against)
            if n:
                out[(dataset, spec)] = 100 * (a - b)
    if not out:
        return pd.DataFrame()
    s = pd.Series(out)
    s.index.names = ["dataset", "spec"]
    return s.unstack("spec")


def choose_default(margins: pd.DataFrame, candidates: list[str]) -> str:
    """The candidate whose worst set is best (then the best mean): a default must hold on every set."""
    have = [c for c in candidates if c in margins.columns and margins[c].notna().all()]
    if not have:
        raise ValueError("no candidate ran on every set")
    return max(have, key=lambda c: (margins[c].min(), margins[c].mean(), -candidates.index(c)))


def leave_one_set_out(margins: pd.DataFrame, candidates: list[str]) -> list[dict]:
    """Per set: the default chosen on the other sets, and its margin on this one (must be >= 0)."""
    out = []
    for held in margins.index:
        chosen = choose_default(margins.drop(index=held), candidates)
        out.append({"held_out": held, "chosen": chosen, "margin": float(margins.loc[held, chosen]),
                    "holds": bool(margins.loc[held, chosen] >= 0)})
    return out


def print_defaults(rows: pd.DataFrame, prefix: str = "svm", against: str = "script-svc") -> None:
    """The SVM default chosen on the whole suite, set by set, and leave-one-set-out (against the script)."""
    margins = suite_means(rows, against)
    candidates = sorted(c for c in margins.columns if c == prefix or c.startswith(prefix + "+"))
    if margins.empty or len(margins) < 2 or not candidates:
        return
    try:
        chosen = choose_default(margins, candidates)
    except ValueError:
        return
    print(f"\n### the {prefix} default, chosen on the suite (points against {against})\n")
    print("| set | " + " | ".join(candidates) + " |\n|---|" + "---|" * len(candidates))
    for dataset, r in margins[candidates].iterrows():
        print(f"| {dataset} | " + " | ".join("-" if pd.isna(v) else f"{v:+.1f}" for v in r) + " |")
    print(f"\nchosen on every set: {chosen} (worst set {margins[chosen].min():+.1f}, mean "
          f"{margins[chosen].mean():+.1f})")
    print("\nleave-one-set-out (chosen without the set, checked on it):")
    for r in leave_one_set_out(margins[[c for c in candidates if margins[c].notna().all()]], candidates):
        print(f"- without {r['held_out']}: {r['chosen']}, on {r['held_out']} {r['margin']:+.1f} points "
              f"({'holds' if r['holds'] else 'DOES NOT HOLD'})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="*", help="bench_accuracy.py CSV files (default: the committed suite, "
                   f"{', '.join(SUITE)} in benchmarks/results)")
    args = p.parse_args(argv)
    rows = load(args.csv or [os.path.join(RESULTS, f) for f in SUITE])
    summary: dict[str, dict[str, str]] = {}
    for dataset in rows.dataset.unique():
        text, _ = table(rows, dataset)
        print(f"\n### {dataset}\n\n{text}\n")
        for name, line in target_margins(rows[rows.dataset == dataset].assign(
                spec=lambda x: x.model.where(x.features == "default", x.model + " (" + x.features + ")")), dataset):
            print(f"- {line}")
            summary.setdefault(name, {})[dataset] = line
    print("\n### the targets, set by set\n")
    for name, per_set in summary.items():
        missed = [s for s, line in per_set.items() if "MISSED" in line or "AT CHANCE" in line]
        print(f"- {name}: judged on {len(per_set)} sets, missed on {len(missed)}"
              + (f" ({', '.join(missed)})" if missed else ""))
    print_defaults(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
