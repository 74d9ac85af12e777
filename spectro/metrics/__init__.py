"""spectro.metrics."""
