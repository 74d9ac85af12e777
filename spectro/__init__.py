"""spectro: classify signals through their STFT time-frequency images.

The public Python API: what the CLI and the notebooks call. ``__all__`` is
static, and the ``TYPE_CHECKING`` block below names where each object lives,
so IDEs and type checkers see the whole API; at run time the submodules are
imported on first use, so ``import spectro`` and ``spectro --help`` stay
fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from spectro._version import __version__

if TYPE_CHECKING:
    from spectro.comparison.compare import Comparison, compare
    from spectro.config import FeatureConfig, TrainConfig
    from spectro.dataset.splits import Split, cv_splits, make_split
    from spectro.errors import SpectroError, TrainingInterrupted
    from spectro.explain.explain import Explanation, explain_run
    from spectro.inference.export import export_onnx
    from spectro.inference.output import PredictionSummary, write_predictions
    from spectro.inference.predict import FilePrediction, Predictor, find_inputs, load
    from spectro.metrics.scores import compute_metrics, format_report, metrics_from_confusion
    from spectro.models import SVMClassifier, build, describe_models, list_models
    from spectro.plots.comparison import plot_error_curves
    from spectro.plots.figures import plot_confusion, plot_curves, plot_examples, show_examples
    from spectro.signals.features import SpectrogramImage
    from spectro.signals.folds import assign_folds
    from spectro.signals.preprocess import PreprocessResult, preprocess
    from spectro.signals.sources import discover
    from spectro.signals.store import Store, open_store
    from spectro.training.classifier import NetClassifier, load_classifier, make_classifier
    from spectro.training.cv import CVResult, cross_validate
    from spectro.training.evaluate import evaluate
    from spectro.training.run import Run, load_run
    from spectro.training.system import format_system_report, system_report
    from spectro.training.train import train

__all__ = [
    "CVResult", "Comparison", "Explanation", "FeatureConfig", "FilePrediction", "NetClassifier", "PredictionSummary", "Predictor",
    "PreprocessResult", "Run", "SVMClassifier", "SpectroError", "SpectrogramImage", "Split", "Store",
    "TrainConfig", "TrainingInterrupted", "__version__", "assign_folds", "build", "compare", "compute_metrics",
    "cross_validate", "cv_splits", "describe_models", "discover", "evaluate", "explain_run", "export_onnx", "find_inputs",
    "format_report", "list_models", "load", "load_classifier", "load_run", "make_classifier", "make_split",
    "metrics_from_confusion", "open_store", "plot_confusion", "plot_curves", "plot_error_curves", "plot_examples",
    "preprocess", "show_examples", "system_report", "format_system_report", "train", "write_predictions",
]

# public name -> the module that defines it (tests/test_layers.py checks this against __all__)
_API = {
    "SpectroError": "errors", "FeatureConfig": "config", "TrainConfig": "config",
    "discover": "signals.sources", "preprocess": "signals.preprocess", "PreprocessResult": "signals.preprocess",
    "open_store": "signals.store", "Store": "signals.store", "SpectrogramImage": "signals.features",
    "assign_folds": "signals.folds", "Split": "dataset.splits", "make_split": "dataset.splits",
    "cv_splits": "dataset.splits", "compute_metrics": "metrics.scores", "metrics_from_confusion": "metrics.scores",
    "format_report": "metrics.scores", "show_examples": "plots.figures", "plot_examples": "plots.figures",
    "plot_confusion": "plots.figures", "plot_curves": "plots.figures", "plot_error_curves": "plots.comparison",
    "build": "models", "list_models": "models", "describe_models": "models", "SVMClassifier": "models",
    "NetClassifier": "training.classifier", "make_classifier": "training.classifier",
    "load_classifier": "training.classifier", "train": "training.train", "TrainingInterrupted": "errors",
    "cross_validate": "training.cv", "CVResult": "training.cv", "evaluate": "training.evaluate",
    "Run": "training.run", "load_run": "training.run",
    "system_report": "training.system", "format_system_report": "training.system",
    "compare": "comparison.compare", "Comparison": "comparison.compare",
    "explain_run": "explain.explain", "Explanation": "explain.explain",
    "load": "inference.predict", "Predictor": "inference.predict", "FilePrediction": "inference.predict",
    "find_inputs": "inference.predict", "export_onnx": "inference.export",
    "write_predictions": "inference.output", "PredictionSummary": "inference.output",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spectro' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
