"""Notebook files: the environment embedded in their metadata, and output stripping."""
