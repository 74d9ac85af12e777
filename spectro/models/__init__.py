"""Models: one registry of names, one classifier interface.

Networks (``resnet18..152``, ``plain*``, ``preresnet*``, the small-input
``resnet20..110``/``plain20..110`` and the ``cnn`` baseline) are built by name
with :func:`build`; the ``svm`` is a :class:`Classifier` here, and the networks
become one in :mod:`spectro.training.classifier` (which holds the training loop this
package must not import).
"""

# Importing the family modules registers their names (the decorators run on import).
from spectro.models import cnn, resnet, resnet_small, svm  # noqa: F401
from spectro.models.base import Classifier
from spectro.models.cnn import SmallCNN
from spectro.models.registry import (
                                     build,
                                     count_flops,
                                     count_params,
                                     describe_models,
                                     list_models,
                                     register_model,
)
from spectro.models.resnet import BasicBlock, Bottleneck, ResNet
from spectro.models.svm import SpectrogramFeatures, SVMClassifier
from spectro.models.weights import load_pretrained, load_state_dict_file

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "Classifier",
    "ResNet",
    "SVMClassifier",
    "SmallCNN",
    "SpectrogramFeatures",
    "build",
    "count_flops",
    "count_params",
    "describe_models",
    "list_models",
    "load_pretrained",
    "load_state_dict_file",
    "register_model",
]
