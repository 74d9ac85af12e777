"""spectro.dataset."""
