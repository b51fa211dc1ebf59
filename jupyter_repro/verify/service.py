"""Verify a notebook: run it again top to bottom and compare each code cell with its reference.

A code cell's reference is, in this order:

1. its own outputs, when it has any;
2. its fingerprints, `metadata.jupyter_repro.fingerprints[<cell id>]`, recorded when stripping
   removed its outputs;
3. no outputs at all, when it was run (its `execution_count` is set) and printed nothing: a
   notebook saved after a run knows such a cell shows nothing (nbval compares it so too);
4. none: the cell is `no_reference` (a stripped cell without fingerprints, a cell never run).

The cell's directives (`compare.cell_directives`: nbval's and our tags, its metadata) decide
whether it runs (`skip`), whether its outputs count (`ignore_output`), whether an error is
expected (`raises`) and its tolerance. A cell that raises when no error is expected is `error`
whatever its reference says, as in nbval; so is a cell that timed out.

Where it runs: on `options.kernel`, else the notebook's own kernel (`metadata.kernelspec.name`),
else the native `python3`, through the kernel spec manager given (the server's) or a
`CondaKernelSpecManager`, so that the kernels of conda environments start activated. With
`options.restore`, the notebook's environment is rebuilt first from its lock (else its spec; see
`restore.source.load_source`) into a temporary folder, the notebook runs on that environment's
kernel, and the folder is removed afterwards, whatever happens (an error, a cancelled job, a
SIGTERM of the command line, which cancels the run). A folder left by a process killed outright
(SIGKILL) is removed by the next `restore` verification.

The notebook file is only read. Tolerance, sanitizers and the cell timeout come from
`[tool.jupyter_repro.verify]` (see `verify.policy`); `options.timeout` overrides the policy's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..notebooks.embedded import METADATA_KEY, kernel_name, read_notebook
from ..notebooks.nbjson import NotebookError
from ..notebooks.policy import PolicyError
from .compare import (
    Comparison,
    DirectiveError,
    Directives,
    Tolerance,
    cell_directives,
    compare_fingerprints,
    compare_outputs,
)
from .errors import VerifyError
from .execute import CellRun, ExecuteError, execute_notebook
from .policy import VerifyPolicy, load_verify_policy
from .report import CellResult, VerifyReport, utc_now

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

    from ..restore.service import RestoreService
    from ..restore.source import RestoreSource

FINGERPRINTS_KEY = "fingerprints"
"""`metadata.jupyter_repro.fingerprints` (as `notebooks.fingerprint.FINGERPRINTS_KEY`)."""

TEMP_PREFIX = "jupyter-repro-verify-"
"""The name of a --restore verification's temporary folder starts so (in the temp dir)."""
OWNER_FILE = "owner.json"
"""`{"pid", "host"}` of the process using a temporary folder: a dead owner's folder goes."""
RESTORED_KERNEL = "jupyter-repro-restored"
"""The kernel name a restored environment's kernel runs under (a kernelspec of our own)."""


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: on which kernel, or in a restored environment, and the cell timeout."""

    kernel: str | None = None
    """The kernel to run on; None: the notebook's own."""
    restore: bool = False
    """Rebuild the notebook's environment from its lock or spec in a temporary prefix."""
    timeout: float | None = None
    """Seconds a cell may run; None: the policy's `timeout`, else no limit."""


class VerifyProgress(Protocol):
    """Where a verification reports progress.

    `cell(index, total, cell_id, None)` when a cell starts and `cell(index, total, cell_id,
    status)` when it has its verdict (skipped cells: only the latter); `index` is the cell's
    position among all cells, `total` the number of code cells. With `restore`, the progress
    also receives the restore's `phase(...)` (and `transfer(...)`) calls when it has them.
    """

    def cell(self, index: int, total: int, cell_id: str | None, status: str | None) -> None: ...

    def log(self, line: str) -> None: ...


class _Silent:
    def cell(self, index: int, total: int, cell_id: str | None, status: str | None) -> None:
        pass

    def log(self, line: str) -> None:
        pass


