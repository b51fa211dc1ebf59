"""jupyter-repro: reproducible notebooks with conda environments.

This module is imported by every Jupyter server that has the extension enabled and by every
kernel launch (`python -m jupyter_repro.kernels.launch`), so it imports nothing but the
version: not even `typing`. The application class is loaded only when the server asks.
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .app import ReproApp

    return [{"module": "jupyter_repro", "app": ReproApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-repro"}]
