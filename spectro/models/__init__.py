"""Models: one catalog of names, one classifier interface, the networks and the SVM.

* :mod:`~spectro.models.catalog`: every model name with its family and kind,
  without torch (the command line lists and checks names from it at once);
* :mod:`~spectro.models.registry` and :mod:`~spectro.models.zoo`: builders
  registered under those names, :func:`build` a network by name,
  :func:`describe_models` (parameters, GFLOPs);
* :mod:`~spectro.models.base`: the :class:`Classifier` interface;
* the families: :mod:`~spectro.models.resnet` (ResNets, plain nets,
  pre-activation), :mod:`~spectro.models.resnet_small` (6n+2-layer nets),
  :mod:`~spectro.models.cnn`, :mod:`~spectro.models.svm`.

The networks become classifiers in :mod:`spectro.training.classifier` (which
holds the training loop this package must not import). Names below are
imported on first use, so ``import spectro.models.catalog`` costs no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spectro.models.base import Classifier
    from spectro.models.catalog import ModelInfo, list_models, model_info
    from spectro.models.cnn import SmallCNN
    from spectro.models.registry import register_model
    from spectro.models.resnet import BasicBlock, Bottleneck, ResNet
    from spectro.models.svm import SpectrogramFeatures, SVMClassifier
    from spectro.models.weights import load_pretrained, load_state_dict_file
    from spectro.models.zoo import build, count_flops, count_params, describe_models

__all__ = [
    "BasicBlock", "Bottleneck", "Classifier", "ModelInfo", "ResNet", "SVMClassifier", "SmallCNN",
    "SpectrogramFeatures", "build", "count_flops", "count_params", "describe_models", "list_models",
    "load_pretrained", "load_state_dict_file", "model_info", "register_model",
]

# public name -> the module of this package that defines it
_API = {
    "Classifier": "base", "ModelInfo": "catalog", "list_models": "catalog", "model_info": "catalog",
    "SmallCNN": "cnn", "register_model": "registry", "BasicBlock": "resnet", "Bottleneck": "resnet",
    "ResNet": "resnet", "SpectrogramFeatures": "svm", "SVMClassifier": "svm", "load_pretrained": "weights",
    "load_state_dict_file": "weights", "build": "zoo", "count_flops": "zoo", "count_params": "zoo",
    "describe_models": "zoo",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        if _API[name] != "catalog":  # the zoo first: it imports every family, so every name has its builder
            importlib.import_module(".zoo", __name__)
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spectro.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