class _RestoreProgress:
    """The restore engine's progress for a verify progress that has no `phase`."""

    def __init__(self, progress: VerifyProgress) -> None:
        self._progress = progress

    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        self._progress.log(line)


# --------------------------------------------------------------------------------------------
# one cell's verdict


def reference_of(cell: Mapping[str, Any], fingerprints: Mapping[str, Any]) -> tuple[str, Any]:
    """What a code cell is compared with: `("outputs", [...])`, `("fingerprints", [...])`
    or `("none", None)` (see the module doc)."""
    outputs = cell.get("outputs")
    if isinstance(outputs, list) and outputs:
        return "outputs", outputs
    cell_id = cell.get("id")
    if isinstance(cell_id, str) and isinstance(fingerprints.get(cell_id), list):
        return "fingerprints", fingerprints[cell_id]
    if cell.get("execution_count") is not None:
        return "outputs", []
    return "none", None


def _error_text(run: CellRun) -> str:
    error = run.error
    if run.outcome == "timeout" and error is not None:
        text = f"the cell {error.evalue}"
        return f"{text}; {run.note}" if run.note else text
    if error is None:
        return run.note or "the cell failed"
    where = error.where
    return f"{error.message}\n{where}" if where else error.message


def judge(
    run: CellRun,
    cell: Mapping[str, Any],
    directives: Directives | str,
    fingerprints: Mapping[str, Any],
    policy: VerifyPolicy,
    max_text: int,
) -> CellResult:
    """The verdict on one code cell, from how it ran and its reference. `directives` is the
    message of a DirectiveError when the cell's directives are invalid."""

    def result(status: Any, *, diff: str | None = None, error: str | None = None) -> CellResult:
        return CellResult(run.index, run.cell_id, status, diff, error, run.duration)

    if isinstance(directives, str):
        return result("error", error=f"invalid verification directive: {directives}")
    if run.outcome == "skipped":
        return result("skipped")
    if run.outcome == "not_run":
        return result("skipped", error=run.note)
    if run.outcome == "timeout" or (run.outcome == "error" and not directives.raises):
        return result("error", error=_error_text(run))
    if directives.ignore_output:
        return result("match")
    kind, reference = reference_of(cell, fingerprints)
    if kind == "none":
        return result("no_reference")
    tolerance = directives.tolerance or policy.tolerance
    sanitizers = (*policy.sanitizers, *directives.sanitizers)
    comparison: Comparison
    if kind == "fingerprints":
        comparison = compare_fingerprints(
            run.outputs, reference, tolerance=tolerance, sanitizers=sanitizers, max_text=max_text
        )
    else:
        comparison = compare_outputs(
            run.outputs, reference, tolerance=tolerance, sanitizers=sanitizers
        )
    return result(comparison.status, diff=comparison.diff)


def _directives(cell: Mapping[str, Any], tolerance: Tolerance) -> Directives | str:
    try:
        return cell_directives(cell, tolerance)
    except DirectiveError as error:
        return str(error)


# --------------------------------------------------------------------------------------------
# the environment


def _fingerprint_max_text(notebook: Path) -> int:
    """The strip policy's `fingerprint_max_text` (why a fingerprint kept only a digest)."""
    from ..notebooks.fingerprint import DEFAULT_MAX_TEXT
    from ..notebooks.policy import load_policy

    try:
        options = load_policy(notebook).options
    except PolicyError:
        return DEFAULT_MAX_TEXT
    return int(getattr(options, "fingerprint_max_text", DEFAULT_MAX_TEXT))


def embedded_lock_digest(notebook: Mapping[str, Any], platform: str, where: str) -> str | None:
    """The digest of the notebook's embedded lock: of its part for `platform` when it has
    one, else of the whole lock; None without a (valid) embedded lock."""
    from ..specs.lock import LockError, parse_embedded_lock

    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    data = embedded.get("lock") if isinstance(embedded, dict) else None
    if not isinstance(data, dict):
        return None
    try:
        lock = parse_embedded_lock(data, source=where)
    except LockError:
        return None
    return lock.digest(platform if lock.platform(platform) is not None else None)


