"""The SVM pipeline as an ONNX graph: skl2onnx, plus a converter for SpectrogramFeatures.

skl2onnx converts ``StandardScaler`` and the RBF ``SVC`` by itself, and a
Platt-calibrated SVC (``calibration="sigmoid"``). It has no converter for
temperature scaling (scikit-learn >= 1.8), the default: there the plain SVC
is converted, whose scores output is scikit-learn's one-vs-rest
``decision_function``, and ``softmax(beta * scores)`` is appended to the
graph. spectro's own :class:`~spectro.dataset.summaries.SpectrogramFeatures` needs
the small converter below, which follows its front-end: time pooling (a
reshape to (.., T'/p, p) and ``ReduceMean``), peak referencing (``ReduceMax``
over frequency and time), per-band mean removal, then per-frequency mean and
standard deviation over time (std as ``sqrt(mean((x - mean)**2))``, numpy's
ddof=0), the delta statistics (a ``Slice`` difference), maximum and minimum,
the DCT over frequency (a ``MatMul`` by the orthonormal DCT-II matrix) and,
with PCA, ``(x_flat - mean_) @ components_.T``. Percentiles (``pct``) have no
converter. The graph runs in
float32 where scikit-learn runs in float64; export_onnx checks the
difference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.fft import dct
from sklearn.pipeline import Pipeline

from spectro.dataset.summaries import N_DCT
from spectro.errors import SpectroError, first_line
from spectro.models.base import ONNX_EXTRA

__all__ = ["svm_to_onnx", "CONVERTED"]

#: Summary parts the converter handles (every transform of a front-end is handled).
CONVERTED = ("stats", "delta", "range", "dct", "pca")


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
    if set(parts) - set(CONVERTED):
        raise SpectroError(f"ONNX export of this SVM is not supported: its front-end "
                           f"{pipeline['features'].features} includes parts with no ONNX converter yet "
                           f"(supported: {', '.join(CONVERTED)})")
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
    channels, n_freq, n_frames = op.image_shape_
    per_band = {"stats": 1 if op.frontend.cmn else 2, "delta": 2, "range": 2}
    n = sum(k * channels * n_freq for part, k in per_band.items() if part in op.parts)
    if "dct" in op.parts:
        n += (1 if op.frontend.cmn else 2) * channels * min(n_freq, N_DCT)
    return n + (op.pca_.n_components_ if "pca" in op.parts else 0)


def _shape(operator: Any) -> None:
    # skl2onnx: the optional 'onnx' extra (see svm_to_onnx); only called once it has imported.
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([None, _n_features(operator.raw_operator)])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """(batch, C, F, T) -> (batch, D): what SpectrogramFeatures.transform computes."""
    # skl2onnx: the optional 'onnx' extra (see svm_to_onnx); only called once it has imported.
    from skl2onnx.algebra.onnx_ops import (
        OnnxAbs,
        OnnxConcat,
        OnnxMatMul,
        OnnxMul,
        OnnxNeg,
        OnnxReduceMaxApi18,
        OnnxReduceMeanApi18,
        OnnxReshape,
        OnnxSlice,
        OnnxSqrt,
        OnnxSub,
    )

    op = operator.raw_operator  # a fitted SpectrogramFeatures
    fe = op.frontend
    v = container.target_opset
    x = operator.inputs[0]
    channels, n_freq, n_frames = op.image_shape_

    def i64(*values: int) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    def mean_std(t: Any, keep: int = 0) -> tuple[Any, Any]:
        m = OnnxReduceMeanApi18(t, axes=[3], keepdims=1, op_version=v)  # (batch, C, F', 1)
        dev = OnnxSub(t, m, op_version=v)
        var = OnnxReduceMeanApi18(OnnxMul(dev, dev, op_version=v), axes=[3], keepdims=0, op_version=v)
        return OnnxReduceMeanApi18(t, axes=[3], keepdims=0, op_version=v), OnnxSqrt(var, op_version=v)

    t, frames = x, n_frames
    if fe.pool > 1:
        p = min(fe.pool, n_frames)
        frames = n_frames // p
        t = OnnxSlice(t, i64(0), i64(frames * p), i64(3), op_version=v)
        t = OnnxReshape(t, i64(-1, channels, n_freq, frames, p), op_version=v)
        t = OnnxReduceMeanApi18(t, axes=[4], keepdims=0, op_version=v)  # (batch, C, F, T')
    if fe.peak:
        t = OnnxSub(t, OnnxReduceMaxApi18(t, axes=[2, 3], keepdims=1, op_version=v), op_version=v)
    if fe.cmn:
        t = OnnxSub(t, OnnxReduceMeanApi18(t, axes=[3], keepdims=1, op_version=v), op_version=v)
    rows = i64(-1, channels * n_freq)
    parts = []
    for part in fe.parts:
        if part == "stats":  # after cmn the means are zero: the std only, as SpectrogramFeatures
            parts += [OnnxReshape(s, rows, op_version=v) for s in mean_std(t)[1 if fe.cmn else 0:]]
        elif part == "delta":
            if frames > 1:
                d = OnnxSub(OnnxSlice(t, i64(1), i64(frames), i64(3), op_version=v),
                            OnnxSlice(t, i64(0), i64(frames - 1), i64(3), op_version=v), op_version=v)
                absmean = OnnxReduceMeanApi18(OnnxAbs(d, op_version=v), axes=[3], keepdims=0, op_version=v)
                parts += [OnnxReshape(absmean, rows, op_version=v), OnnxReshape(mean_std(d)[1], rows, op_version=v)]
            else:  # one frame: no change, as numpy's zeros
                zero = OnnxSub(t, t, op_version=v)
                parts += [OnnxReshape(OnnxReduceMeanApi18(zero, axes=[3], keepdims=0, op_version=v), rows,
                                      op_version=v)] * 2
        elif part == "range":
            parts += [OnnxReshape(OnnxReduceMaxApi18(t, axes=[3], keepdims=0, op_version=v), rows, op_version=v),
                      # min = -max(-x): skl2onnx has no opset-independent ReduceMin
                      OnnxReshape(OnnxNeg(OnnxReduceMaxApi18(OnnxNeg(t, op_version=v), axes=[3], keepdims=0,
                                                             op_version=v), op_version=v), rows, op_version=v)]
        elif part == "dct":
            k = min(n_freq, N_DCT)
            basis = dct(np.eye(n_freq), type=2, norm="ortho", axis=0)[:k].astype(np.float32)  # (K, F)
            c = OnnxMatMul(basis, t, op_version=v)  # (batch, C, K, T')
            parts += [OnnxReshape(s, i64(-1, channels * k), op_version=v) for s in mean_std(c)[1 if fe.cmn else 0:]]
        elif part == "pca":
            flat = OnnxReshape(t, i64(-1, channels * n_freq * frames), op_version=v)
            centred = OnnxSub(flat, op.pca_.mean_.astype(np.float32), op_version=v)
            parts.append(OnnxMatMul(centred, op.pca_.components_.T.astype(np.float32), op_version=v))  # (batch, k)
    out = OnnxConcat(*parts, axis=1, op_version=v, output_names=operator.outputs[:1])
    out.add_to(scope, container)
