"""The package version: one home, read by the CLI, the facade and the version records."""

__version__ = "0.1.0"