def _platform(prefix: Path | None) -> str:
    from ..specs.export import host_platform, platform_of

    if prefix is None or not prefix.is_dir():
        return host_platform()
    return platform_of(prefix)


def _kernel_prefix(name: str, manager: Any, where: str) -> Path | None:
    from ..notebooks.environment import KernelNotResolved, kernel_environment

    try:
        document = {"metadata": {"kernelspec": {"name": name}}}
        return kernel_environment(document, manager, where).prefix
    except (KernelNotResolved, OSError, ValueError):
        return None


def restored_kernelspec(prefix: Path, wanted: str | None, kernels: Path) -> str:
    """Write a kernelspec for the environment at `prefix` into `kernels/RESTORED_KERNEL`:
    the environment's own kernel (the one whose folder `wanted`, the notebook's kernel name,
    ends with, else `python3`, else its only one), launched activated in `prefix`. Returns the
    kernel folder's name; VerifyError when the environment has no kernel."""
    from ..environments.naming import kernel_key
    from ..environments.prefix import Prefix
    from ..kernels.launch import launcher_argv

    found = Prefix(prefix).kernel_dirs()
    if not found:
        raise VerifyError(
            f"the restored environment has no kernel (no share/jupyter/kernels/*/kernel.json "
            f"in {prefix}): add ipykernel (or the notebook's kernel package) to its spec"
        )
    chosen = None
    if wanted:
        chosen = next((k for k in found if wanted.endswith(f"-{kernel_key(k.name)}")), None)
        chosen = chosen or next((k for k in found if k.name == wanted), None)
    chosen = chosen or next((k for k in found if k.name == "python3"), None)
    if chosen is None and len(found) == 1:
        chosen = found[0]
    if chosen is None:
        raise VerifyError(
            f"the restored environment has several kernels ({', '.join(k.name for k in found)}) "
            f"and none is the notebook's ({wanted or 'no kernel named'}); give the notebook "
            "the kernel to use in metadata.kernelspec"
        )
    raw = chosen.spec
    spec = {
        "argv": launcher_argv(str(prefix), [str(a) for a in raw["argv"]]),
        "display_name": str(raw.get("display_name") or chosen.name),
        "language": str(raw.get("language") or ""),
        "interrupt_mode": raw.get("interrupt_mode", "signal"),
        "env": raw.get("env") if isinstance(raw.get("env"), dict) else {},
        "metadata": {"conda_env_path": str(prefix)},
    }
    folder = kernels / RESTORED_KERNEL
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return chosen.name


def _owner_alive(folder: Path) -> bool:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        # No owner file yet: a folder made a moment ago by a process that is writing it.
        try:
            return time.time() - folder.stat().st_mtime < 60
        except OSError:
            return False
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unregister_prefix(home: Path, prefix: Path) -> None:
    """Take `prefix` out of `~/.conda/environments.txt` (a restore added it)."""
    from ..atomic import replace_file
    from ..restore.disk import registry_path

    path = registry_path(home)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    kept = [line for line in lines if line.strip() != str(prefix)]
    if len(kept) != len(lines):
        replace_file(path, "".join(f"{line}\n" for line in kept))


