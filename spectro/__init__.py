"""spectro: classify signals through their STFT time-frequency images.

The public Python API (what the CLI and the notebooks call). Submodules are
imported on first use, so ``import spectro`` and ``spectro --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "SpectroError": "errors",
    "FeatureConfig": "config",
    "discover": "sources",
    "preprocess": "ingest",
    "PreprocessResult": "ingest",
    "open_store": "store",
    "Store": "store",
    "SpectrogramImage": "features",
    "assign_folds": "data",
    "show_examples": "plots",
    "build": "models",
    "list_models": "models",
    "describe_models": "models",
    "make_classifier": "models",
    "load_classifier": "models",
    "NetClassifier": "models",
    "SVMClassifier": "models",
    "train": "training",
    "cross_validate": "training",
    "TrainingInterrupted": "training",
    "CVResult": "training",
    "evaluate": "evaluation",
    "compare": "comparison",
    "Comparison": "comparison",
    "format_report": "evaluation",
    "TrainConfig": "run",
    "Run": "run",
    "load_run": "run",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spectro' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
