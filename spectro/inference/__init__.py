"""Trained runs on raw signals: predict (``spectro.load``, the Predictor), output (predictions as
a table, CSV or JSON) and export (ONNX, verified against the run's own classifier)."""
