"""Defaults of ``predict`` and ``export`` (the command line shows them in its help). No torch here."""

__all__ = ["PREDICT_BATCH_SIZE", "TOP_K", "ONNX_OPSET"]

#: Images per model call in ``predict``, and the probabilities shown per file.
PREDICT_BATCH_SIZE = 64
TOP_K = 3
#: ONNX opset of ``export``.
ONNX_OPSET = 18
