"""spectro.plots."""
