"""REST handlers: thin layers that authorize, call a service and map its errors to HTTP.

Every route lives under `{base_url}repro/`. Errors are JSON `{"message", "reason"}` (written
by jupyter_server's APIHandler); handlers never touch the file system themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from .environments.catalog import EnvironmentCatalog, EnvironmentNotFound
from .environments.restore import (
    RefusedSpec,
    RestoreError,
    RestoreSource,
    TargetBusy,
    TargetExists,
    UnsatisfiableSpec,
    load_source,
)
from .environments.spec import SpecError
from .jobs import JobManager, JobNotFound, RestoreJobs, error_reason
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
        """Run a service call off the event loop (services read files), mapping its errors."""
        with self.http_errors():
            return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def wait_for(self, awaitable: Awaitable[T]) -> T:
        """Await an async service call, mapping its errors like `call`."""
        with self.http_errors():
            return await awaitable

    @contextlib.contextmanager
    def http_errors(self) -> Iterator[None]:
        """The one place where the services' typed errors become HTTP statuses."""
        try:
            yield
        except EnvironmentNotFound as error:
            raise web.HTTPError(404, str(error), reason="environment not found") from error
        except JobNotFound as error:
            raise web.HTTPError(404, str(error), reason="job not found") from error
        except SpecError as error:
            # str() names the source and line: enough for a person to fix the file.
            raise web.HTTPError(422, str(error), reason="invalid spec") from error
        except (RefusedSpec, UnsatisfiableSpec) as error:
            raise web.HTTPError(422, str(error), reason=error_reason(error)) from error
        except (TargetExists, TargetBusy) as error:
            raise web.HTTPError(409, str(error), reason=error_reason(error)) from error
        except RestoreError as error:
            raise web.HTTPError(400, str(error), reason="restore error") from error


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


SOURCE_KINDS = ("notebook", "file", "content")
RESTORE_KEYS = frozenset({"source", "name", "prefix", "dry_run"})


