"""The README's accuracy table, and issue 20's targets, from bench_accuracy.py's CSV rows.

Reads one or more ``--csv`` files of ``bench_accuracy.py`` and prints, per data
set, a Markdown table: per model the mean accuracy over every fold and seed,
its standard deviation, the mean per seed, the worst fold, and the seconds per
fold; then the three targets of issue 20, each with its margin:

* spectro's best default model (svm, cnn, resnet18 or ensemble) at least the
  script's best + 5 points;
* spectro's resnet18 at least the script's resnet18, and above chance on every fold;
* spectro's svm at least the script's svc.

Each model's row uses every (seed, fold) it ran (the table says how many); each
target compares its models on the cells they all ran. A repeated cell (a
re-run) counts once: the last row.

Usage::

    python benchmarks/accuracy_table.py benchmarks/results/accuracy-2026-12-03-*.csv
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

DEFAULTS = ("svm", "cnn", "resnet18", "ensemble")
CHANCE = {"digits": 10, "instruments": 10, "voices": 12, "sfx": 6}


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
    """Issue 20's targets, each pair compared on the cells both of its models ran."""
    out = []
    have = set(d.spec)
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
        out.append(f"best default ({best_m} {mean[best_m]:.3f}) vs script's best ({s_m} {mean[s_m]:.3f}) on "
                   f"{len(cells)} fold x seed: {gap:+.1f} points "
                   f"({'met' if gap >= 5 else f'missed by {5 - gap:.1f}'}; target +5)")
    if {"resnet18", "script-resnet18"} <= have:
        a, b, n = paired(d, "resnet18", "script-resnet18")
        worst = d[d.spec == "resnet18"].accuracy.min()
        chance = 1 / CHANCE.get(dataset, 2)
        out.append(f"resnet18 vs script-resnet18 on {n}: {100 * (a - b):+.1f} points ({'met' if a >= b else 'missed'});"
                   f" worst fold {worst:.3f} against chance {chance:.3f} ({'above' if worst > chance else 'NOT above'})")
    if {"svm", "script-svc"} <= have:
        a, b, n = paired(d, "svm", "script-svc")
        out.append(f"svm vs script-svc on {n}: {100 * (a - b):+.1f} points ({'met' if a >= b else 'missed'})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="+")
    args = p.parse_args(argv)
    rows = load(args.csv)
    for dataset in rows.dataset.unique():
        text, notes = table(rows, dataset)
        print(f"\n### {dataset}\n\n{text}\n")
        for n in notes:
            print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
