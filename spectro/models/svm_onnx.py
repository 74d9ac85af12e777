"""The SVM pipeline as an ONNX graph: skl2onnx, plus a converter for SpectrogramFeatures.

skl2onnx converts ``StandardScaler`` and the RBF ``SVC`` by itself, and a
Platt-calibrated SVC (``calibration="sigmoid"``). It has no converter for
temperature scaling (scikit-learn >= 1.8), the default: there the plain SVC
is converted, whose scores output is scikit-learn's one-vs-rest
``decision_function``, and ``softmax(beta * scores)`` is appended to the
graph. spectro's own :class:`~spectro.models.svm.SpectrogramFeatures` needs
the small converter below: per-frequency mean and standard deviation over
time (``ReduceMean``; std as ``sqrt(mean((x - mean)**2))``, numpy's ddof=0)
and, with PCA, ``(x_flat - mean_) @ components_.T``. The graph runs in
float32 where scikit-learn runs in float64; export_onnx checks the
difference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from spectro.errors import SpectroError, first_line
from spectro.models.base import ONNX_EXTRA

__all__ = ["svm_to_onnx"]


def svm_to_onnx(classifier: Any, *, opset: int) -> Any:
    """The fitted :class:`~spectro.models.svm.SVMClassifier` as an ``onnx.ModelProto``.

    Input ``image`` float32 [shape=(batch, C, F, T)] (normalised, the fitted
    shape); outputs ``label`` [shape=(batch,)] and ``probabilities``
    [shape=(batch, n_classes)].
    """
    # Imported here, not at module top: skl2onnx is part of the optional,
    # heavy 'onnx' extra that nothing else in spectro needs.
    try:
        from skl2onnx import convert_sklearn, update_registered_converter
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as err:
        raise SpectroError(f"ONNX export of the SVM needs the onnx extra ({err.name} is missing): "
                           f"{ONNX_EXTRA}") from None
    pipeline = classifier.pipeline_
    if len(pipeline["svc"].classes_) != len(classifier.classes_):
        raise SpectroError("ONNX export of this SVM is not supported: some classes had no training examples, "
                           "so its probability columns do not cover every label")
    parts = pipeline["features"].parts
    if set(parts) - {"stats", "pca"}:
        raise SpectroError(f"ONNX export of this SVM is not supported: its features {'+'.join(parts)} include "
                           "parts with no ONNX converter yet (supported: stats, pca)")
    # The features step's class, taken from the pipeline: this module needs no import of svm.py (which imports it).
    update_registered_converter(type(pipeline["features"]), "SpectroSpectrogramFeatures", _shape, _convert)
    channels, n_freq, n_frames = pipeline["features"].image_shape_
    calibrated = pipeline["svc"]
    beta = None
    if calibrated.method == "temperature":
        fitted = calibrated.calibrated_classifiers_[0]  # ensemble=False: one SVC, one calibrator
        beta = float(fitted.calibrators[0].beta_)
        pipeline = Pipeline([("features", pipeline["features"]), ("scale", pipeline["scale"]),
                             ("svc", fitted.estimator)])
    try:
        with warnings.catch_warnings():
            # skl2onnx reads SVC.probA_/probB_, which scikit-learn 1.9 flags as deprecated
            # (Platt scaling moved to CalibratedClassifierCV, which is what spectro uses).
            warnings.simplefilter("ignore", FutureWarning)
            model = convert_sklearn(
                pipeline, initial_types=[("image", FloatTensorType([None, channels, n_freq, n_frames]))],
                target_opset={"": opset, "ai.onnx.ml": 3}, options={id(pipeline): {"zipmap": False}},
            )
    except Exception as err:  # noqa: BLE001 - skl2onnx raises many types; one line says which
        raise SpectroError(f"skl2onnx could not convert the SVM: {first_line(err)}") from err
    if beta is None:
        return model
    # Two classes: skl2onnx's scores are (d, -d) where scikit-learn's logits are (-d, d).
    return _append_temperature(model, -beta if len(calibrated.classes_) == 2 else beta)


def _append_temperature(model: Any, beta: float) -> Any:
    """Turn the graph's ``probabilities`` output (the SVC's scores) into ``softmax(beta * scores)``."""
    from onnx import TensorProto, helper  # the optional 'onnx' extra, as in svm_to_onnx

    graph = model.graph
    out = next(o for o in graph.output if o.name == "probabilities")
    for node in graph.node:
        node.output[:] = ["decision" if name == out.name else name for name in node.output]
    graph.initializer.append(helper.make_tensor("temperature_beta", TensorProto.FLOAT, [], [beta]))
    graph.node.append(helper.make_node("Mul", ["decision", "temperature_beta"], ["scaled_decision"]))
    graph.node.append(helper.make_node("Softmax", ["scaled_decision"], ["probabilities"], axis=1))
    return model


def _n_features(op: Any) -> int:
    channels, n_freq, _ = op.image_shape_
    n = 2 * channels * n_freq if "stats" in op.features else 0
    return n + (op.pca_.n_components_ if "pca" in op.features else 0)


def _shape(operator: Any) -> None:
    # skl2onnx: the optional 'onnx' extra (see svm_to_onnx); only called once it has imported.
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([None, _n_features(operator.raw_operator)])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """(batch, C, F, T) -> (batch, D): what SpectrogramFeatures._summarise computes."""
    # skl2onnx: the optional 'onnx' extra (see svm_to_onnx); only called once it has imported.
    from skl2onnx.algebra.onnx_ops import (
        OnnxConcat,
        OnnxMatMul,
        OnnxMul,
        OnnxReduceMeanApi18,
        OnnxReshape,
        OnnxSqrt,
        OnnxSub,
    )

    op = operator.raw_operator  # a fitted SpectrogramFeatures
    v = container.target_opset
    x = operator.inputs[0]
    channels, n_freq, n_frames = op.image_shape_
    parts = []
    if "stats" in op.features:
        rows = np.array([-1, channels * n_freq], dtype=np.int64)
        mean = OnnxReduceMeanApi18(x, axes=[3], keepdims=1, op_version=v)  # (batch, C, F, 1)
        dev = OnnxSub(x, mean, op_version=v)
        var = OnnxReduceMeanApi18(OnnxMul(dev, dev, op_version=v), axes=[3], keepdims=0, op_version=v)
        parts.append(OnnxReshape(OnnxReduceMeanApi18(x, axes=[3], keepdims=0, op_version=v), rows, op_version=v))
        parts.append(OnnxReshape(OnnxSqrt(var, op_version=v), rows, op_version=v))  # (batch, C*F)
    if "pca" in op.features:
        flat = OnnxReshape(x, np.array([-1, channels * n_freq * n_frames], dtype=np.int64), op_version=v)
        centred = OnnxSub(flat, op.pca_.mean_.astype(np.float32), op_version=v)
        parts.append(OnnxMatMul(centred, op.pca_.components_.T.astype(np.float32), op_version=v))  # (batch, k)
    out = OnnxConcat(*parts, axis=1, op_version=v, output_names=operator.outputs[:1])
    out.add_to(scope, container)
