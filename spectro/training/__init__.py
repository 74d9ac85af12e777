"""spectro.training."""
