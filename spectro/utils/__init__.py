"""spectro.utils."""
