"""spectro.comparison."""
