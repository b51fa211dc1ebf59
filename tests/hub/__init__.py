"""A real JupyterHub for end-to-end tests (see :mod:`tests.hub.rig`).

- :mod:`tests.hub.rig`: system users, the single-user servers' venv, the HTTP channel that
  counts downloads, the hub itself and a small REST client for it.
- :mod:`tests.hub.fixtures`: the session-wide ``hub`` fixture (``from tests.hub.fixtures
  import *`` in ``tests/conftest.py``).
- ``package.json``, ``yarn.lock``, ``.yarnrc.yml``: configurable-http-proxy, installed by
  ``make hub-tools`` (the venv's ``jlpm``) into ``.hub-tools/``.
"""
