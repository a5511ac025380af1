"""The package version (its own module: the command line reads it without importing the facade)."""

__version__ = "0.1.0"
