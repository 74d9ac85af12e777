"""The README's accuracy table, and issue 20's targets, from bench_accuracy.py's CSV rows.

Reads one or more ``--csv`` files of ``bench_accuracy.py`` and prints, per data
set, a Markdown table: per model the mean accuracy over every fold and seed,
its standard deviation, the mean per seed, the worst fold, and the seconds per
fold; then the three targets of issue 20, each with its margin:

* spectro's best default model (svm, cnn, resnet18 or ensemble) at least the
  script's best + 5 points;
* spectro's resnet18 at least the script's resnet18, and above chance on every fold;
* spectro's svm at least the script's svc.

Only (model, seed, fold) cells present for every model of a set are used, so a
set stopped half-way is compared on the folds that all of its models finished
(the table says how many). A repeated cell (a re-run) counts once: the last row.

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
    cells = d.groupby("spec")[["seed", "fold"]].apply(lambda g: set(map(tuple, g.values)))
    common = set.intersection(*cells.values) if len(cells) else set()
    d = d[[(s, f) in common for s, f in zip(d.seed, d.fold)]]
    seeds = sorted(d.seed.unique())
    lines = [f"| model | accuracy (mean ± std over {len(common)} fold x seed) | "
             + " | ".join(f"seed {s}" for s in seeds) + " | worst fold | s per fold |",
             "|---|---|" + "---|" * len(seeds) + "---|---|"]
    mean = d.groupby("spec").accuracy.mean()
    for spec in mean.sort_values(ascending=False).index:
        g = d[d.spec == spec]
        per_seed = [g[g.seed == s].accuracy.mean() for s in seeds]
        lines.append(f"| {spec} | {g.accuracy.mean():.3f} ± {g.accuracy.std(ddof=1) if len(g) > 1 else 0:.3f} | "
                     + " | ".join(f"{v:.3f}" for v in per_seed)
                     + f" | {g.accuracy.min():.3f} | {g.seconds.mean():.0f} |")
    lines.append(f"\n{len(d)} runs, {d.seconds.sum() / 60:.0f} min of training and testing in all (the script's "
                 f"log-mels and the stores once more; the ensemble reuses its members' runs)")
    return "\n".join(lines), targets(d, dataset, mean)


def targets(d: pd.DataFrame, dataset: str, mean: pd.Series) -> list[str]:
    out = []
    script = {m: mean[m] for m in ("script-svc", "script-resnet18") if m in mean}
    ours = {m: mean[m] for m in DEFAULTS if m in mean}
    if script and ours:
        best_m, best = max(ours.items(), key=lambda kv: kv[1])
        s_m, s_best = max(script.items(), key=lambda kv: kv[1])
        gap = 100 * (best - s_best)
        out.append(f"best default ({best_m} {best:.3f}) vs script's best ({s_m} {s_best:.3f}): {gap:+.1f} points "
                   f"({'met' if gap >= 5 else f'missed by {5 - gap:.1f}'}; target +5)")
    if "resnet18" in mean and "script-resnet18" in mean:
        gap = 100 * (mean["resnet18"] - mean["script-resnet18"])
        worst = d[d.spec == "resnet18"].accuracy.min()
        chance = 1 / CHANCE.get(dataset, 2)
        out.append(f"resnet18 vs script-resnet18: {gap:+.1f} points ({'met' if gap >= 0 else 'missed'}); worst "
                   f"fold {worst:.3f} against chance {chance:.3f} ({'above' if worst > chance else 'NOT above'})")
    if "svm" in mean and "script-svc" in mean:
        gap = 100 * (mean["svm"] - mean["script-svc"])
        out.append(f"svm vs script-svc: {gap:+.1f} points ({'met' if gap >= 0 else 'missed'})")
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
