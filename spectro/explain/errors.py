"""Which test examples each model gets wrong most confidently, and where the models disagree.

Pure functions of the test predictions (probabilities [shape=(N, K)] per
model on the same N examples); they return pandas tables that the report
and the error gallery draw. ``position`` is an example's index in those
N test examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from spectro.errors import SpectroError

__all__ = ["confident_errors", "disagreements", "discordant_pairs"]


def _checked(proba: Mapping[str, np.ndarray], y_true: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    out = {m: np.asarray(p, dtype=np.float64) for m, p in proba.items()}
    for m, p in out.items():
        if p.ndim != 2 or len(p) != len(y_true):
            raise SpectroError(f"{m}: probabilities shaped {p.shape} for {len(y_true)} test examples")
    return out, y_true


def confident_errors(proba: Mapping[str, np.ndarray], y_true: Any, *, labels: Sequence[str], sources: Sequence[str],
                     k: int = 4) -> pd.DataFrame:
    """Per model, its ``k`` wrong test examples with the highest probability on the wrong class.

    Returns
    -------
    pandas.DataFrame
        Columns model, position, true, predicted, probability (of the
        predicted class), p_true (of the true class), source; per model the
        most confident first.
    """
    proba, y_true = _checked(proba, y_true)
    rows = []
    for m, p in proba.items():
        pred = p.argmax(axis=1)
        wrong = np.flatnonzero(pred != y_true)
        conf = p[wrong, pred[wrong]]
        for i in wrong[np.argsort(-conf, kind="stable")][:k]:
            rows.append({"model": m, "position": int(i), "true": labels[y_true[i]], "predicted": labels[pred[i]],
                         "probability": float(p[i, pred[i]]), "p_true": float(p[i, y_true[i]]),
                         "source": str(sources[i])})
    return pd.DataFrame(rows, columns=["model", "position", "true", "predicted", "probability", "p_true", "source"])


def disagreements(proba: Mapping[str, np.ndarray], y_true: Any, *, labels: Sequence[str],
                  sources: Sequence[str]) -> pd.DataFrame:
    """The test examples on which the models do not all predict the same class.

    Returns
    -------
    pandas.DataFrame
        Columns position, true, source, right (how many models are right),
        then one column per model with its predicted class; the examples most
        models get wrong first.
    """
    proba, y_true = _checked(proba, y_true)
    preds = {m: p.argmax(axis=1) for m, p in proba.items()}
    stacked = np.stack(list(preds.values()))  # (models, N)
    split = np.flatnonzero((stacked != stacked[:1]).any(axis=0))
    right = (stacked == y_true[None]).sum(axis=0)
    order = split[np.argsort(right[split], kind="stable")]
    return pd.DataFrame({"position": order, "true": [labels[y_true[i]] for i in order],
                         "source": [str(sources[i]) for i in order], "right": right[order],
                         **{m: [labels[p[i]] for i in order] for m, p in preds.items()}})


def discordant_pairs(proba: Mapping[str, np.ndarray], y_true: Any) -> pd.DataFrame:
    """For each pair of models, the examples only one of them gets right (what McNemar's test counts).

    Returns
    -------
    pandas.DataFrame
        Columns a, b, only_a (a right, b wrong), only_b, both_right, both_wrong.
    """
    proba, y_true = _checked(proba, y_true)
    ok = {m: p.argmax(axis=1) == y_true for m, p in proba.items()}
    rows = [{"a": a, "b": b, "only_a": int((ok[a] & ~ok[b]).sum()), "only_b": int((~ok[a] & ok[b]).sum()),
             "both_right": int((ok[a] & ok[b]).sum()), "both_wrong": int((~ok[a] & ~ok[b]).sum())}
            for a, b in combinations(ok, 2)]
    return pd.DataFrame(rows, columns=["a", "b", "only_a", "only_b", "both_right", "both_wrong"])
