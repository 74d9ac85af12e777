"""Metrics and reports of a trained run on a split of its store.

:func:`metrics_from_confusion` is the one definition of accuracy, balanced
accuracy and macro-F1 (scikit-learn's): training's validation numbers and
``spectro evaluate`` both use it. :func:`evaluate` works on every model kind
unchanged, through :class:`spectro.run.Run`.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .errors import SpectroError

__all__ = ["metrics_from_confusion", "compute_metrics", "evaluate", "format_report", "SPLITS"]

SPLITS = ("test", "val", "train", "all")
TOP_K = (2, 3, 5)


def metrics_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1 and per-class scores of a confusion matrix.

    Parameters
    ----------
    cm : np.ndarray [shape=(C, C)]
        Counts; ``cm[i, j]``: examples of class i predicted as j.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over classes that
        have examples), ``macro_f1`` (mean F1 over classes that occur as truth
        or prediction), and lists ``precision``, ``recall``, ``f1``,
        ``support`` per class (0 where undefined). These are scikit-learn's
        definitions (``balanced_accuracy_score``, ``f1_score(average="macro")``).
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    n = cm.sum()
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    seen = (support > 0) | (predicted > 0)
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.astype(np.int64).tolist(),
    }


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Every metric of predictions ``proba`` [shape=(N, C)] against label ids ``y_true`` [shape=(N,)].

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``log_loss``,
        ``top_k_accuracy`` (``{"2": ..., "3": ..., "5": ...}`` for k < C),
        ``per_class`` (``{name: {precision, recall, f1, support}}``),
        ``labels`` and ``confusion_matrix`` (rows: true, columns: predicted).
        Fractions are in [0, 1].
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    c = len(labels)
    pred = proba.argmax(axis=1)
    cm = np.bincount(y_true * c + pred, minlength=c * c).reshape(c, c)
    m = metrics_from_confusion(cm)
    # Stable top-k: rank of the true class = number of classes scored strictly higher.
    true_score = proba[np.arange(len(y_true)), y_true]
    rank = (proba > true_score[:, None]).sum(axis=1)
    p_true = np.clip(true_score, np.finfo(np.float64).eps, 1.0)  # as sklearn.metrics.log_loss
    return {
        "n": int(len(y_true)),
        "accuracy": m["accuracy"],
        "balanced_accuracy": m["balanced_accuracy"],
        "macro_f1": m["macro_f1"],
        "log_loss": float(-np.log(p_true).mean()) if len(y_true) else 0.0,
        "top_k_accuracy": {str(k): float((rank < k).mean()) for k in TOP_K if k < c},
        "per_class": {name: {"precision": m["precision"][i], "recall": m["recall"][i], "f1": m["f1"][i],
                             "support": m["support"][i]} for i, name in enumerate(labels)},
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def evaluate(run: Any, split: str = "test", store: Any = None, *, write: bool = True,
             chunk: int = 2048) -> dict[str, Any]:
    """Score a trained run on one side of its split.

    Parameters
    ----------
    run : str or Run
        A run directory or a loaded :class:`spectro.run.Run`.
    split : {"test", "val", "train", "all"}
        Which of the run's examples (by id, as recorded in its split.csv);
        ``all`` takes every row of the store, e.g. a new store of held-out
        recordings made with the same FeatureConfig.
    store : str or Store, optional
        Default: the store the run was trained on.
    write : bool
        Write ``RUN/eval/<split>.json``, ``<split>_per_class.csv``,
        ``<split>_confusion.csv``, ``<split>_confusion.png`` and
        ``<split>_predictions.csv``.

    Returns
    -------
    dict
        :func:`compute_metrics` plus ``split``, ``run``, ``store``.

    Raises
    ------
    SpectroError
        Unknown split, a store made with another FeatureConfig, labels the run
        does not know, or a split with no examples in the store.
    """
    from .run import Run, load_run, read_split, write_csv, write_json
    from .store import open_store

    split = {"validation": "val"}.get(split, split)
    if split not in SPLITS:
        raise SpectroError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    r = run if isinstance(run, Run) else load_run(str(run))
    if store is None:
        store = r.info["store"]["path"]
    st = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    if st.config.fingerprint() != r.feature_config.fingerprint():
        raise SpectroError(f"store {st.path} was built with another FeatureConfig than run {r.path} "
                           f"(fingerprint {st.config.fingerprint()} vs {r.feature_config.fingerprint()})")
    if split == "all":
        rows = np.arange(len(st))
    else:
        wanted = read_split(r.path)[split]
        if not wanted:
            raise SpectroError(f"run {r.path} has no {split} examples")
        position = {k: i for i, k in enumerate(st.ids.tolist())}
        missing = [k for k in wanted if k not in position]
        if missing:
            raise SpectroError(f"{len(missing)} of the run's {len(wanted)} {split} examples are not in store "
                               f"{st.path} (e.g. {missing[0]!r}); use --split all to score every row of it")
        rows = np.sort(np.fromiter((position[k] for k in wanted), dtype=np.int64))
    label_id = {name: i for i, name in enumerate(r.labels)}
    unknown = sorted({st.labels[c] for c in np.unique(st.y[rows])} - set(label_id))
    if unknown:
        raise SpectroError(f"the store has classes the run was not trained on: {unknown[:5]}")
    y = np.array([label_id[st.labels[c]] for c in st.y[rows]], dtype=np.int64)
    proba = np.concatenate([r.predict_proba(st.features[rows[s:s + chunk]]) for s in range(0, rows.size, chunk)])
    out = compute_metrics(y, proba, r.labels)
    out.update(split=split, run=r.path, store=st.path)
    if write:
        d = os.path.join(r.path, "eval")
        os.makedirs(d, exist_ok=True)
        write_json(os.path.join(d, f"{split}.json"), out)
        write_csv(os.path.join(d, f"{split}_per_class.csv"), ["class", "precision", "recall", "f1", "support"],
                  [{"class": k, **v} for k, v in out["per_class"].items()])
        write_csv(os.path.join(d, f"{split}_confusion.csv"), ["true \\ predicted", *r.labels],
                  [{"true \\ predicted": name, **dict(zip(r.labels, row))}
                   for name, row in zip(r.labels, out["confusion_matrix"])])
        pred = proba.argmax(axis=1)
        write_csv(os.path.join(d, f"{split}_predictions.csv"), ["id", "label", "predicted", "probability"],
                  [{"id": st.ids[i], "label": r.labels[t], "predicted": r.labels[p],
                    "probability": f"{proba[j, p]:.6f}"} for j, (i, t, p) in enumerate(zip(rows, y, pred))])
        from .plots import plot_confusion

        plot_confusion(np.asarray(out["confusion_matrix"]), r.labels, os.path.join(d, f"{split}_confusion.png"),
                       title=f"{os.path.basename(os.path.normpath(r.path))}: {split} "
                             f"(accuracy {out['accuracy']:.3f}, macro-F1 {out['macro_f1']:.3f})")
    return out


def format_report(metrics: dict[str, Any]) -> str:
    """The metrics as the text table ``spectro evaluate`` prints."""
    lines = [f"{metrics.get('split', '')} examples  {metrics['n']}",
             f"accuracy           {metrics['accuracy']:.4f}",
             f"balanced accuracy  {metrics['balanced_accuracy']:.4f}",
             f"macro-F1           {metrics['macro_f1']:.4f}"]
    for k, v in metrics["top_k_accuracy"].items():
        lines.append(f"top-{k} accuracy     {v:.4f}")
    width = max([5] + [len(k) for k in metrics["per_class"]])
    lines += ["", f"{'class'.ljust(width)}  precision  recall      f1  support"]
    for name, s in metrics["per_class"].items():
        lines.append(f"{name.ljust(width)}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}  "
                     f"{s['support']:7d}")
    return "\n".join(lines)
