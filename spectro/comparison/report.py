"""The text of a comparison: its Markdown table and ``report.md``.

Formatting only; the numbers come from :mod:`spectro.comparison`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from spectro.comparison.scoring import FLAGS
from spectro.training.health import CHANCE_MARGIN, IMPROVING_BY, LAST_FRACTION

__all__ = ["format_markdown", "report_markdown"]


def format_markdown(table: pd.DataFrame) -> str:
    """The comparison table in Markdown: mean ± std over folds (or a 95 % bootstrap interval), marks for the tests."""
    def pm(r, k: str) -> str:
        if pd.isna(r[k]):
            return "-"
        if not pd.isna(r.get(f"{k}_std", np.nan)):
            return f"{r[k]:.3f} ± {r[f'{k}_std']:.3f}"
        if k in ("accuracy", "macro_f1") and not pd.isna(r.get(f"{k}_low", np.nan)):
            return f"{r[k]:.3f} [{r[f'{k}_low']:.3f}, {r[f'{k}_high']:.3f}]"
        return f"{r[k]:.3f}"

    def num(v, spec: str) -> str:
        return "-" if pd.isna(v) else format(v, spec)

    head = ["model", "accuracy", "balanced acc.", "macro-F1", "parameters", "train s", "ms/clip b1", "ms/clip b64",
            "Δ acc vs best", "McNemar p (Holm)", "group 95 % CI of Δ", "significant", "warning"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        if r["status"] != "ok":
            cells = [r["model"], f"failed: {r['error']}"] + [""] * (len(head) - 2)
        else:
            mark = {"yes": "yes *", "no": "no", "best": "(best)"}.get(r["significant"], "")
            codes = [c for c in str(r.get("warnings") or "").split(",") if c in FLAGS]
            flags = ", ".join(FLAGS[c][0] for c in codes) + " ⚠" if codes else "-"
            ci = "-" if pd.isna(r["diff_low"]) else f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]"
            cells = [r["model"], pm(r, "accuracy"), pm(r, "balanced_accuracy"), pm(r, "macro_f1"),
                     f"{int(r['params']):,}", num(r["train_s"], ".1f"), num(r["infer_ms_b1"], ".2f"),
                     num(r["infer_ms_b64"], ".3f"), num(r["diff_vs_best"], "+.3f"), num(r["p_holm"], ".3g"), ci, mark,
                     flags]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def report_markdown(c: Any, *, store_path: str, n_examples: int, folds: list[int], cv: bool, grouped: bool,
                    n_groups: int, alpha: float, n_boot: int, seeds: list[int] | None = None) -> str:
    """``report.md``: the setup, the verdict, the table, how to read the tests, the figure, the confusions, the runs.

    ``c`` is a :class:`spectro.comparison.compare.Comparison`; ``grouped``: the test examples share groups
    (``n_groups`` of them), so the group bootstrap was run; ``seeds``: every model trained once per seed.
    """
    t = c.table
    split = (f"{len(folds)}-fold cross-validation (each fold the test fold once; the tests use the pooled "
             "out-of-fold predictions, every example tested exactly once)" if cv else f"test fold {folds[0]}")
    lines = [f"# Comparison on {os.path.basename(os.path.normpath(store_path))}", "",
             f"Store `{store_path}` ({n_examples} examples, {len(c.labels)} classes), {split}. " + (
                 f"Every model trained on the same split once per seed ({', '.join(map(str, seeds))}); the tests "
                 "pair each example's predictions under the same seed, pooled over the seeds. McNemar then counts "
                 "an example once per seed, so a difference is marked significant only when the bootstrap, which "
                 "resamples an example with all its seeds (and a group with all its examples), excludes 0 too."
                 if seeds else "Every model trained on the same split with the same seed."),
             "", c.verdict, "", c.markdown(), "",
             "Accuracy and macro-F1 are " + ("mean ± std over " + ("seeds and folds" if seeds and cv else "seeds"
                                                                    if seeds else "folds") if cv or seeds
                                             else "shown with a 95 % interval")
             + ". The 95 % intervals are the widest of a bootstrap over groups, one over examples and, for accuracy, "
             "the exact binomial interval: resampling whole groups alone gives a zero-width interval to a model "
             "that answers one class when every group holds the classes in the same shares (each voice says "
             "every digit), a certainty no test set of this size has. Δ acc is the model's accuracy minus the best one's on "
             "the same examples. McNemar: exact binomial test on the examples where the two models disagree, "
             f"Holm-corrected across the {max(len(c.predictions) - 1, 0)} comparisons. "
             f"Significant (*): adjusted p < {alpha}"
             + (" and the group interval excludes 0." if grouped else "."), ""]
    if grouped:
        lines += [f"Why a bootstrap over groups: the {np.unique(c.predictions[c.best].rows).size} test clips come "
                  "from only "
                  f"{n_groups} groups (speakers, sessions, recordings). Clips of one speaker are not independent: "
                  "a model that fails on a voice fails on many of its clips together, so a clip-level test such as "
                  "McNemar counts the same evidence many times and is too optimistic. Resampling whole groups "
                  f"({n_boot} draws, seeded) gives an interval for the accuracy difference that reflects how it "
                  "would move with other speakers.", ""]
    lines += ["![comparison](comparison.png)", "", "## Most confused classes", ""]
    for m in c.predictions:
        cm = c.confusion(m).astype(float)
        np.fill_diagonal(cm, 0)
        top = np.argsort(cm, axis=None)[::-1][:3]
        pairs = [f"{c.labels[i // len(c.labels)]} → {c.labels[i % len(c.labels)]} ({int(cm.flat[i])})"
                 for i in top if cm.flat[i] > 0]
        lines.append(f"- {m}: " + (", ".join(pairs) if pairs else "no errors"))
    flagged = {m: texts for m, texts in c.warnings.items() if texts}
    if flagged:
        lines += ["", "## Warnings: training that was not done", "",
                  ("A network whose best validation macro-F1 (without validation: training accuracy) over the last "
                  f"{LAST_FRACTION:.0%} of its epochs beats the best before them by more than "
                  f"{100 * IMPROVING_BY:g} points, or that trained a single epoch, is *still improving*; a model "
                  f"whose final training accuracy is within {100 * CHANCE_MARGIN:g} points of always answering the "
                  "most common class is *at chance*. The verdict and the table carry the flag: a ranking against "
                   "such a run may change with more training."), ""]
        lines += [f"- {m}: {text}" for m, texts in flagged.items() for text in texts]
    failed = t[t["status"] != "ok"]
    if len(failed):
        lines += ["", "## Failed", ""] + [f"- {r['model']}: {r['error']}" for _, r in failed.iterrows()]
    lines += ["", "## Runs", ""] + [f"- {m}: " + ", ".join(f"`{os.path.relpath(d, c.out)}`" for d in dirs)
                                   for m, dirs in c.runs.items()]
    lines += [f"- {m}: no runs of its own, the mean of the probabilities of {', '.join(c.runs)}"
              for m in t.loc[t["status"] == "ok", "model"] if m not in c.runs]
    return "\n".join(lines) + "\n"
