"""spectro.inference."""