def remove_leftovers(temp_root: Path, home: Path) -> list[Path]:
    """Remove the temporary folders of --restore verifications whose process is gone."""
    removed: list[Path] = []
    try:
        entries = [p for p in temp_root.iterdir() if p.name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    for folder in entries:
        if folder.is_symlink() or not folder.is_dir() or _owner_alive(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        unregister_prefix(home, folder / "env")
        removed.append(folder)
    return removed


def _remove_temporary(folder: Path, home: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    unregister_prefix(home, folder / "env")


# --------------------------------------------------------------------------------------------
# the service


@dataclass
class _Target:
    """Where the cells run."""

    kernel: str
    manager: Any
    environment: dict[str, Any]


class VerifyService:
    """Verifies notebooks; plain class, one per server (or per CLI invocation)."""

    def __init__(
        self,
        kernel_spec_manager: KernelSpecManager | None = None,
        restore_service: RestoreService | None = None,
        environ: Mapping[str, str] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        """`kernel_spec_manager`: the kernels to choose from (default: a
        CondaKernelSpecManager); `restore_service`: restores for `restore` (default: the
        embedded engine with the default options); `environ`: the kernels' environment
        (default: this process's)."""
        self._kernel_spec_manager = kernel_spec_manager
        self._restore_service = restore_service
        self.environ = environ
        self.log = log or logging.getLogger(__name__)

    @property
    def kernel_spec_manager(self) -> KernelSpecManager:
        if self._kernel_spec_manager is None:
            from ..kernels.manager import CondaKernelSpecManager

            self._kernel_spec_manager = CondaKernelSpecManager()
        return self._kernel_spec_manager

    @property
    def restore_service(self) -> RestoreService:
        if self._restore_service is None:
            from ..restore.service import RestoreOptions, RestoreService

            self._restore_service = RestoreService(
                RestoreOptions(), environ=self.environ, log=self.log
            )
        return self._restore_service

    async def verify(
        self,
        notebook: Path,
        options: VerifyOptions,
        progress: VerifyProgress | None = None,
    ) -> VerifyReport:
        """Run `notebook` and compare every code cell; the report. Raises VerifyError when
        it cannot run at all (a cell's failure is in the report, not raised)."""
        progress = progress or _Silent()
        notebook = Path(notebook)
        started, clock = utc_now(), time.monotonic()
        try:
            document = await asyncio.to_thread(read_notebook, notebook)
            policy = await asyncio.to_thread(load_verify_policy, notebook)
            max_text = await asyncio.to_thread(_fingerprint_max_text, notebook)
        except (NotebookError, PolicyError) as error:
            raise VerifyError(str(error)) from error
        timeout = options.timeout if options.timeout is not None else policy.timeout
        if options.restore:
            if options.kernel is not None:
                raise VerifyError("give a kernel or restore, not both")
            target, results = await self._verify_restored(
                notebook, document, policy, max_text, timeout, progress
            )
        else:
            target = await asyncio.to_thread(self._target, notebook, document, options)
            results = await self._run(
                notebook, document, target, policy, max_text, timeout, progress
            )
        return VerifyReport(
            notebook=str(notebook),
            environment=target.environment,
            started=started,
            duration=time.monotonic() - clock,
            cells=results,
        )

    def _target(self, notebook: Path, document: dict[str, Any], options: VerifyOptions) -> _Target:
        from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

        name = options.kernel or kernel_name(document) or NATIVE_KERNEL_NAME
        manager = self.kernel_spec_manager
        prefix = _kernel_prefix(name, manager, str(notebook))
        platform = _platform(prefix)
        environment = {
            "kernel": name,
            "prefix": None if prefix is None else str(prefix),
            "lock_digest": embedded_lock_digest(document, platform, str(notebook)),
            "platform": platform,
        }
        return _Target(name, manager, environment)

    async def _run(
        self,
        notebook: Path,
        document: dict[str, Any],
        target: _Target,
        policy: VerifyPolicy,
        max_text: int,
        timeout: float | None,
        progress: VerifyProgress,
    ) -> list[CellResult]:
        from .execute import notebook_node

        # The cells as nbclient runs them (version 4, lines joined): the same indexes and ids.
        node = await asyncio.to_thread(notebook_node, document)
        cells = {i: c for i, c in enumerate(node.cells) if c.get("cell_type") == "code"}
        total = len(cells)
        directives = {i: _directives(c, policy.tolerance) for i, c in cells.items()}
        embedded = document.get("metadata", {}).get(METADATA_KEY)
        fingerprints = embedded.get(FINGERPRINTS_KEY) if isinstance(embedded, dict) else None
        fingerprints = fingerprints if isinstance(fingerprints, dict) else {}
        results: list[CellResult] = []

        def skip(index: int, cell: Mapping[str, Any]) -> bool:
            found = directives.get(index)
            return isinstance(found, Directives) and found.skip

        def started(index: int, cell_id: str | None) -> None:
            progress.cell(index, total, cell_id, None)

        def finished(run: CellRun) -> None:
            result = judge(
                run, cells[run.index], directives[run.index], fingerprints, policy, max_text
            )
            results.append(result)
            progress.cell(run.index, total, run.cell_id, result.status)
            if result.status in ("differs", "error"):
                progress.log(f"cell {run.index} ({run.cell_id or 'no id'}): {result.status}")

        progress.log(f"running {notebook.name} on kernel {target.kernel}")
        cwd = (await asyncio.to_thread(notebook.resolve)).parent
        try:
            await execute_notebook(
                node,
                kernel_name=target.kernel,
                kernel_spec_manager=target.manager,
                cwd=cwd,
                timeout=timeout,
                skip=skip,
                environ=self.environ,
                on_cell_start=started,
                on_cell=finished,
            )
        except ExecuteError as error:
            raise VerifyError(str(error)) from error
        return results

    async def _verify_restored(
        self,
        notebook: Path,
        document: dict[str, Any],
        policy: VerifyPolicy,
        max_text: int,
        timeout: float | None,
        progress: VerifyProgress,
    ) -> tuple[_Target, list[CellResult]]:
        from jupyter_client.kernelspec import KernelSpecManager

        from ..restore.errors import RestoreError
        from ..restore.source import load_source
        from ..specs.environment import SpecError

        try:
            source: RestoreSource = await asyncio.to_thread(load_source, notebook=notebook)
        except (RestoreError, SpecError, OSError) as error:
            raise VerifyError(f"cannot restore the environment of {notebook}: {error}") from error
        base = self.restore_service
        home = base.home
        temp_root = Path(tempfile.gettempdir())
        await asyncio.to_thread(remove_leftovers, temp_root, home)
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=TEMP_PREFIX))
        try:
            owner = {"pid": os.getpid(), "host": socket.gethostname()}
            (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
            prefix = folder / "env"
            service = self._restore_service_for(base, folder)
            restore_progress = progress if hasattr(progress, "phase") else None
            progress.log(f"restoring the environment of {notebook.name} into {prefix}")
            try:
                await service.restore(
                    source,
                    prefix=prefix,
                    progress=restore_progress or _RestoreProgress(progress),  # type: ignore[arg-type]
                )
            except (RestoreError, SpecError) as error:
                raise VerifyError(
                    f"cannot restore the environment of {notebook}: {error}"
                ) from error
            kernels = folder / "kernels"
            raw = await asyncio.to_thread(
                restored_kernelspec, prefix, kernel_name(document), kernels
            )
            manager = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
            platform = await asyncio.to_thread(_platform, prefix)
            digest = None
            if source.lock is not None:
                part = source.lock.platform(platform)
                digest = source.lock.digest(platform if part is not None else None)
            environment = {
                "kernel": raw,
                "prefix": str(prefix),
                "lock_digest": digest,
                "platform": platform,
                "restored_from": source.origin,
            }
            target = _Target(RESTORED_KERNEL, manager, environment)
            results = await self._run(
                notebook, document, target, policy, max_text, timeout, progress
            )
            return target, results
        finally:
            # Shielded: a cancelled verification still removes the whole folder before it ends.
            await asyncio.shield(asyncio.to_thread(_remove_temporary, folder, home))
            progress.log(f"removed the temporary environment {folder}")

    @staticmethod
    def _restore_service_for(base: RestoreService, folder: Path) -> RestoreService:
        """`base`, or a copy allowed to write into `folder` when `base` restricts prefixes
        (a server's): the folder is ours, made for this verification. The environment lives
        only as long as the verification, so it does not count towards
        `max_user_environments` (the free-space limit still applies)."""
        from ..restore.service import RestoreService

        roots = base.options.allowed_prefix_roots
        if roots is None and not base.options.max_user_environments:
            return base
        options = replace(
            base.options,
            allowed_prefix_roots=None if roots is None else (*roots, folder),
            max_user_environments=0,
        )
        return RestoreService(options, environ=base.environ, home=base.home, log=base.log)
