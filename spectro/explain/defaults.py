"""Defaults of ``explain`` (the command line shows them in its help). No torch here."""

__all__ = ["EXPLAIN_EXAMPLES", "EXPLAIN_PROJECTIONS"]

#: Test images ``explain`` draws with each model's maps; its 2-D projections of the embeddings (the first: default).
EXPLAIN_EXAMPLES = 4
EXPLAIN_PROJECTIONS = ("pca", "tsne")
