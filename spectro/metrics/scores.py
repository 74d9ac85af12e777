"""Scores of predictions: the one definition of accuracy, balanced accuracy and macro-F1.

:func:`metrics_from_confusion` is scikit-learn's definition on a confusion
matrix; training's validation numbers and ``spectro evaluate`` both use it.
Numbers only: writing them is :mod:`spectro.training.evaluate`'s business.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["metrics_from_confusion", "compute_metrics", "format_report", "TOP_K", "HEADLINE"]

TOP_K = (2, 3, 5)
#: The three numbers a run, a cross-validation and a comparison report first.
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")


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
