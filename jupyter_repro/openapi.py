"""GET `repro/openapi.json`: the OpenAPI document of every jupyter-repro route.

The document ships in the package (`jupyter_repro/openapi.json`); the handler fills in the
server's `base_url` so that clients behind a JupyterHub or any other prefix get usable URLs.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from .handlers import URL_PREFIX, ReproHandler

DOCUMENT_NAME = "openapi.json"


@cache
def _shipped_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def openapi_document(base_url: str = "/") -> dict[str, Any]:
    """The shipped document with `servers` pointing at this server's `{base_url}repro`."""
    document = copy.deepcopy(_shipped_document())
    document["servers"] = [
        {
            "url": url_path_join(base_url or "/", URL_PREFIX),
            "description": "this Jupyter server's jupyter-repro routes",
        }
    ]
    return document


class OpenAPIHandler(ReproHandler):
    """GET `repro/openapi.json`.

    200: the OpenAPI 3.1 document of every route of jupyter-repro, `servers` set to
    `{base_url}repro` of this server.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(openapi_document(self.base_url))
