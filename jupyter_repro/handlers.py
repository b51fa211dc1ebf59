"""REST handlers: thin layers that authorize, call a service and map its errors to HTTP.

Every route lives under `{base_url}repro/`. Errors are JSON `{"message", "reason"}` (written
by jupyter_server's APIHandler); handlers never touch the file system themselves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from .status import StatusService

URL_PREFIX = "repro"
# The resource name checked by the server's Authorizer for every route of this extension.
AUTH_RESOURCE = "repro"


class ReproHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every jupyter-repro handler: authorization resource and access to the services."""

    auth_resource = AUTH_RESOURCE

    @property
    def services(self) -> dict[str, Any]:
        return self.settings["jupyter_repro"]

    def write_json(self, document: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class StatusHandler(ReproHandler):
    """GET `repro/status`.

    200: `{"version", "engine": {"name", "version", "embedded"}, "clis": {name: path | null}}`.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        service: StatusService = self.services["status"]
        # Looking CLIs up on PATH stats files: keep it off the event loop.
        document = await asyncio.get_running_loop().run_in_executor(None, service.status)
        self.write_json(document)


def default_handlers() -> list[tuple[str, type[ReproHandler]]]:
    """The routes, relative to the server's base_url (ExtensionApp prepends it)."""
    return [
        (url_path_join("/", URL_PREFIX, "status"), StatusHandler),
    ]
