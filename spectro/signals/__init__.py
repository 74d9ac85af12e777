"""spectro.signals."""
