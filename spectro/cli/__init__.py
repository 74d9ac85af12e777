"""spectro.cli."""
