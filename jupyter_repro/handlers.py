"""REST handlers: thin layers that authorize, call a service and map its errors to HTTP.

Every route lives under `{base_url}repro/`. Errors are JSON `{"message", "reason"}` (written
by jupyter_server's APIHandler); handlers never touch the file system themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from .environments.catalog import EnvironmentCatalog, EnvironmentNotFound
from .status import StatusService

T = TypeVar("T")

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

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a service call off the event loop (services read files), mapping its errors.

        The one place where the services' typed errors become HTTP statuses.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(None, function, *args)
        except EnvironmentNotFound as error:
            raise web.HTTPError(404, str(error), reason="environment not found") from error


class StatusHandler(ReproHandler):
    """GET `repro/status`.

    200: `{"version", "engine": {"name", "version", "embedded"}, "clis": {name: path | null}}`.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        service: StatusService = self.services["status"]
        self.write_json(await self.call(service.status))


class EnvironmentsHandler(ReproHandler):
    """GET `repro/environments`.

    200: `{"environments": [{name, prefix, kind, python_version, kernels, is_base,
    is_server_env, writable}]}`, base first.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        catalog: EnvironmentCatalog = self.services["catalog"]

        def listing() -> dict[str, Any]:
            return {"environments": [catalog.summary(e) for e in catalog.entries()]}

        self.write_json(await self.call(listing))


class EnvironmentHandler(ReproHandler):
    """GET `repro/environments/{name}`.

    200: the listing's fields plus `conda_packages` [{name, version, build, channel}] and
    `pip_packages` [{name, version}]. 404 when no environment has that name.
    """

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        catalog: EnvironmentCatalog = self.services["catalog"]

        def details() -> dict[str, Any]:
            return catalog.details(catalog.get(name))

        self.write_json(await self.call(details))


def default_handlers() -> list[tuple[str, type[ReproHandler]]]:
    """The routes, relative to the server's base_url (ExtensionApp prepends it)."""
    return [
        (url_path_join("/", URL_PREFIX, "status"), StatusHandler),
        (url_path_join("/", URL_PREFIX, "environments"), EnvironmentsHandler),
        # Environment names are path segments: anything but a slash.
        (url_path_join("/", URL_PREFIX, "environments", "([^/]+)"), EnvironmentHandler),
    ]
