"""Every model name spectro knows, with its family, kind and one line about it. No torch here.

This table is the one home of model names: the command line reads it to
list and describe models at once (``spectro models``, the help texts)
without importing torch, and the builders register themselves under these
names (:func:`spectro.models.registry.register_model` refuses a name that is
not here; tests/models/test_models.py checks every name has a builder).

A new model is a row here, a builder with ``@register_model`` in its family
module, and, for a new kind of classifier, a class in
:mod:`spectro.training.classifier`'s kind table.
"""

from __future__ import annotations

from dataclasses import dataclass

from spectro.errors import SpectroError
from spectro.utils.names import name_depth

__all__ = ["ModelInfo", "KINDS", "FAMILIES", "MODELS", "COMPARE_ONLY", "list_models", "model_info", "DESCRIBE_SHAPE",
           "DESCRIBE_CLASSES"]

#: The image shape and class count ``describe_models`` (``spectro models --size``) counts at.
DESCRIBE_SHAPE = (1, 64, 101)
DESCRIBE_CLASSES = 10

#: Kinds of classifier: a torch network trained epoch by epoch, or the SVM fitted once.
KINDS = ("net", "svm")


@dataclass(frozen=True)
class ModelInfo:
    """A model name: its ``family``, its ``kind`` (see :data:`KINDS`) and what it is."""

    name: str
    family: str
    kind: str
    summary: str


#: family -> (kind, what a member is ({depth}: the digits of its name), the names)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "resnet": ("net", "{depth}-layer ResNet of He et al. 2015 (Table 1), ImageNet stem",
               ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")),
    "plain": ("net", "{depth}-layer plain net: resnet{depth}'s layers without shortcuts (He et al. 2015)",
              ("plain18", "plain34", "plain50", "plain101", "plain152")),
    "preresnet": ("net", "{depth}-layer pre-activation ResNet of He et al. 2016",
                  ("preresnet18", "preresnet34", "preresnet50", "preresnet101", "preresnet152")),
    "resnet-small": ("net", "{depth}-layer small-input ResNet (He et al. 2015, Sec. 4.2: CIFAR), 16-32-64 "
                     "channels",
                     ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")),
    "plain-small": ("net", "{depth}-layer small-input plain net: resnet{depth}'s layers without shortcuts",
                    ("plain20", "plain32", "plain44", "plain56", "plain110")),
    "cnn": ("net", "small CNN baseline: conv-BN-ReLU-pool blocks, global pooling, dropout", ("cnn",)),
    "svm": ("svm", "RBF SVM on per-band summary statistics of the image", ("svm",)),
}

MODELS: dict[str, ModelInfo] = {
    name: ModelInfo(name, family, kind, summary.format(depth=name_depth(name)))
    for family, (kind, summary, names) in FAMILIES.items() for name in names
}


#: Names ``compare`` takes beside the trained models: rows it computes from the others' predictions, with no run
#: (or builder) of their own; ``spectro models`` lists them too.
COMPARE_ONLY: dict[str, ModelInfo] = {
    "ensemble": ModelInfo("ensemble", "ensemble", "compare",
                          "compare only: the mean of the other compared models' probabilities (no training)"),
    "reference": ModelInfo("reference", "reference", "compare",
                           "compare only: the practitioner's 30-line script (librosa log-mel statistics, "
                           "scikit-learn SVC), on the same folds"),
}


def list_models(kind: str | None = None) -> list[str]:
    """Sorted model names, optionally only those of one ``kind`` (``"net"`` or ``"svm"``)."""
    return sorted(n for n, m in MODELS.items() if kind is None or m.kind == kind)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``.

    Raises
    ------
    SpectroError
        For an unknown name, with one line listing the valid ones.
    """
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise SpectroError(f"unknown model {name!r}; valid models: {', '.join(list_models())}") from None
