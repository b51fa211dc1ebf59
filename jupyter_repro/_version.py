"""The one place the version is written; labextension/package.json must say the same."""

__version__ = "0.1.0"