class RestoreHandler(ReproHandler):
    """POST `repro/restore`.

    Body: `{"source": {"notebook": path} | {"file": path} | {"content": text}, "name"?,
    "prefix"?, "dry_run"?}`; paths are relative to the server root.

    - `dry_run` true: 200 with the plan `{target, name, engine, packages, pip, channels,
      warnings}`; nothing is written.
    - otherwise: 202 with `Location: {base_url}repro/jobs/{id}` and the job (see JobHandler).
    - 400: body not a JSON object, unknown keys, wrong types, name and prefix both given.
    - 403: a path outside the server root (`..`, absolute, a symlink leaving it) or hidden
      (unless the contents manager allows hidden files); 404: no such file.
    - 409: the target exists, or another restore job is building it.
    - 422: an invalid spec (the message names the line), a refused or unsatisfiable spec.
    """

    @property
    def restores(self) -> RestoreJobs:
        return self.services["restore"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self._body()
        source_field = body.get("source")
        if not isinstance(source_field, dict) or len(source_field) != 1:
            raise web.HTTPError(
                400, "'source' must be an object with one of the keys " + ", ".join(SOURCE_KINDS)
            )
        ((kind, value),) = source_field.items()
        if kind not in SOURCE_KINDS:
            raise web.HTTPError(
                400, f"unknown source {kind!r}: use one of " + ", ".join(SOURCE_KINDS)
            )
        if not isinstance(value, str) or (kind != "content" and not value):
            raise web.HTTPError(400, f"'source.{kind}' must be a non-empty string")
        name = self._optional_string(body, "name")
        prefix = self._optional_string(body, "prefix")
        if name is not None and prefix is not None:
            raise web.HTTPError(400, "give 'name' or 'prefix', not both")
        if prefix is not None and not os.path.isabs(prefix):
            # Relative to what? The server's working directory is no place users can see.
            raise web.HTTPError(400, "'prefix' must be an absolute path")
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise web.HTTPError(400, "'dry_run' must be true or false")

        source = await self._load(kind, value)
        target = Path(prefix) if prefix is not None else None
        if dry_run:
            plan = await self.wait_for(self.restores.plan(source, name=name, prefix=target))
            self.write_json(plan.to_json())
            return
        job = await self.wait_for(self.restores.start(source, name=name, prefix=target))
        self.set_header("Location", url_path_join(self.base_url, URL_PREFIX, "jobs", job.id))
        self.write_json(job.to_json(), status=202)

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as error:
            raise web.HTTPError(400, f"the body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        unknown = sorted(set(body) - RESTORE_KEYS)
        if unknown:
            raise web.HTTPError(
                400, f"unknown keys {unknown}; expected some of {sorted(RESTORE_KEYS)}"
            )
        return body

    @staticmethod
    def _optional_string(body: dict[str, Any], key: str) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise web.HTTPError(400, f"'{key}' must be a non-empty string")
        return value

    async def _load(self, kind: str, value: str) -> RestoreSource:
        if kind == "content":
            return await self.call(lambda: load_source(content=value))
        path = await self.call(self._server_file, value)
        try:
            if kind == "notebook":
                return await self.call(lambda: load_source(notebook=path))
            return await self.call(lambda: load_source(file=path))
        except PermissionError:
            raise web.HTTPError(403, f"the server may not read {value!r}") from None
        except FileNotFoundError:  # removed between the check and the read
            raise web.HTTPError(404, f"no file {value!r} in the server root") from None

    def _server_file(self, path: str) -> Path:
        """The real file behind a server-root-relative path, refusing anything outside the root."""
        manager = self.contents_manager
        root = os.path.realpath(
            getattr(manager, "root_dir", None) or self.settings["server_root_dir"]
        )
        # Absolute paths are refused outright: os.path.join would silently drop the root.
        if os.path.isabs(path) or path.startswith(("/", "\\")) or "\x00" in path:
            raise web.HTTPError(403, f"{path!r} is not a path relative to the server root")
        full = os.path.realpath(os.path.join(root, path))
        if os.path.commonpath([root, full]) != root:
            raise web.HTTPError(403, f"{path!r} is outside the server root")
        relative = os.path.relpath(full, root).replace(os.sep, "/")
        if not getattr(manager, "allow_hidden", False) and _hidden(relative):
            raise web.HTTPError(
                403, f"{path!r} is hidden and the server does not serve hidden files"
            )
        if not os.path.isfile(full):
            raise web.HTTPError(404, f"no file {path!r} in the server root")
        return Path(full)


def _hidden(relative: str) -> bool:
    """Whether a root-relative path has a dot-named part (the contents manager's rule)."""
    return any(part.startswith(".") for part in relative.split("/") if part not in ("", "."))


class JobHandler(ReproHandler):
    """GET / DELETE `repro/jobs/{id}`.

    GET 200: `{id, kind, state: queued|running|succeeded|failed|cancelled, progress: {phase,
    done, total}, log: [lines], log_dropped, result: {prefix, name, packages, pip} | null,
    error: {message, reason} | null, cancel_requested, created, started, finished}`.
    DELETE 202: cancels; the job (still `running` until its cleanup finished, then
    `cancelled`); a finished job is returned unchanged. 404: no job with that id.
    """

    @property
    def jobs(self) -> JobManager:
        return self.services["jobs"]

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        with self.http_errors():
            job = self.jobs.get(job_id)
        self.write_json(job.to_json())

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        with self.http_errors():
            job = self.jobs.cancel(job_id)
        self.write_json(job.to_json(), status=202)


def default_handlers() -> list[tuple[str, type[ReproHandler]]]:
    """The routes, relative to the server's base_url (ExtensionApp prepends it)."""
    return [
        (url_path_join("/", URL_PREFIX, "status"), StatusHandler),
        (url_path_join("/", URL_PREFIX, "environments"), EnvironmentsHandler),
        # Environment names are path segments: anything but a slash.
        (url_path_join("/", URL_PREFIX, "environments", "([^/]+)"), EnvironmentHandler),
        (url_path_join("/", URL_PREFIX, "restore"), RestoreHandler),
        (url_path_join("/", URL_PREFIX, "jobs", "([^/]+)"), JobHandler),
    ]
