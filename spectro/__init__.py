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

from ._version import __version__

if TYPE_CHECKING:
    from .classifier import NetClassifier, load_classifier, make_classifier
    from .compare_plots import plot_error_curves
    from .comparison import Comparison, compare
    from .config import FeatureConfig, TrainConfig
    from .cv import CVResult, cross_validate
    from .errors import SpectroError
    from .evaluation import evaluate
    from .export import export_onnx
    from .features import SpectrogramImage
    from .folds import Split, assign_folds, cv_splits, make_split
    from .ingest import PreprocessResult, preprocess
    from .metrics import compute_metrics, format_report, metrics_from_confusion
    from .models import SVMClassifier, build, describe_models, list_models
    from .plots import plot_confusion, plot_curves, plot_examples, show_examples
    from .predict import FilePrediction, Predictor, find_inputs, load
    from .run import Run, load_run
    from .sources import discover
    from .store import Store, open_store
    from .training import TrainingInterrupted, train

__all__ = [
    "CVResult", "Comparison", "FeatureConfig", "FilePrediction", "NetClassifier", "Predictor", "PreprocessResult", "Run", "SVMClassifier", "SpectroError",
    "SpectrogramImage", "Split", "Store", "TrainConfig", "TrainingInterrupted", "__version__", "assign_folds",
    "build", "compare", "compute_metrics", "cross_validate", "cv_splits", "describe_models", "discover", "evaluate",
    "export_onnx", "find_inputs", "format_report", "list_models", "load", "load_classifier", "load_run", "make_classifier", "make_split",
    "metrics_from_confusion", "open_store", "plot_confusion", "plot_curves", "plot_error_curves", "plot_examples", "preprocess",
    "show_examples", "train",
]

# public name -> the module that defines it (tests/test_api.py checks this against __all__)
_API = {
    "SpectroError": "errors", "FeatureConfig": "config", "TrainConfig": "config", "discover": "sources",
    "preprocess": "ingest", "PreprocessResult": "ingest", "open_store": "store", "Store": "store",
    "SpectrogramImage": "features", "assign_folds": "folds", "Split": "folds", "make_split": "folds",
    "cv_splits": "folds", "compute_metrics": "metrics", "metrics_from_confusion": "metrics",
    "format_report": "metrics", "show_examples": "plots", "plot_examples": "plots", "plot_confusion": "plots",
    "plot_curves": "plots", "build": "models", "list_models": "models", "describe_models": "models",
    "SVMClassifier": "models", "NetClassifier": "classifier", "make_classifier": "classifier",
    "load_classifier": "classifier", "train": "training", "TrainingInterrupted": "training",
    "cross_validate": "cv", "CVResult": "cv", "evaluate": "evaluation", "Run": "run", "load_run": "run",
    "load": "predict", "Predictor": "predict", "FilePrediction": "predict", "export_onnx": "export",
    "find_inputs": "predict",
    "compare": "comparison", "Comparison": "comparison", "plot_error_curves": "compare_plots",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spectro' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
