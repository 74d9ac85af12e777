"""Is a run done learning? Two warnings a reader must see before trusting a comparison.

* ``still_improving``: the best validation macro-F1 (or, with no validation
  rows, the training accuracy) of the last fifth of the epochs (at least the
  last one) beats the best of all the epochs before them by more than
  :data:`IMPROVING_BY` (2 points): the curve had not flattened when training
  stopped, so more epochs may change the ranking. A network trained for a
  single epoch has no curve to judge and is flagged too.
* ``at_chance``: the training accuracy of the last epoch is within
  :data:`CHANCE_MARGIN` (5 points) of always answering the most common
  training class: the model did not learn its own training data.

* ``unseen_classes`` (:func:`unseen_classes`): the test fold holds classes
  that no training example has, so no model can get them right; seen when
  the groups follow the classes (a ``--group-regex`` that matches the label).

A classifier fitted once (the SVM) has no epochs: only ``at_chance`` and ``unseen_classes`` apply.
The rule is pure arithmetic on metrics.csv's rows; ``train`` writes its
warnings into run.json (``warnings``) and its last line, and ``compare``
shows them in its table and verdict.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from spectro.config import OPTIMIZER_DEFAULTS

__all__ = ["run_warnings", "unseen_classes", "divergence_advice", "IMPROVING_BY", "LAST_FRACTION", "CHANCE_MARGIN"]

#: How much better (absolute, on a 0-1 score) the last epochs must be to count as still improving.
IMPROVING_BY = 0.02
#: The share of the epochs that counts as "the last ones" (at least one epoch).
LAST_FRACTION = 0.2
#: Training accuracy within this of the majority-class rate is "at chance".
CHANCE_MARGIN = 0.05


def run_warnings(history: Sequence[dict[str, Any]], *, majority_rate: float,
                 curve: bool = True) -> list[dict[str, str]]:
    """The warnings of a run from its per-epoch rows (metrics.csv).

    Parameters
    ----------
    history : sequence of dict
        One row per epoch with ``train_accuracy`` and, where there was
        validation, ``val_macro_f1`` (None or NaN without).
    majority_rate : float
        Share of the training rows in the most common class: the accuracy of
        always answering it.
    curve : bool
        False when the history is no learning curve (a classifier fitted once reports its one fit).

    Returns
    -------
    list of dict
        ``{"code": "still_improving" | "at_chance", "text": one sentence}``.
    """
    out: list[dict[str, str]] = []
    if not history:
        return out
    last_train = _number(history[-1].get("train_accuracy"))
    if last_train is not None and last_train <= majority_rate + CHANCE_MARGIN:
        out.append({"code": "at_chance", "text": f"training accuracy {last_train:.3f} is at chance level "
                    f"(always the most common class: {majority_rate:.3f}); it did not learn"})
    if not curve:
        return out
    scores = [_number(r.get("val_macro_f1")) for r in history]
    what = "validation macro-F1"
    if any(s is None for s in scores):
        scores, what = [_number(r.get("train_accuracy")) for r in history], "training accuracy"
    if any(s is None for s in scores):
        return out
    n = len(scores)
    if n == 1:
        out.append({"code": "still_improving", "text": "trained for a single epoch: no curve shows whether it "
                    "converged; more epochs may change this ranking"})
        return out
    k = max(1, math.ceil(LAST_FRACTION * n))
    before, last = max(scores[:n - k]), max(scores[n - k:])
    if last - before > IMPROVING_BY:
        out.append({"code": "still_improving", "text": f"still improving at its last epoch ({what} "
                    f"{before:.3f} -> {last:.3f} over the last {k} of {n} epochs); more epochs may change "
                    "this ranking"})
    return out


def _number(value: Any) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def unseen_classes(train_y: Sequence[int], test_y: Sequence[int], labels: Sequence[str]) -> list[dict[str, str]]:
    """``unseen_classes`` when test labels ``test_y`` hold classes absent from ``train_y``; else nothing."""
    missing = sorted(set(int(v) for v in test_y) - set(int(v) for v in train_y))
    if not missing:
        return []
    names = ", ".join(str(labels[i]) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return [{"code": "unseen_classes", "text": f"the test examples hold {len(missing)} classes that no training "
             f"example has ({names}): no model can get them right; do the groups follow the classes "
             "(--group-regex, --group-col)?"}]


#: What a diverged run is retrained with, where it had no clip of its own.
ADVISED_GRAD_CLIP = 1.0


def divergence_advice(train_config: dict, *, precision: Optional[str] = None, lr: Optional[float] = None) -> str:
    """What to do about a run whose loss or weights stopped being finite: train it again, differently.

    A resume starts from the same weights with the same settings and diverges again, so the advice is
    a new run: without mixed precision when it trained under bf16 or fp16 (the usual cause when float32
    trains: a narrow range), with a lower learning rate, and with a gradient clip when it had none.

    Parameters
    ----------
    train_config : dict
        The run's ``train_config.json``.
    precision : {"fp32", "bf16", "fp16"} or None
        What it trained under (run.json ``precision``); None: not recorded (an older run).
    lr : float, optional
        The peak learning rate it used (default: ``train_config["lr"]``).
    """
    ways = []
    if precision in ("bf16", "fp16"):
        ways.append(f"--no-amp (it trained under {precision} mixed precision, the likely cause)")
    elif precision is None and train_config.get("amp") is not False:
        ways.append("--no-amp if it trained under mixed precision")
    if lr is None:
        lr = train_config.get("lr") or OPTIMIZER_DEFAULTS.get(train_config.get("optimizer"), (None,))[0]
    ways.append(f"a lower --lr (it had {lr:g})" if isinstance(lr, (int, float)) else "a lower --lr")
    clip = train_config.get("grad_clip")
    ways.append(f"a smaller --grad-clip (it had {clip:g})" if isinstance(clip, (int, float))
                else f"--grad-clip {ADVISED_GRAD_CLIP:g}")
    return ("train it again into a new --out with " + ", ".join(ways[:-1]) + " or " + ways[-1]
            + " (resuming it would diverge again)")
