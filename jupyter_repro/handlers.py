"""REST handlers: thin layers that authorize, call a service and map its errors to HTTP.

Every route lives under `{base_url}repro/`. Errors are JSON `{"message", "reason"}` (written
by jupyter_server's APIHandler); handlers never touch the file system themselves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import math
import os
import posixpath
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web

from .atomic import OutsideRoot, replace_beneath
from .environments.catalog import EnvironmentCatalog, EnvironmentNotFound
from .environments.channels import redact_text
from .environments.pkgs_dirs import conda_pkgs_dirs
from .environments.platforms import check_platform
from .git.service import GitService, GitServiceError
from .jobs import (
    ArchiveNotReady,
    JobManager,
    JobNotFound,
    JobProgress,
    PackBusy,
    PackJobs,
    RestoreJobs,
    VerificationRunning,
    VerifyJobs,
    error_reason,
    hide_folders,
)
from .notebooks.drift import FROM_FILE, DriftCache
from .notebooks.embedded import METADATA_KEY, NotebookError, kept_keys, kernel_name, read_notebook
from .notebooks.environment import (
    MEDIA_TYPES,
    ExportFormat,
    KernelNotResolved,
    check_export_options,
    embedded_notebook_text,
    embedded_value,
    environment_of,
    export_for_notebook,
    export_text,
    notebook_spec_text,
)
from .notebooks.lock import (
    DEFAULT_LOCK_FILENAMES,
    LOCK_MEDIA_TYPES,
    LockFormat,
    check_lock_format,
    lock_metadata,
    render_lock,
    with_lock,
)
from .notebooks.nbjson import dumps_json
from .notebooks.policy import PolicyError, StripPolicy, load_policy, policy_summary
from .restore.errors import (
    LimitReached,
    RefusedSpec,
    RestoreError,
    SharedTarget,
    TargetBusy,
    TargetExists,
    UnsatisfiableSpec,
)
from .restore.notebooks import free_name, notebook_file_name, restored_kernel, with_kernel
from .restore.source import RestoreSource, load_source
from .specs.environment import SpecError
from .specs.export import ExportError, ExportMode, PackError
from .specs.locking import LockOptions, LockResult, lock_environment
from .specs.pip_lock import PipIndex
from .status import StatusService

T = TypeVar("T")

URL_PREFIX = "repro"
# The resource name checked by the server's Authorizer for every route of this extension.
AUTH_RESOURCE = "repro"

# Typed service errors and their HTTP statuses, subclasses before their bases; a reason of
# None takes the error's own (`error_reason`).
_ERROR_STATUSES: tuple[tuple[type[Exception], int, str | None], ...] = (
    (EnvironmentNotFound, 404, "environment not found"),
    (JobNotFound, 404, "job not found"),
    # A SpecError names the source and line: enough for a person to fix the file.
    (SpecError, 422, "invalid spec"),
    (RefusedSpec, 422, None),
    (UnsatisfiableSpec, 422, None),
    (TargetExists, 409, None),
    (TargetBusy, 409, None),
    # The administrator's policy, not the request's form: a shared folder, a per-user limit.
    (SharedTarget, 403, None),
    (LimitReached, 403, None),
    (VerificationRunning, 409, "verification running"),
    (PackBusy, 409, "packs running"),
    (ArchiveNotReady, 404, "no archive"),
    (PackError, 422, "cannot pack"),
    (RestoreError, 400, "restore error"),
    (ExportError, 422, "cannot export"),
    (KernelNotResolved, 404, "kernel not found"),
    (NotebookError, 400, "not a notebook"),
    # A PolicyError names the pyproject.toml (or the server configuration) and the key.
    (PolicyError, 422, "invalid strip policy"),
    # No repository (inside the server root), git missing, or install() refused: the state
    # of the notebook's folder, not the request, is in the way.
    (GitServiceError, 409, None),
)
_MAPPED_ERRORS = tuple(kind for kind, _, _ in _ERROR_STATUSES)

# What the file system answers about a request's own input (a name too long, a folder where
# a file was named, a file it may not touch) is the request's fault: a 4xx saying so, never a
# 500. Anything else (EIO, ...) stays a server error.
_OS_ERROR_STATUSES: dict[int, tuple[int, str]] = {
    errno.ENAMETOOLONG: (400, "name too long"),
    errno.EINVAL: (400, "invalid name"),
    errno.EILSEQ: (400, "invalid name"),
    errno.ENOENT: (404, "no such file"),
    errno.ENOTDIR: (404, "no such file"),
    errno.EACCES: (403, "not permitted"),
    errno.EPERM: (403, "not permitted"),
    errno.EROFS: (403, "read-only file system"),
    errno.EISDIR: (409, "is a folder"),
    errno.EEXIST: (409, "exists"),
    errno.ELOOP: (409, "symbolic link"),
    errno.ENOSPC: (507, "no space left"),
    errno.EDQUOT: (507, "quota exceeded"),
}
# jupyter's contents API refuses what it would refuse here: resource "contents".
CONTENTS_RESOURCE = "contents"
# The longest file name (bytes) and path most file systems take (Linux NAME_MAX, PATH_MAX).
NAME_MAX = 255
PATH_MAX = 4096


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

    def _server_root(self) -> str:
        """The real path of the folder the contents manager serves."""
        manager = self.contents_manager
        return os.path.realpath(
            getattr(manager, "root_dir", None) or self.settings["server_root_dir"]
        )

    def _server_file(self, path: str) -> Path:
        """The real file behind a server-root-relative path, refusing anything outside the root."""
        manager = self.contents_manager
        root = self._server_root()
        check_path_text(path, "the path")
        # Absolute paths are refused outright: os.path.join would silently drop the root.
        if os.path.isabs(path) or path.startswith(("/", "\\")):
            raise web.HTTPError(403, f"{path!r} is not a path relative to the server root")
        full = _resolved(os.path.join(root, path))
        if full is None:
            raise web.HTTPError(404, f"no file {path!r} in the server root")
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

    def json_body(self, allowed_keys: Collection[str]) -> dict[str, Any]:
        """The request body: a JSON object with only `allowed_keys`, else 400 saying why."""
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError) as error:  # bad JSON or UTF-8, absurd nesting
            raise web.HTTPError(400, f"the body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        unknown = sorted(set(body) - set(allowed_keys))
        if unknown:
            raise web.HTTPError(
                400, f"unknown keys {unknown}; expected some of {sorted(allowed_keys)}"
            )
        return body

    def public_message(self, message: str) -> str:
        """`message` with the server root's location on disk replaced by root-relative paths.

        Service errors name files by their real paths; a client only knows paths relative to
        the server root, and has no business learning where that root is.
        """
        return hide_folders(redact_text(message), [self._server_root()])

    @contextlib.contextmanager
    def http_errors(self) -> Iterator[None]:
        """The one place where the services' typed errors become HTTP statuses."""
        try:
            yield
        except _MAPPED_ERRORS as error:
            for kind, status, reason in _ERROR_STATUSES:
                if isinstance(error, kind):
                    raise web.HTTPError(
                        status,
                        self.public_message(str(error)),
                        reason=reason or error_reason(error),
                    ) from error
            raise  # unreachable: _MAPPED_ERRORS lists exactly the kinds above
        except OutsideRoot as error:  # a folder swapped for a symlink after the checks
            raise web.HTTPError(
                403, self.public_message(str(error)), reason="outside the server root"
            ) from error
        except UnicodeEncodeError as error:  # JSON can carry lone surrogates; no path can
            raise web.HTTPError(
                400,
                f"the request holds text that is not valid Unicode ({error.reason} at "
                f"character {error.start}); send UTF-8",
                reason="invalid text",
            ) from error
        except OSError as error:
            status, reason = _OS_ERROR_STATUSES.get(error.errno or 0, (0, ""))
            if not status:
                raise
            # Never str(error) alone: the OS names absolute paths; public_message shortens them.
            name = f": {error.filename}" if error.filename else ""
            message = f"{error.strerror or reason}{name}"
            raise web.HTTPError(status, self.public_message(message), reason=reason) from error

    async def authorize_contents(self, *actions: str) -> None:
        """403 unless the server's Authorizer also lets this user `actions` the server's
        files (resource `contents`, what jupyter_server's contents API asks): a route that
        reads notebooks or files needs `read`, one that writes them `write`. Checked before
        any file is touched, so a denied user learns nothing of a file, not even whether
        it exists."""
        user = self.current_user
        for action in actions:
            allowed = await ensure_async(
                self.authorizer.is_authorized(self, user, action, CONTENTS_RESOURCE)
            )
            if not allowed:
                raise web.HTTPError(
                    403,
                    f"the server's authorizer does not allow this user to {action} files "
                    f"(resource {CONTENTS_RESOURCE!r})",
                    reason="forbidden",
                )

    async def save_text(self, relative: str, text: str) -> None:
        """Save `text` as the file at root-relative `relative` the way the contents manager
        saves a file model (its pre-save hooks see and may change the model; its post-save
        hooks and the `save` event follow), but write the bytes with `replace_beneath`: a
        symlink swapped in after this route's checks is replaced, never followed out of the
        server root (the stock manager's save writes through it)."""
        manager = self.contents_manager
        model: dict[str, Any] = {"type": "file", "format": "text", "content": text}
        run_pre_save_hooks = getattr(manager, "run_pre_save_hooks", None)
        if run_pre_save_hooks is not None:
            run_pre_save_hooks(model=model, path=relative)
        root = self._server_root()

        def write() -> None:
            content = model.get("content", "")
            if model.get("format") == "base64":
                data = base64.b64decode(content)
            else:
                data = content.encode("utf-8")
            replace_beneath(root, relative, data)

        await self.call(write)
        run_post_save_hooks = getattr(manager, "run_post_save_hooks", None)
        if run_post_save_hooks is not None:
            saved = await self.wait_for(ensure_async(manager.get(relative, content=False)))
            run_post_save_hooks(model=saved, os_path=os.path.join(root, *relative.split("/")))
        emit = getattr(manager, "emit", None)
        if emit is not None:
            emit(data={"action": "save", "path": relative})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            # RFC 9110: a 405 lists the methods the resource has.
            self.set_header("Allow", ", ".join(_allowed_methods(type(self))))
        super().write_error(status_code, **kwargs)


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
    is_server_env, writable, shared}]}`, base first. `shared`: in an administrator's shared
    folder (read-only: no restore writes there).
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        catalog: EnvironmentCatalog = self.services["catalog"]

        def listing() -> dict[str, Any]:
            return {"environments": catalog.summaries()}

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
RESTORE_KEYS = frozenset({"source", "name", "prefix", "dry_run", "lock_environment"})


class RestoreNameHandler(ReproHandler):
    """GET `repro/restore/name?name=NAME`: whether a restore could use NAME now.

    200: `{"name", "target": path | null, "problem": str | null, "conflict": {name, prefix,
    reason, kernels} | null, "suggested_name": str | null}`: `problem` says why the name is
    not a valid environment name; `conflict` what already has it (a listed environment, or a
    folder of that name in any envs dir); `suggested_name` a free name made from it. No
    solve, nothing written: for a name field validated as the user types. 400: no `name`.
    """

    @web.authenticated
    @authorized
    async def get(self) -> None:
        name = self.get_query_argument("name", None)
        if name is None:
            raise web.HTTPError(400, "give the name to check: ?name=NAME")
        restores: RestoreJobs = self.services["restore"]
        check = await self.call(restores.service.check_name, name)
        self.write_json(check.to_json())


class RestoreHandler(ReproHandler):
    """POST `repro/restore`.

    Body: `{"source": {"notebook": path} | {"file": path} | {"content": text}, "name"?,
    "prefix"?, "dry_run"?, "lock_environment"?}`; paths are relative to the server root.
    A file may be a lock (conda-lock.yml, pixi.lock: `lock_environment` chooses a pixi
    environment, default `default`); a notebook restores from its embedded lock, a lock file
    beside it, its embedded spec or an environment.yml beside it, in that order. A lock for
    this platform is installed exactly, every archive's sha256 checked before linking. A file
    may also be a capsule (`jupyter repro pack`): its part for this platform is installed
    offline from its own archives, and its notebooks are written beside it (never over a
    file: `name-1.ipynb`, ...) on the new environment's kernel; the job's result lists them
    (`notebooks`, root-relative). Restoring a capsule also needs `write` on `contents`.

    - `dry_run` true: 200 with the plan `{target, name, engine, packages, pip, channels,
      warnings, conflict, suggested_name}`; nothing is written. A name or prefix that is
      taken is not an error here: `conflict` says what has it and `suggested_name` gives
      a free name (also when the spec's own name cannot be used).
    - otherwise: 202 with `Location: {base_url}repro/jobs/{id}` and the job (see JobHandler).
    - 400: body not a JSON object, unknown keys, wrong types, name and prefix both given.
    - 403: a path outside the server root (`..`, absolute, a symlink leaving it) or hidden
      (unless the contents manager allows hidden files); a notebook or file source when the
      Authorizer denies `read` on `contents` (before the file is looked at); 404: no such
      file.
    - 403: the target is in a shared folder of administrators' environments (reason `shared
      target`), or a per-user limit refuses it: `too many environments`
      (ReproApp.max_user_environments), `not enough space` (ReproApp.min_free_space).
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
        lock_environment = self._optional_string(body, "lock_environment") or "default"
        if kind != "content":
            await self.authorize_contents("read")

        source = await self._load(kind, value, lock_environment)
        target = Path(prefix) if prefix is not None else None
        if dry_run:
            plan = await self.wait_for(self.restores.plan(source, name=name, prefix=target))
            self.write_json(plan.to_json())
            return
        after = None
        if source.kind == "capsule":
            # Its notebooks are written beside it.
            await self.authorize_contents("write")
            after = self._notebook_writer(source)
        job = await self.wait_for(
            self.restores.start(
                source, name=name, prefix=target, after=after, root=self._server_root()
            )
        )
        self.set_header("Location", url_path_join(self.base_url, URL_PREFIX, "jobs", job.id))
        self.write_json(job.to_json(), status=202)

    def _body(self) -> dict[str, Any]:
        return self.json_body(RESTORE_KEYS)

    def _notebook_writer(
        self, source: RestoreSource
    ) -> Callable[[Any, JobProgress], Awaitable[dict[str, Any]]]:
        """What a capsule's restore job does once the environment is there: write the
        capsule's notebooks into the capsule's folder, on the new kernel, through the
        contents manager's hooks and `replace_beneath` (never outside the root), each under
        a name no file has. A notebook that cannot be written is said in the job's log."""
        assert source.capsule is not None
        root = self._server_root()
        folder = os.path.relpath(os.path.dirname(source.capsule), root).replace(os.sep, "/")
        folder = "" if folder == "." else folder
        catalog: EnvironmentCatalog = self.services["catalog"]
        manager = getattr(self, "kernel_spec_manager", None)

        def taken(name: str) -> bool:
            return os.path.lexists(os.path.join(root, *folder.split("/"), name))

        async def write(result: Any, progress: JobProgress) -> dict[str, Any]:
            try:
                kernel = await asyncio.to_thread(restored_kernel, result.prefix, catalog, manager)
            except Exception as error:  # the notebooks are still written, on their own kernel
                progress.log(f"warning: the new kernel is not known: {error}")
                kernel = None
            if kernel is None:
                progress.log(
                    "warning: the new environment has no kernel; the notebooks keep theirs"
                )
            written: list[str] = []
            # Two restores of one capsule finish at once: each picks a free name and saves
            # under it; one after the other, or both would pick the same name.
            writing: asyncio.Lock = self.services.setdefault("notebook_writes", asyncio.Lock())
            for notebook in result.notebooks:
                try:
                    data = with_kernel(notebook.data, kernel).decode("utf-8")
                    async with writing:
                        name = await asyncio.to_thread(
                            free_name, notebook_file_name(notebook.name), taken
                        )
                        relative = f"{folder}/{name}" if folder else name
                        await self.save_text(relative, data)
                except Exception as error:  # each notebook on its own; the environment stays
                    why = getattr(error, "log_message", None) or str(error)
                    progress.log(
                        f"warning: the notebook {notebook.name} was not written: "
                        + self.public_message(str(why))
                    )
                    continue
                written.append(relative)
                on = f" (kernel {kernel.name})" if kernel is not None else ""
                progress.log(f"wrote {relative}{on}")
            return {"notebooks": written}

        return write

    @staticmethod
    def _optional_string(body: dict[str, Any], key: str) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise web.HTTPError(400, f"'{key}' must be a non-empty string")
        return value

    async def _load(self, kind: str, value: str, lock_environment: str) -> RestoreSource:
        if kind == "content":
            return await self.call(
                lambda: load_source(content=value, lock_environment=lock_environment)
            )
        path = await self.call(self._server_file, value)
        # An unreadable file (403) or one removed since the check (404): see http_errors.
        if kind == "notebook":
            return await self.call(
                lambda: load_source(notebook=path, lock_environment=lock_environment)
            )
        return await self.call(lambda: load_source(file=path, lock_environment=lock_environment))


def check_path_text(value: str, what: str) -> None:
    """400 for a path no file system takes: a NUL, text that is not valid Unicode (a lone
    surrogate from JSON), longer than PATH_MAX bytes."""
    if "\x00" in value:
        raise web.HTTPError(400, f"{what} contains a NUL character", reason="invalid path")
    try:
        size = len(os.fsencode(value))
    except UnicodeEncodeError:
        raise web.HTTPError(
            400, f"{what} is not valid Unicode (a lone surrogate)", reason="invalid path"
        ) from None
    if size > PATH_MAX:
        raise web.HTTPError(
            400, f"{what} is too long: {size} bytes, at most {PATH_MAX}", reason="invalid path"
        )


def _resolved(path: str) -> str | None:
    """`os.path.realpath(path)`; None when the path keeps changing under it (realpath's
    readlink fails with EINVAL when a symlink it saw was just replaced by a file)."""
    for _ in range(3):
        try:
            return os.path.realpath(path)
        except OSError:
            continue
    return None


def _allowed_methods(handler: type[web.RequestHandler]) -> list[str]:
    """The HTTP methods `handler` answers (not tornado's 405 defaults)."""
    return [
        method
        for method in web.RequestHandler.SUPPORTED_METHODS
        if getattr(handler, method.lower(), None) is not getattr(web.RequestHandler, method.lower())
    ]


def _hidden(relative: str) -> bool:
    """Whether a root-relative path has a dot-named part (the contents manager's rule)."""
    return any(part.startswith(".") for part in relative.split("/") if part not in ("", "."))


class JobHandler(ReproHandler):
    """GET / DELETE `repro/jobs/{id}`.

    GET 200: `{id, kind, state: queued|running|succeeded|failed|cancelled, progress: {phase,
    done, total}, log: [lines], log_dropped, result, error: {message, reason} | null,
    cancel_requested, created, started, finished}`. `result` (null until succeeded): of a
    `restore` job `{prefix, name, packages, pip}`; of a `verify` job the report (see
    VerifyHandler, which also describes its `progress.step` and `progress.cells`).
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


class _ExportOptions(ReproHandler):
    """Reads `?mode=&format=` for the export routes and writes the text answer."""

    def export_options(self) -> tuple[ExportMode, ExportFormat]:
        mode = self.get_query_argument("mode", None)
        fmt = self.get_query_argument("format", "yaml")
        try:
            # An empty `mode=` is an unknown mode like any other (400), not the default.
            check_export_options("portable" if mode is None else mode, fmt)
        except ValueError as error:
            raise web.HTTPError(400, str(error), reason="bad export option") from None
        if fmt == "explicit" and mode not in (None, "exact"):
            raise web.HTTPError(
                400, f"format explicit lists exact packages; mode {mode!r} does not apply"
            )
        return cast("ExportMode", mode or "portable"), cast("ExportFormat", fmt)

    def write_text(self, text: str, fmt: ExportFormat) -> None:
        # APIHandler.finish would otherwise type every answer as JSON.
        self.finish(text, set_content_type=MEDIA_TYPES[fmt])


class EnvironmentExportHandler(_ExportOptions):
    """GET `repro/environments/{name}/export?mode=&format=`.

    `mode`: portable (default), exact, no-builds; `format`: yaml (default), explicit, json.

    200: the spec as text: `text/yaml; charset=utf-8` (yaml, the default), `text/plain;
    charset=utf-8` (explicit: the `@EXPLICIT` list; mode must be absent or `exact`) or
    `application/json` (json). 400: an unknown mode or format (the message lists the valid
    ones). 404: no environment has that name. 422: the environment cannot be exported that
    way (e.g. explicit for a venv).
    """

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        mode, fmt = self.export_options()
        catalog: EnvironmentCatalog = self.services["catalog"]

        def text() -> str:
            entry = catalog.get(name)
            return export_text(entry.environment.prefix, mode, fmt, entry.name)

        self.write_text(await self.call(text), fmt)


class _NotebookHandler(_ExportOptions):
    """A route under `repro/notebooks/{path}/`: `path` is a notebook relative to the root."""

    def notebook_file(self, path: str) -> Path:
        """The real file of the notebook at `path` (the checks of `_server_file`, plus a
        `.ipynb` name: 400 otherwise)."""
        if not path.endswith(".ipynb"):
            raise web.HTTPError(400, f"{path!r} is not a notebook: the name must end in .ipynb")
        return self._server_file(path)

    def root_relative(self, full: Path) -> str:
        """The contents manager's path of a file `_server_file` returned."""
        return os.path.relpath(full, self._server_root()).replace(os.sep, "/")

    def sibling(self, notebook: Path, name: str) -> str:
        """The root-relative path of `name` in the notebook's folder."""
        folder = posixpath.dirname(self.root_relative(notebook))
        return posixpath.join(folder, name) if folder else name


VERIFY_KEYS = frozenset({"notebook", "restore", "timeout", "kernel"})


class VerifyHandler(_NotebookHandler):
    """POST `repro/verify`: run a notebook top to bottom and compare its outputs, as a job.

    Body: `{"notebook": path, "restore"?: false, "timeout"?: seconds, "kernel"?: name}`;
    `path` is a `.ipynb` relative to the server root. The notebook runs on its own kernel,
    never in a session of the user, and its file is never written: on `kernel` (a name of
    the server's kernel picker), else its `metadata.kernelspec.name`, else `python3`; with
    `restore` true in an environment restored from its lock or spec (embedded, else beside
    it) into a temporary prefix that is removed afterwards, also when the job is cancelled.
    `timeout` is in seconds per cell (default: `timeout` of the project's
    `[tool.jupyter_repro.verify]`, else none). Each code cell's fresh outputs are compared
    with the notebook's own outputs, else with its fingerprints.

    - 202 with `Location: {base_url}repro/jobs/{id}` and the job (kind `verify`; see
      JobHandler). While it runs, `progress.phase` is `restore` (with `restore` true:
      `step` names the restore's phase, `done`/`total` its counts), then `execute` with
      `done` cells of `total` finished, and `progress.cells`: `[{"index", "id",
      "status"}]`, every cell reported so far in the order it ran, `status` `running`
      until it has its result (`match`, `differs`, `error`, `no_reference`, `skipped`).
      Once succeeded, `result` is the report `{"notebook", "environment": {"kernel",
      "prefix", "lock_digest", "platform"}, "started", "duration", "summary": {status:
      count}, "cells": [{"id", "index", "status", "diff"?, "error"?, "duration"}]}` plus
      `verified_record`: the `metadata.jupyter_repro.verified` value (`{"at", "platform",
      "environment", "result"}`) a frontend writes into the notebook when its user asks
      (nothing here writes it). A run that finds differences still succeeds: the
      summary says so; the job fails (`error.reason` `verify error`) only when the notebook
      cannot run at all (its kernel does not start, the restore fails, an invalid
      `[tool.jupyter_repro.verify]`). DELETE `repro/jobs/{id}` stops the run (its kernel,
      its temporary environment) before the job says `cancelled`.
    - 400: body not a JSON object, unknown keys, wrong types (`notebook` not a non-empty
      string, `restore` not a boolean, `timeout` not a number > 0, `kernel` not a kernel
      name), `kernel` and `restore` both given, a path not ending in `.ipynb`, a file that
      is not a notebook, or (with `restore`) a notebook with nothing to restore from.
    - 403: a path outside the server root or hidden, or the Authorizer denying `read` on
      `contents` (checked before the file is looked at).
    - 404: no such notebook; the kernel (`kernel`, else the notebook's) is not on this
      server (`restore` true builds the notebook's environment instead).
    - 409: this notebook is being verified already.
    - 422: (with `restore`) the notebook's embedded spec or lock is invalid.
    """

    @property
    def verifies(self) -> VerifyJobs:
        return self.services["verify"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body(VERIFY_KEYS)
        path = body.get("notebook")
        if not isinstance(path, str) or not path:
            raise web.HTTPError(400, "'notebook' must be a non-empty path to a .ipynb file")
        restore = body.get("restore", False)
        if not isinstance(restore, bool):
            raise web.HTTPError(400, "'restore' must be true or false")
        timeout = body.get("timeout")
        if timeout is not None and not _positive_seconds(timeout):
            raise web.HTTPError(400, "'timeout' must be a number of seconds greater than 0")
        kernel = body.get("kernel")
        if kernel is not None and not _kernel_name_ok(kernel):
            raise web.HTTPError(
                400,
                "'kernel' must be a kernel name: a non-empty string of at most "
                f"{NAME_MAX} characters without control characters",
            )
        if kernel is not None and restore:
            raise web.HTTPError(
                400, "give 'kernel' or 'restore', not both: a restored environment has its kernel"
            )
        await self.authorize_contents("read")
        notebook = await self.call(self.notebook_file, path)
        document = await self.call(read_notebook, notebook)
        if restore:
            # Nothing to restore from, or an invalid spec: refused now, not as a failed job.
            await self.call(lambda: load_source(notebook=notebook))
        else:
            # The kernel the service would choose: named, else the notebook's, else python3.
            await self._check_kernel(kernel or kernel_name(document) or NATIVE_KERNEL_NAME)
        relative = self.root_relative(notebook)
        from .verify.service import VerifyOptions

        options = VerifyOptions(
            kernel=kernel, restore=restore, timeout=None if timeout is None else float(timeout)
        )
        with self.http_errors():
            job = self.verifies.start(notebook, options, shown=relative, root=self._server_root())
        self.set_header("Location", url_path_join(self.base_url, URL_PREFIX, "jobs", job.id))
        self.write_json(job.to_json(), status=202)

    async def _check_kernel(self, name: str) -> None:
        """404 when the server's kernel spec manager has no kernel `name`."""
        manager = self.kernel_spec_manager

        def known() -> bool:
            try:
                manager.get_kernel_spec(name)
            except KeyError:  # jupyter_client's NoSuchKernel
                return False
            return True

        if not await self.call(known):
            raise web.HTTPError(
                404,
                f"no kernel {name!r} on this server; choose one of its kernels, or verify with "
                "'restore': true to rebuild the notebook's environment from its lock or spec",
                reason="kernel not found",
            )


def _positive_seconds(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


class NotebookEnvironmentHandler(_NotebookHandler):
    """GET / POST `repro/notebooks/{path}/environment`; `path` is relative to the server root.

    GET `?mode=&format=`: 200 with the spec of the environment of the notebook's kernel
    (`metadata.kernelspec.name` resolved through the server's kernel spec manager), as text
    typed like `repro/environments/{name}/export`. When the kernel is not on this machine
    but the notebook embeds a spec, that spec answers (yaml or json; `mode` does not apply).
    The header `X-Jupyter-Repro-Source` says `environment` or `embedded`.

    POST `{"target": "file"|"metadata"|"both", "mode"?: "portable", "filename"?:
    "environment.yml", "explicit"?: false}`: exports the environment and writes it (saved
    like a contents-manager save, written race-free: see `save_text`) as `filename` beside
    the notebook (`file`), into the notebook's `metadata.jupyter_repro` leaving everything
    else as it was (`metadata`; `explicit` adds the `@EXPLICIT` URLs), or both. 200:
    `{"written": [root-relative paths], "spec": <the spec as JSON>}`.

    Errors: 400 a path not ending in `.ipynb`, a file that is not a notebook, a bad body,
    mode, format or explicit, a `filename` that is not a plain `.yml`/`.yaml` name (or is
    hidden, or longer than NAME_MAX bytes); 403 a path leaving the root or hidden, or the
    Authorizer denies `read` (GET) or `read`/`write` (POST) on `contents`; 404 no such
    notebook, no kernelspec in its metadata, its kernel not found here (and, for GET, no
    embedded spec); 409 `filename` names a folder; 422 a spec that cannot be exported or
    embedded.
    """

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self.authorize_contents("read")
        if self.get_query_argument("format", None) == "metadata":
            await self._embedded_value(path)
            return
        self._explicit_option()  # only format=metadata uses it; a bad one is still a 400
        mode, fmt = self.export_options()
        notebook = await self.call(self.notebook_file, path)
        text, source = await self.call(
            notebook_spec_text, notebook, self.kernel_spec_manager, mode, fmt, path
        )
        self.set_header("X-Jupyter-Repro-Source", source)
        self.write_text(text, fmt)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        # It reads the notebook and writes it or a file beside it.
        await self.authorize_contents("read", "write")
        mode, target, filename, explicit = self._write_request()
        notebook = await self.call(self.notebook_file, path)
        environment = await self.call(environment_of, notebook, self.kernel_spec_manager, path)
        export = await self.call(lambda: export_for_notebook(environment, mode, explicit=explicit))
        written: list[str] = []
        if target in ("file", "both"):
            destination = self.sibling(notebook, filename)
            # An existing file is checked like any path: a symlink out of the root is refused
            # (one swapped in later is replaced, not followed: see save_text).
            await self.call(self._existing_file_check, destination)
            await self.save_text(destination, export.spec.to_yaml())
            written.append(destination)
        if target in ("metadata", "both"):
            text = await self.call(embedded_notebook_text, notebook, export)
            relative = self.root_relative(notebook)
            await self.save_text(relative, text)
            written.append(relative)
        self.write_json({"written": written, "spec": export.spec.to_dict()})

    async def _embedded_value(self, path: str) -> None:
        """`?format=metadata&mode=&explicit=`: the `metadata.jupyter_repro` value the POST
        would embed, for a frontend that writes it into the open notebook and saves that
        (a write on disk under an open notebook would make it "changed on disk")."""
        mode = self.get_query_argument("mode", "portable")
        explicit = self._explicit_option()
        try:
            check_export_options(mode, "json")
        except ValueError as error:
            raise web.HTTPError(400, str(error), reason="bad export option") from None
        notebook = await self.call(self.notebook_file, path)
        environment = await self.call(environment_of, notebook, self.kernel_spec_manager, path)
        export = await self.call(
            lambda: export_for_notebook(
                environment, cast("ExportMode", mode), explicit=explicit == "true"
            )
        )
        self.set_header("X-Jupyter-Repro-Source", "environment")
        # What the file's value has besides an environment (fingerprints, a verification
        # record) stays: the frontend replaces the whole value with this answer.
        existing = await self.call(_embedded_of, notebook)
        self.write_json({**kept_keys(existing), **embedded_value(export)})

    def _explicit_option(self) -> str:
        explicit = self.get_query_argument("explicit", "false")
        if explicit not in ("true", "false"):
            raise web.HTTPError(400, f"explicit must be true or false, not {explicit!r}")
        return explicit

    def _existing_file_check(self, path: str) -> None:
        try:
            self._server_file(path)
        except web.HTTPError as error:
            if error.status_code != 404:
                raise

    def _write_request(self) -> tuple[ExportMode, str, str, bool]:
        body = self.json_body(WRITE_KEYS)
        target = body.get("target")
        if target not in WRITE_TARGETS:
            raise web.HTTPError(
                400, "'target' must be one of " + ", ".join(WRITE_TARGETS) + f", not {target!r}"
            )
        mode = body.get("mode", "portable")
        if not isinstance(mode, str):
            raise web.HTTPError(400, "'mode' must be a string")
        try:
            check_export_options(mode, "yaml")
        except ValueError as error:
            raise web.HTTPError(400, str(error), reason="bad export option") from None
        explicit = body.get("explicit", False)
        if not isinstance(explicit, bool):
            raise web.HTTPError(400, "'explicit' must be true or false")
        filename = body.get("filename", "environment.yml")
        if isinstance(filename, str):
            check_path_text(filename, "'filename'")
            size = len(os.fsencode(filename))
            if size > NAME_MAX:
                raise web.HTTPError(
                    400,
                    f"'filename' is too long: {size} bytes, at most {NAME_MAX}",
                    reason="invalid path",
                )
        if not isinstance(filename, str) or not _plain_spec_name(
            filename, allow_hidden=getattr(self.contents_manager, "allow_hidden", False)
        ):
            raise web.HTTPError(
                400,
                f"'filename' must be a plain file name ending in .yml or .yaml, not {filename!r}",
            )
        return cast("ExportMode", mode), target, filename, explicit


WRITE_KEYS = frozenset({"mode", "target", "filename", "explicit"})
WRITE_TARGETS = ("file", "metadata", "both")


def _plain_spec_name(name: str, *, allow_hidden: bool) -> bool:
    """A file name without folders, not hidden (unless allowed), ending in .yml/.yaml."""
    if not name or any(c in name for c in "/\\\x00") or name in (".", ".."):
        return False
    if name.startswith(".") and not allow_hidden:
        return False
    return name.endswith((".yml", ".yaml")) and name not in (".yml", ".yaml")


LOCK_KEYS = frozenset({"platforms", "target", "format", "filename"})


class _LockRoute(_NotebookHandler):
    """What the lock routes share: platforms and format from the request, the lock service."""

    def lock_format(self, default: str = "conda-lock") -> LockFormat:
        try:
            return check_lock_format(self.get_query_argument("format", default))
        except ValueError as error:
            raise web.HTTPError(400, str(error), reason="bad lock option") from None

    @staticmethod
    def checked_platforms(platforms: Any) -> tuple[str, ...]:
        if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms):
            raise web.HTTPError(400, "'platforms' must be a list of conda platforms")
        if len(platforms) > 16:
            raise web.HTTPError(400, "at most 16 platforms can be locked at once")
        for platform in platforms:
            try:
                check_platform(platform)
            except ValueError as error:
                raise web.HTTPError(400, str(error), reason="bad lock option") from None
        return tuple(platforms)

    async def lock(self, prefix: Path, platforms: tuple[str, ...], name: str | None) -> LockResult:
        options = self.services["restore_options"]
        lock_options = LockOptions(
            platforms=platforms,
            pip_index=PipIndex(
                index_url=options.pip_index_url,
                find_links=tuple(options.pip_find_links),
                no_index=options.pip_no_index,
            ),
        )
        return await self.wait_for(lock_environment(prefix, lock_options, name=name))

    def write_lock(self, result: LockResult, fmt: LockFormat, text: str) -> None:
        self.set_header("X-Jupyter-Repro-Lock", json.dumps(result.summary()))
        # APIHandler.finish would otherwise type every answer as JSON.
        self.finish(text, set_content_type=LOCK_MEDIA_TYPES[fmt])


class EnvironmentLockHandler(_LockRoute):
    """GET `repro/environments/{name}/lock?platform=&format=`.

    `platform` (repeatable): the platforms to lock (default: this machine's plus linux-64,
    osx-64, osx-arm64, win-64); `format`: `conda-lock` (CEP 37, default), `pixi` or `json`
    (the embedded form). 200: the lock as text; the header `X-Jupyter-Repro-Lock` holds
    `{"platforms", "skipped": {platform: why}, "warnings", "as_of", "packages"}`: a platform
    that cannot be solved is left out and named there. 400 a bad platform or format; 404 no
    such environment; 422 an environment that cannot be locked (not conda, unreadable).
    """

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        fmt = self.lock_format()
        platforms = self.checked_platforms(self.get_query_arguments("platform"))
        catalog: EnvironmentCatalog = self.services["catalog"]
        entry = await self.call(catalog.get, name)
        result = await self.lock(entry.environment.prefix, platforms, entry.name)
        self.write_lock(result, fmt, await self.call(render_lock, result, fmt))


class NotebookLockHandler(_LockRoute):
    """GET / POST `repro/notebooks/{path}/lock`: the lock of the notebook kernel's environment.

    GET `?platform=&format=`: like `repro/environments/{name}/lock`; `format=metadata`
    answers `{"metadata": <the metadata.jupyter_repro value with the lock>, "summary"}` for a
    frontend that writes it into the open notebook.

    POST `{"platforms"?: [...], "target": "file"|"metadata"|"both", "format"?:
    "conda-lock"|"pixi", "filename"?}` writes the lock beside the notebook (default name
    `conda-lock.yml` or `pixi.lock`) and/or into its `metadata.jupyter_repro.lock` (with the
    portable spec it was made from). 200 `{"written": [paths], "summary": {...}}`.

    Errors: 400 a bad body, platform, format or filename; 403 outside the root or the
    Authorizer denies `read`/`write` on `contents`; 404 no notebook or kernel; 422 an
    environment that cannot be locked.
    """

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self.authorize_contents("read")
        wants_metadata = self.get_query_argument("format", None) == "metadata"
        fmt = "json" if wants_metadata else self.lock_format()
        platforms = self.checked_platforms(self.get_query_arguments("platform"))
        notebook = await self.call(self.notebook_file, path)
        environment = await self.call(environment_of, notebook, self.kernel_spec_manager, path)
        result = await self.lock(environment.prefix, platforms, environment.name)
        if wants_metadata:
            existing = await self.call(_embedded_of, notebook)
            value = await self.call(
                lambda: lock_metadata(result, existing, prefix=environment.prefix)
            )
            self.write_json({"metadata": value, "summary": result.summary()})
            return
        self.write_lock(result, cast("LockFormat", fmt), await self.call(render_lock, result, fmt))

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self.authorize_contents("read", "write")
        body = self.json_body(LOCK_KEYS)
        target = body.get("target", "metadata")
        if target not in WRITE_TARGETS:
            raise web.HTTPError(
                400, "'target' must be one of " + ", ".join(WRITE_TARGETS) + f", not {target!r}"
            )
        fmt = body.get("format", "conda-lock")
        if fmt not in ("conda-lock", "pixi"):
            raise web.HTTPError(400, f"'format' must be conda-lock or pixi, not {fmt!r}")
        filename = body.get("filename", DEFAULT_LOCK_FILENAMES[fmt])
        if not isinstance(filename, str) or not _plain_lock_name(
            filename, fmt, allow_hidden=getattr(self.contents_manager, "allow_hidden", False)
        ):
            raise web.HTTPError(
                400,
                "'filename' must be a plain file name: conda-lock.yml or NAME.conda-lock.yml "
                f"(format conda-lock), pixi.lock (format pixi); not {filename!r}",
            )
        platforms = self.checked_platforms(body.get("platforms", []))
        notebook = await self.call(self.notebook_file, path)
        environment = await self.call(environment_of, notebook, self.kernel_spec_manager, path)
        result = await self.lock(environment.prefix, platforms, environment.name)
        written: list[str] = []
        if target in ("file", "both"):
            destination = self.sibling(notebook, filename)
            await self.call(self._existing_file_check, destination)
            await self.save_text(destination, await self.call(render_lock, result, fmt))
            written.append(destination)
        if target in ("metadata", "both"):
            text = await self.call(
                lambda: dumps_json(with_lock(read_notebook(notebook), result, environment.prefix))
            )
            relative = self.root_relative(notebook)
            await self.save_text(relative, text)
            written.append(relative)
        self.write_json({"written": written, "summary": result.summary()})

    def _existing_file_check(self, path: str) -> None:
        try:
            self._server_file(path)
        except web.HTTPError as error:
            if error.status_code != 404:
                raise


def _embedded_of(notebook: Path) -> Any:
    return read_notebook(notebook).get("metadata", {}).get(METADATA_KEY)


def _plain_lock_name(name: str, fmt: str, *, allow_hidden: bool) -> bool:
    if not name or len(os.fsencode(name)) > NAME_MAX or any(c in name for c in "/\\\x00"):
        return False
    if name.startswith(".") and not allow_hidden:
        return False
    if fmt == "pixi":
        return name == "pixi.lock"
    return name in ("conda-lock.yml", "conda-lock.yaml") or (
        name.endswith((".conda-lock.yml", ".conda-lock.yaml")) and len(name) > 15
    )


class NotebookDriftHandler(_NotebookHandler):
    """GET / POST `repro/notebooks/{path}/drift`; `path` is relative to the server root.

    GET: the notebook as saved. 200: `{"status": "in_sync"|"drifted"|"missing_environment"|
    "no_spec", "added": [names], "removed": [names], "changed": [{name, spec, spec_version,
    installed_version}], "spec"?: {"source": "embedded"|"file", "path"}, "message"?}`: the
    embedded spec (else a sibling environment.yml whose `name:` is absent or the notebook's
    environment's) against the live environment of the notebook's kernel, judged as conda
    matches specs; pip packages are named `pip:<name>`. The rules are those of
    `jupyter_repro.notebooks.drift`.

    POST `{"kernel"?: name, "metadata"?: <metadata.jupyter_repro> | null}`: the same for the
    notebook as it is open in a frontend: `kernel` is the kernel its session runs (in place
    of the file's `metadata.kernelspec.name`), `metadata` the `metadata.jupyter_repro` value
    in memory (`null`: it has none, so the sibling environment.yml rule applies); an absent
    key (or a `null` kernel) means "as in the file". Nothing is written. Same answer.

    Answers are cached while the notebook, the file beside it, the kernel's resolution and
    the environment's conda-meta records and site-packages folders stay the same (see
    `DriftCache`): polling costs a few stat calls.

    Errors: 400 not a notebook (name or content), a bad body (not an object, unknown keys,
    `kernel` not a non-empty name, `metadata` neither an object nor null, an embedded value
    without an `environment` object), 403 a path leaving the root or hidden or the
    Authorizer denying `read` on `contents`, 404 no such notebook, 422 an invalid spec.
    """

    @property
    def drifts(self) -> DriftCache:
        cache: DriftCache = self.services.setdefault("drift_cache", DriftCache())
        return cache

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self.authorize_contents("read")  # the notebook and the file beside it
        await self._answer(path, None, FROM_FILE)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self.authorize_contents("read")  # reads what GET reads; writes nothing
        body = self.json_body(DRIFT_KEYS)
        kernel = body.get("kernel")
        if kernel is not None and not _kernel_name_ok(kernel):
            raise web.HTTPError(
                400,
                "'kernel' must be a kernel name: a non-empty string of at most "
                f"{NAME_MAX} characters without control characters",
            )
        embedded = body.get("metadata", FROM_FILE)
        if embedded is not FROM_FILE and embedded is not None and not isinstance(embedded, dict):
            raise web.HTTPError(
                400, "'metadata' must be the notebook's metadata.jupyter_repro object, or null"
            )
        await self._answer(path, kernel, embedded)

    async def _answer(self, path: str, kernel: str | None, embedded: Any) -> None:
        notebook = await self.call(self.notebook_file, path)
        sibling = await self.call(self._readable_sibling, notebook)
        drift = await self.call(
            partial(
                self.drifts.notebook_drift,
                shown=self.root_relative,
                kernel=kernel,
                embedded=embedded,
            ),
            notebook,
            self.kernel_spec_manager,
            sibling,
        )
        self.write_json(drift.to_json())

    def _readable_sibling(self, notebook: Path) -> Path | None:
        """The environment.yml beside the notebook, if the checks of `_server_file` pass."""
        try:
            return self._server_file(self.sibling(notebook, "environment.yml"))
        except web.HTTPError:
            return None


DRIFT_KEYS = frozenset({"kernel", "metadata"})


def _kernel_name_ok(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= NAME_MAX
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )


class NotebookGitHandler(_NotebookHandler):
    """GET / POST `repro/notebooks/{path}/git`; `path` is relative to the server root.

    GET: 200 `{"repository": <root-relative folder of the notebook's git repository> | null,
    "installed": bool, "nbstripout": bool, "details": {...}}`: whether git runs the
    jupyter-repro filter on this notebook (its `filter` attribute is `jupyter-repro` and the
    filter is configured), and whether an nbstripout set-up was found (its filter configured
    or applied to the notebook, or a pre-commit hook). Only a repository inside the server
    root counts (git does not look above it); `null` otherwise, `details.message` says why.

    POST `{"action": "install"}`: installs the filter into that repository (local scope:
    `.git/config` and `.git/info/attributes`, by `jupyter_repro.git.install.install`). 200:
    the new status plus `"output"`: what the installer said. 409: no repository inside the
    server root, git not found, or the installer failed (its message).

    Errors: 400 a path not ending in `.ipynb` or a bad body; 403 a path leaving the root or
    hidden, or the Authorizer denying `read` (GET) or `read`/`write` (POST) on `contents`;
    404 no such notebook; 409 as above.
    """

    @property
    def git(self) -> GitService:
        service: GitService = self.services.setdefault("git", GitService())
        return service

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self.authorize_contents("read")
        notebook = await self.call(self.notebook_file, path)
        status = await self.call(self.git.status, notebook, Path(self._server_root()))
        self.write_json(self._public(status))

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self.authorize_contents("read", "write")  # writes the repository's .git
        body = self.json_body(GIT_KEYS)
        if body.get("action") not in GIT_ACTIONS:
            raise web.HTTPError(
                400, f"'action' must be one of {', '.join(GIT_ACTIONS)}, not {body.get('action')!r}"
            )
        notebook = await self.call(self.notebook_file, path)
        result = await self.call(self.git.install, notebook, Path(self._server_root()))
        result["output"] = [self.public_message(line) for line in result["output"]]
        self.write_json(self._public(result))

    def _public(self, status: dict[str, Any]) -> dict[str, Any]:
        """The status with git's messages naming root-relative paths only."""
        details = status.get("details") or {}
        if isinstance(details.get("message"), str):
            details["message"] = self.public_message(details["message"])
        return status


GIT_KEYS = frozenset({"action"})
GIT_ACTIONS = ("install",)


class NotebookStripPolicyHandler(_NotebookHandler):
    """GET `repro/notebooks/{path}/strip-policy`; `path` is relative to the server root.

    200: `{"on_save": bool, "keep_output": bool, "sources": [str], "options": {<the policy's
    keys>, "notebook_overrides": bool}}`: the strip policy of the notebook's project
    (`[tool.jupyter_repro.strip]` of the nearest pyproject.toml) and the server's
    configuration. The notebook's own metadata is not applied: the frontend combines this
    with the open notebook's `metadata.keep_output`, which may differ from the file on disk.
    `sources` lists, lowest precedence first, the pyproject.toml (relative to the server
    root, `../` leading out of it) and/or `server configuration`; empty for the defaults.
    Errors: 400 a path not ending in `.ipynb`, 403 a path leaving the root or hidden or the
    Authorizer denying `read` on `contents`, 404 no such notebook, 422 an invalid policy
    (the message names the file and the key).
    """

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self.authorize_contents("read")  # the notebook's pyproject.toml
        notebook = await self.call(self.notebook_file, path)
        overrides = self.services.get("strip_overrides") or {}

        def policy() -> StripPolicy:
            try:
                return load_policy(notebook, overrides)
            except PolicyError as error:
                # The project's pyproject.toml may be above the root: name it relatively.
                if error.source is None or not os.path.isabs(error.source):
                    raise
                public = self._public_source(error.source)
                raise PolicyError(str(error).replace(error.source, public), public) from None

        resolved = await self.call(policy)
        summary = policy_summary(resolved)
        summary["sources"] = [self._public_source(source) for source in resolved.sources]
        self.write_json(summary)

    def _public_source(self, source: str) -> str:
        """A pyproject path relative to the server root: clients never learn where it is."""
        if not os.path.isabs(source):
            return source
        return os.path.relpath(source, self._server_root()).replace(os.sep, "/")


def default_handlers() -> list[tuple[str, type[ReproHandler]]]:
    """The routes, relative to the server's base_url (ExtensionApp prepends it)."""
    return [
        (url_path_join("/", URL_PREFIX, "status"), StatusHandler),
        (url_path_join("/", URL_PREFIX, "environments"), EnvironmentsHandler),
        # Environment names are path segments: anything but a slash.
        (url_path_join("/", URL_PREFIX, "environments", "([^/]+)"), EnvironmentHandler),
        (
            url_path_join("/", URL_PREFIX, "environments", "([^/]+)", "lock"),
            EnvironmentLockHandler,
        ),
        (
            url_path_join("/", URL_PREFIX, "environments", "([^/]+)", "export"),
            EnvironmentExportHandler,
        ),
        # A notebook path is any number of segments (tornado URL-decodes it) before the action.
        (
            url_path_join("/", URL_PREFIX, "notebooks", "(.+)", "environment"),
            NotebookEnvironmentHandler,
        ),
        (url_path_join("/", URL_PREFIX, "notebooks", "(.+)", "drift"), NotebookDriftHandler),
        (url_path_join("/", URL_PREFIX, "notebooks", "(.+)", "lock"), NotebookLockHandler),
        (url_path_join("/", URL_PREFIX, "notebooks", "(.+)", "git"), NotebookGitHandler),
        (
            url_path_join("/", URL_PREFIX, "notebooks", "(.+)", "strip-policy"),
            NotebookStripPolicyHandler,
        ),
        (url_path_join("/", URL_PREFIX, "restore"), RestoreHandler),
        (url_path_join("/", URL_PREFIX, "restore", "name"), RestoreNameHandler),
        (url_path_join("/", URL_PREFIX, "verify"), VerifyHandler),
        (url_path_join("/", URL_PREFIX, "pack"), PackHandler),
        (url_path_join("/", URL_PREFIX, "jobs", "([^/]+)"), JobHandler),
        (url_path_join("/", URL_PREFIX, "jobs", "([^/]+)", "download"), JobDownloadHandler),
        (url_path_join("/", URL_PREFIX, "openapi.json"), _openapi_handler()),
    ]


PACK_KEYS = frozenset({"notebooks", "environment", "platforms", "format"})
PACK_FORMATS = ("capsule", "conda-pack")
MAX_PACK_NOTEBOOKS = 64


class PackHandler(_LockRoute):
    """POST `repro/pack`: pack notebooks and their environment for a machine without network.

    Body: `{"notebooks": [path, ...]} | {"environment": name}`, plus `"platforms"?:
    [conda platforms]` (default: the environment's own platform) and `"format"?: "capsule"
    (default) | "conda-pack"`. Paths are `.ipynb` files relative to the server root. A
    capsule holds the notebooks, their lock (the notebooks' embedded lock when it covers the
    platforms, else one made now from the environment of the first notebook's kernel) and
    every conda archive and pip wheel of each platform; `conda-pack` is conda-pack's own
    archive of an environment (`environment` only, its own platform only).

    202 with `Location: {base_url}repro/jobs/{id}` and the job (kind `pack`): its
    `progress.phase` is `lock`, `fetch`, `write` (capsule) or `scan`, `pack` (conda-pack),
    with `done` of `total`. The archive is written into a private folder of the server,
    never into the server root. Once succeeded, `result` is `{"filename", "size",
    "summary", "missing": [{platform, name, why}]}` (what could not be packed, never
    dropped silently) and `GET repro/jobs/{id}/download` streams the archive until the job
    is forgotten (the job retention time), when the archive is removed.

    Errors: 400 a bad body (not an object, unknown keys, both or neither of `notebooks` and
    `environment`, wrong types, a path not ending in .ipynb, a bad platform or format,
    conda-pack with notebooks or another platform); 403 a path leaving the root or hidden,
    or the Authorizer denying `read` on `contents` (for notebooks); 404 no such notebook or
    environment, or a notebook whose kernel is not here and which embeds no lock; 409 too
    many packs running; 422 a notebook or lock that cannot be read.
    """

    @property
    def packs(self) -> PackJobs:
        return self.services["pack"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        from .specs.export import platform_of
        from .specs.pack import PackRequest, notebook_lock

        body = self.json_body(PACK_KEYS)
        notebooks = body.get("notebooks")
        environment = body.get("environment")
        if (notebooks is None) == (environment is None):
            raise web.HTTPError(400, "give 'notebooks' (a list of paths) or 'environment'")
        fmt = body.get("format", "capsule")
        if fmt not in PACK_FORMATS:
            raise web.HTTPError(
                400, f"'format' must be one of {', '.join(PACK_FORMATS)}, not {fmt!r}"
            )
        platforms = self.checked_platforms(body.get("platforms", []))
        options = self.services["restore_options"]
        pip_index = PipIndex(
            index_url=options.pip_index_url,
            find_links=tuple(options.pip_find_links),
            no_index=options.pip_no_index,
        )
        if environment is not None:
            if not isinstance(environment, str) or not environment:
                raise web.HTTPError(400, "'environment' must be a non-empty environment name")
            catalog: EnvironmentCatalog = self.services["catalog"]
            entry = await self.call(catalog.get, environment)
            prefix: Path | None = entry.environment.prefix
            # Reads condarcs and the history: not on the event loop.
            package_dirs = await self.call(
                lambda: conda_pkgs_dirs(entry.environment.prefix, root=entry.environment.root)
            )
            request = PackRequest(
                prefix=prefix,
                name=entry.name,
                platforms=platforms,
                pip_index=pip_index,
                package_dirs=package_dirs,
            )
            if fmt == "conda-pack":
                own = await self.call(platform_of, prefix)
                if any(p != own for p in platforms):
                    raise web.HTTPError(
                        400, f"conda-pack packs the environment as installed ({own}) only"
                    )
        else:
            if fmt == "conda-pack":
                raise web.HTTPError(400, "conda-pack packs an environment only: give 'environment'")
            if (
                not isinstance(notebooks, list)
                or not notebooks
                or not all(isinstance(n, str) and n for n in notebooks)
            ):
                raise web.HTTPError(400, "'notebooks' must be a non-empty list of paths")
            if len(notebooks) > MAX_PACK_NOTEBOOKS:
                raise web.HTTPError(400, f"at most {MAX_PACK_NOTEBOOKS} notebooks at once")
            await self.authorize_contents("read")
            files = [await self.call(self.notebook_file, path) for path in notebooks]
            for file in files:
                await self.call(read_notebook, file)  # 400 when it is not a notebook
            prefix, name, problem = None, None, None
            try:
                found = await self.call(
                    environment_of, files[0], self.kernel_spec_manager, notebooks[0]
                )
                prefix, name = found.prefix, found.name
            except web.HTTPError as error:
                if error.status_code != 404:
                    raise
                problem = error.log_message or "the notebook's kernel is not on this server"
                locks = [await self.call(notebook_lock, file) for file in files]
                if not any(lock is not None for lock in locks):
                    raise web.HTTPError(
                        404,
                        f"{problem}; and the notebook embeds no lock to pack from",
                        reason="kernel not found",
                    ) from None
            dirs_of = prefix
            package_dirs = (
                await self.call(lambda: conda_pkgs_dirs(dirs_of)) if dirs_of is not None else ()
            )
            request = PackRequest(
                notebooks=tuple(files),
                prefix=prefix,
                name=name,
                platforms=platforms,
                pip_index=pip_index,
                environment_problem=problem,
                package_dirs=package_dirs,
            )
        with self.http_errors():
            job = self.packs.start(request, fmt=fmt, hide=(self._server_root(),))
        self.set_header("Location", url_path_join(self.base_url, URL_PREFIX, "jobs", job.id))
        self.write_json(job.to_json(), status=202)


DOWNLOAD_CHUNK = 1 << 20


class JobDownloadHandler(ReproHandler):
    """GET `repro/jobs/{id}/download`: the archive a finished `pack` job wrote.

    200: the file, streamed (`Content-Disposition: attachment; filename=...`,
    `Content-Type` `application/zstd` for a capsule, `application/gzip` for conda-pack).
    404: no job with that id (or forgotten: its archive is removed then), or a job with no
    archive (another kind, not finished, failed or cancelled).
    """

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        packs: PackJobs = self.services["pack"]
        with self.http_errors():
            archive = packs.archive(job_id)
            stream = await asyncio.to_thread(open, archive.path, "rb")
        try:
            size = os.fstat(stream.fileno()).st_size
            quoted = urllib.parse.quote(archive.filename)
            self.set_header(
                "Content-Disposition",
                f"attachment; filename=\"{archive.filename}\"; filename*=UTF-8''{quoted}",
            )
            self.set_header("Content-Length", str(size))
            self.set_header("Content-Type", archive.media_type)
            self.set_header("Cache-Control", "no-store")
            while True:
                chunk = await asyncio.to_thread(stream.read, DOWNLOAD_CHUNK)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            stream.close()
        self.finish(set_content_type=archive.media_type)


def _openapi_handler() -> type[ReproHandler]:
    from .openapi import OpenAPIHandler  # imports this module: resolved on first use

    return OpenAPIHandler
