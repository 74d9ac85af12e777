"""Numbers from predictions: scores (accuracy, balanced accuracy, macro-F1, the report) and stats
(exact McNemar, Holm, the bootstrap over groups)."""
