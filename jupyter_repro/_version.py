"""The one place the Python package's version is written (the labextension's package.json must match)."""

__version__ = "0.1.0"
