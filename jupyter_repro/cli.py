"""`jupyter repro ...`: the command line over the same services the server uses."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ._version import __version__
from .environments.channels import redact_text

_T = TypeVar("_T")

if TYPE_CHECKING:
    from .environments.catalog import CatalogEntry
    from .kernels.manager import CondaKernelSpecManager
    from .notebooks.strip import StripOptions, StripResult
    from .restore.service import RestorePlan
    from .restore.source import RestoreSource
    from .specs.export import ExportMode


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """`rows` as lines of left-aligned columns two spaces apart (the last one not padded)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def format_duration(seconds: float) -> str:
    """A duration for people: `850 ms`, `4.2 s`, `1 min 3 s`, `2 h 5 min`."""
    milliseconds = round(seconds * 1000)
    if milliseconds < 1000:
        return f"{max(milliseconds, 0)} ms"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _status(args: argparse.Namespace) -> int:
    from .environments.engines import EMBEDDED_ENGINE
    from .status import StatusService, describe

    document = StatusService(args.engine or EMBEDDED_ENGINE).status()
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print("\n".join(table(describe(document))))
    return 0


def _manager() -> CondaKernelSpecManager:
    from .kernels.manager import CondaKernelSpecManager
    from .restore.limits import configured_shared_envs_dirs

    # The server's shared folders (ReproApp.shared_envs_dirs in its config files) too.
    return CondaKernelSpecManager(shared_envs_dirs=configured_shared_envs_dirs())


# The marks of `jupyter repro envs`: the summary key each stands for, and its legend.
ENV_LEGEND = (
    ("*", "is_server_env", "the environment of this Python (the server's, when it runs here)"),
    ("B", "is_base", "a base environment (the root of a conda installation)"),
    ("S", "shared", "shared: an administrator's environment, read-only (no restore writes there)"),
)
ENV_MARKS = tuple((mark, key) for mark, key, _ in ENV_LEGEND)


def _envs(args: argparse.Namespace) -> int:
    catalog = _manager().catalog
    summaries = catalog.summaries()
    if args.json:
        print(json.dumps({"environments": summaries}, indent=2, sort_keys=True))
        return 0
    if not summaries:
        print("no environments found")
        return 0
    rows = [("", "NAME", "KIND", "PYTHON", "KERNELS", "PREFIX")]
    used: set[str] = set()
    for s in summaries:
        marks = "".join(mark for mark, key in ENV_MARKS if s[key])
        used.update(marks)
        kernels = str(len(s["kernels"]))
        rows.append((marks, s["name"], s["kind"], s["python_version"] or "-", kernels, s["prefix"]))
    print("\n".join(table(rows)))
    legend = [f"{mark} {meaning}" for mark, key, meaning in ENV_LEGEND if mark in used]
    if legend:
        print("\n" + "\n".join(legend))
    return 0


def _kernels_list(args: argparse.Namespace) -> int:
    manager = _manager()
    kernels = manager.conda_kernels()
    if not kernels:
        print("no environment kernels found")
        return 0
    rows = [("KERNEL", "DISPLAY NAME", "PREFIX")]
    for name in sorted(kernels):
        kernel = kernels[name]
        hidden = "" if kernel.listed else "  (hidden: same as the native kernel)"
        rows.append((name, kernel.spec.display_name, f"{kernel.environment.prefix}{hidden}"))
    print("\n".join(table(rows)))
    return 0


def _kernels_sync(args: argparse.Namespace) -> int:
    from .kernels.sync import kernels_dir, sync_kernelspecs

    destination = kernels_dir(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix)
    try:
        report = sync_kernelspecs(_manager(), destination)
    except PermissionError as error:
        print(
            f"jupyter repro: error: cannot write kernelspecs in {destination}: {error.strerror}; "
            "use --user, --sys-prefix or --prefix",
            file=sys.stderr,
        )
        return 1
    print(
        f"{destination}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} stale removed"
    )
    for name in report.written:
        print(f"  + {name}")
    for name in report.removed:
        print(f"  - {name}")
    return 0


class _ExportProblem(Exception):
    """A user error of `jupyter repro export`, with the message to print."""


def _notebook_environment(notebook: Path) -> tuple[Path, str | None]:
    """The prefix (and name) of the environment of the notebook's kernel."""
    from .notebooks.embedded import read_notebook
    from .notebooks.environment import KernelNotResolved, kernel_environment

    try:
        found = kernel_environment(read_notebook(notebook), _manager(), str(notebook))
    except KernelNotResolved as error:
        raise _ExportProblem(f"{error}; use --env NAME or --prefix PATH") from None
    return found.prefix, found.name


def _export_target(args: argparse.Namespace) -> tuple[Path, str | None]:
    if args.prefix is not None:
        return Path(args.prefix), None
    if args.env is not None:
        entry = _environment_named(args.env)
        return entry.environment.prefix, entry.name
    return _notebook_environment(Path(args.notebook))


def _environment_named(name: str) -> CatalogEntry:
    """The environment called `name`; an unknown name is an error naming the closest ones."""
    import difflib

    from .environments.catalog import EnvironmentNotFound

    catalog = _manager().catalog
    try:
        return catalog.get(name)
    except EnvironmentNotFound:
        known = [entry.name for entry in catalog.entries()]
    message = f"no environment named {name!r}"
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    # a prefix or a part of a longer name (`sci` for `scipy-dev`) is close too
    close += [k for k in known if name.lower() in k.lower() and k not in close][: 5 - len(close)]
    if close:
        message += f"; did you mean {', '.join(repr(c) for c in close)}?"
    message += (
        f" (`jupyter repro envs` lists the {len(known)} found)"
        if known
        else "; no environments were found (see `jupyter repro envs`)"
    )
    raise _ExportProblem(message)


def _output_problem(output: str) -> str | None:
    """Why `-o output` cannot be written, said before any work is done; None if it may be."""
    target = Path(output)
    folder = target.parent
    if target.is_dir():
        return f"cannot write {output}: it is a folder"
    if not folder.exists():
        return f"cannot write {output}: the folder {folder} does not exist"
    if not folder.is_dir():
        return f"cannot write {output}: {folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {output}: no permission to create files in {folder}"
    return None


_STOPPED_BY: list[int] = []
"""The signal `_cancelled_by_sigterm` stopped its work for (its exit status is 128 + it)."""


async def _cancelled_by_sigterm(work: Awaitable[_T]) -> _T:
    """`work`, cancelled (its cleanup run) on SIGTERM or SIGHUP (`kill`, a batch scheduler, a
    closed terminal) as on Ctrl-C. Where a loop takes no signal handlers (Windows, not the
    main thread), they keep their default action."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stops = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]

    def stop(number: int) -> None:
        _STOPPED_BY[:] = [number]
        if task is not None:
            task.cancel()

    for number in stops:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop, number)
    try:
        return await work
    finally:
        for number in stops:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(number)


def _source_problem(args: argparse.Namespace, what: str) -> str | None:
    """What is wrong with export's or lock's choice of source and target, else None."""
    sources = [s for s in (args.notebook, args.env, args.prefix) if s is not None]
    if len(sources) != 1:
        return "give exactly one of NOTEBOOK, --env NAME or --prefix PATH"
    if args.embed and args.notebook is None:
        return "--embed writes into a notebook: give a NOTEBOOK"
    if args.embed and args.output is not None:
        return f"--embed and -o cannot be combined: {what} goes into the notebook"
    return None


def _export(args: argparse.Namespace) -> int:
    from .atomic import replace_file
    from .environments.catalog import EnvironmentNotFound
    from .notebooks.embedded import NotebookError, embed_spec
    from .specs.environment import SpecError
    from .specs.explicit import explicit_urls
    from .specs.export import ExportError, explicit_list, export_environment, platform_of

    problem = _source_problem(args, "the spec")
    if problem is None and args.format == "explicit" and args.mode not in (None, "exact"):
        problem = f"--format explicit lists exact packages; --mode {args.mode} does not apply"
    if problem is not None:
        print(f"jupyter repro export: error: {problem}", file=sys.stderr)
        return 2
    mode: ExportMode = args.mode or "portable"
    if args.output is not None and (problem := _output_problem(args.output)) is not None:
        print(f"jupyter repro export: error: {problem}", file=sys.stderr)
        return 1
    try:
        prefix, name = _export_target(args)
        if args.embed:
            spec = export_environment(prefix, mode, name)
            explicit = None
            platform = platform_of(prefix)
            if args.format == "explicit":
                listed = explicit_list(prefix)
                explicit = {listed.platform: explicit_urls(listed.entries)}
            try:
                embed_spec(
                    Path(args.notebook), spec, mode=mode, explicit=explicit, platform=platform
                )
            except PermissionError as error:
                # Named by the notebook, not by the temporary file written beside it.
                raise _ExportProblem(
                    f"cannot write {args.notebook}: {error.strerror or error}"
                ) from None
            print(
                f"embedded the {mode} environment of {prefix} in {args.notebook}", file=sys.stderr
            )
            return 0
        if args.format == "explicit":
            text = explicit_list(prefix).render()
        else:
            spec = export_environment(prefix, mode, name)
            text = spec.to_json() if args.format == "json" else spec.to_yaml()
        if args.output is None:
            sys.stdout.write(text)
            return 0
        try:
            replace_file(Path(args.output), text)
        except OSError as error:
            # Named by the file asked for, not by the temporary file beside it.
            raise _ExportProblem(
                _output_problem(args.output)
                or f"cannot write {args.output}: {error.strerror or error}"
            ) from None
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    except (_ExportProblem, ExportError, SpecError, NotebookError, EnvironmentNotFound) as error:
        message = str(error)
    except BrokenPipeError:
        raise  # the reader of stdout went away: `main` ends quietly
    except OSError as error:
        message = f"{error.filename}: {error.strerror}" if error.filename else str(error)
    print(f"jupyter repro export: error: {message}", file=sys.stderr)
    return 1


def _lock(args: argparse.Namespace) -> int:
    import asyncio

    from .atomic import replace_file
    from .environments.catalog import EnvironmentNotFound
    from .environments.platforms import check_platform
    from .notebooks.embedded import NotebookError, read_notebook
    from .notebooks.lock import render_lock, with_lock
    from .notebooks.nbjson import dumps_json
    from .specs.environment import SpecError
    from .specs.export import ExportError
    from .specs.locking import LockOptions, lock_environment
    from .specs.pip_lock import PipIndex

    problem = _source_problem(args, "the lock")
    if problem is not None:
        print(f"jupyter repro lock: error: {problem}", file=sys.stderr)
        return 2
    for platform in args.platform:
        try:
            check_platform(platform)
        except ValueError as error:
            print(f"jupyter repro lock: error: {error}", file=sys.stderr)
            return 2
    if args.output is not None and (problem := _output_problem(args.output)) is not None:
        print(f"jupyter repro lock: error: {problem}", file=sys.stderr)
        return 1
    options = LockOptions(
        platforms=tuple(args.platform),
        pip_index=PipIndex(
            index_url=args.index_url, find_links=tuple(args.find_links), no_index=args.no_index
        ),
    )
    try:
        prefix, name = _export_target(args)

        def say(text: str) -> None:
            print(text, file=sys.stderr)

        result = asyncio.run(lock_environment(prefix, options, name=name, progress=say))
        for platform, reason in result.skipped.items():
            print(f"not locked for {platform}: {redact_text(reason)}", file=sys.stderr)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        locked = ", ".join(result.lock.platform_names)
        if args.embed:
            notebook = Path(args.notebook)
            text = dumps_json(with_lock(read_notebook(notebook), result, prefix))
            replace_file(notebook, text)
            print(f"embedded the lock for {locked} in {args.notebook}", file=sys.stderr)
            return 0
        text = render_lock(result, args.format)
        if args.output is None:
            sys.stdout.write(text)
        else:
            replace_file(Path(args.output), text)
            print(f"wrote the lock for {locked} to {args.output}", file=sys.stderr)
        return 0
    except (_ExportProblem, ExportError, SpecError, NotebookError, EnvironmentNotFound) as error:
        message = str(error)
    except BrokenPipeError:
        raise
    except OSError as error:
        message = f"{error.filename}: {error.strerror}" if error.filename else str(error)
    print(f"jupyter repro lock: error: {redact_text(message)}", file=sys.stderr)
    return 1


class TextProgress:
    """The restore engine's `Progress` as text bars on a stream, with or without a terminal.

    On a terminal one line per phase is redrawn in place; elsewhere (logs, CI) a line is
    written only when the bar grows, so the output stays short.
    """

    WIDTH = 20

    def __init__(self, stream: TextIO, *, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty()
        self._last: tuple[str, int] | None = None
        self._open_line = False

    def bar(self, name: str, done: int, total: int) -> str:
        filled = self.WIDTH if total <= 0 else min(self.WIDTH, self.WIDTH * done // total)
        return f"{name:<8} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}"

    def phase(self, name: str, done: int, total: int) -> None:
        filled = self.WIDTH if total <= 0 else min(self.WIDTH, self.WIDTH * done // total)
        if self._last == (name, filled) and not self.tty:
            return
        if self.tty:
            if self._last is not None and self._last[0] != name and self._open_line:
                self.stream.write("\n")
            self.stream.write("\r" + self.bar(name, done, total))
            self._open_line = True
        else:
            self.stream.write(self.bar(name, done, total) + "\n")
        self._last = (name, filled)
        self.stream.flush()

    def log(self, line: str) -> None:
        if not self.verbose:
            return
        self.end_line()
        self.stream.write(f"  {redact_text(line)}\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Finish a bar redrawn in place before anything else is written."""
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
            self.stream.flush()


_PACKAGE_COLUMNS = ("name", "version", "build", "channel")


def _package_row(package: Any) -> tuple[str, ...]:
    if isinstance(package, dict):
        return tuple(str(package.get(k) or "") for k in _PACKAGE_COLUMNS)
    return (str(package),)


def _print_plan(plan: RestorePlan) -> None:
    document = plan.to_json()
    print(f"target:   {document.get('target')}")
    if document.get("name"):
        print(f"name:     {document['name']}")
    print(f"engine:   {document.get('engine')}")
    channels = document.get("channels") or []
    print(f"channels: {', '.join(str(c) for c in channels) or '-'}")
    packages = document.get("packages") or []
    print(f"packages ({len(packages)}):")
    rows = [_package_row(p) for p in packages]
    aligned = [r for r in rows if len(r) == len(_PACKAGE_COLUMNS)]
    for line in table(aligned) + [r[0] for r in rows if len(r) != len(_PACKAGE_COLUMNS)]:
        print(f"  {line}")
    pip = document.get("pip") or []
    if pip:
        print(f"pip ({len(pip)}):")
        for requirement in pip:
            print(f"  {requirement}")
    for warning in document.get("warnings") or []:
        print(f"warning: {warning}")
    conflict = document.get("conflict")
    if conflict:
        kernels = ", ".join(conflict.get("kernels") or [])
        what = (
            f"the environment at {conflict['prefix']}" + (f" (kernel {kernels})" if kernels else "")
            if conflict.get("reason") == "environment"
            else str(conflict.get("prefix"))
        )
        print(f"conflict: {what} has this name already; a restore never replaces it")
        suggested = document.get("suggested_name")
        if suggested:
            print(f"          restore under a free name with --name {suggested}")


def _restore_source(path: str, lock_environment: str = "default") -> RestoreSource:
    from .restore.source import load_source

    source = Path(path)
    if not source.is_file():
        if os.path.lexists(source):
            kind = "a folder" if source.is_dir() else "not a regular file (a device or a FIFO?)"
            raise _RestoreProblem(
                f"{path} is {kind}; give an environment.yml, a lock, a notebook or a capsule"
            )
        raise _RestoreProblem(f"no file {path}")
    if source.suffix == ".ipynb":
        return load_source(notebook=source, lock_environment=lock_environment)
    return load_source(file=source, lock_environment=lock_environment)


class _RestoreProblem(Exception):
    """A user error of `jupyter repro restore`, with the message to print."""


def _confirm(assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise _RestoreProblem("not a terminal, so no confirmation can be asked: pass --yes")
    try:
        answer = input("Proceed? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _restore(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from .environments.engines import EMBEDDED_ENGINE
    from .restore.errors import RestoreError
    from .restore.service import RestoreOptions, RestoreService
    from .specs.environment import SpecError

    def fail(message: str) -> int:
        print(f"jupyter repro restore: error: {redact_text(message)}", file=sys.stderr)
        return 1

    prefix = Path(args.prefix) if args.prefix is not None else None
    notebooks_dir = Path(args.notebooks_dir or ".")
    if notebooks_dir.exists() and not notebooks_dir.is_dir():
        return fail(f"--notebooks-dir {notebooks_dir}: not a folder")
    # A folder still to be made: what is above it must be a folder (checked before the
    # environment is built, not once it is there).
    above = notebooks_dir.absolute()
    while not above.exists() and above.parent != above:
        above = above.parent
    if not above.is_dir():
        return fail(f"--notebooks-dir {notebooks_dir}: {above} is not a folder")
    if (problem := _engine_problem(args.engine)) is not None:
        # Before the plan: a solve, then a prompt, then "not found" would waste the user's time.
        return fail(problem)
    # The administrator's shared folders and per-user limits, from the server's config files.
    from .restore.limits import configured_limits, configured_package_cache

    try:
        limits = configured_limits()
        # --cache-dir: as given (shared when the folder is); else the server's shared cache.
        cache = (
            {"cache_dir": Path(args.cache_dir).expanduser()}
            if args.cache_dir
            else configured_package_cache()
        )
    except ValueError as error:
        return fail(f"{error} (in the Jupyter server's configuration)")
    try:
        service = RestoreService(
            RestoreOptions(
                **limits,
                **cache,
                engine=args.engine or EMBEDDED_ENGINE,
                allow_pip_urls=args.allow_pip_urls,
                pip_find_links=tuple(args.find_links),
                pip_index_url=args.index_url,
                pip_no_index=args.no_index,
            )
        )
        source = _restore_source(args.source, args.lock_environment)
        # Plan and restore run in separate loops so the confirmation prompt, a blocking
        # read, happens outside any event loop.
        # A dry run may plan under a usable name made from an unusable spec name; a
        # restore refuses it before asking, with the name to pass.
        plan = asyncio.run(
            service.plan(source, name=args.name, prefix=prefix, suggest_name=args.dry_run)
        )
        _print_plan(plan)
        if source.kind == "capsule":
            _print_capsule(source, notebooks_dir)
        sys.stdout.flush()
        if args.dry_run:
            print("dry run: nothing was installed", file=sys.stderr)
            return 0
        if not _confirm(args.yes):
            print("cancelled: nothing was installed", file=sys.stderr)
            return 1
        progress = TextProgress(sys.stderr, verbose=args.verbose)
        started = time.monotonic()
        try:
            # On Ctrl-C asyncio.run cancels this task, the engine removes the partial
            # prefix, then KeyboardInterrupt is raised here.
            result = asyncio.run(
                service.restore(source, name=args.name, prefix=prefix, progress=progress)
            )
        finally:
            progress.end_line()
    except KeyboardInterrupt:
        print(
            "jupyter repro restore: interrupted; the partial environment was removed",
            file=sys.stderr,
        )
        return 130
    except (_RestoreProblem, SpecError, RestoreError) as error:
        return fail(str(error))
    except BrokenPipeError:
        raise  # the reader of stdout went away: `main` ends quietly
    except OSError as error:
        return fail(f"{error.filename or args.source}: {error.strerror or error}")
    elapsed = format_duration(time.monotonic() - started)
    pip = f" and {result.pip} pip packages" if result.pip else ""
    named = f" (environment {result.name!r})" if result.name else ""
    print(
        f"restored {result.packages} packages{pip} into {result.prefix}{named} in {elapsed}",
        file=sys.stderr,
    )
    if result.notebooks:
        try:
            _write_capsule_notebooks(result, notebooks_dir)
        except KeyboardInterrupt:
            print(
                f"jupyter repro restore: interrupted while writing the notebooks; the "
                f"environment {result.prefix} is restored, the notebooks written so far are "
                f"in {notebooks_dir}",
                file=sys.stderr,
            )
            return 130
        except (OSError, RestoreError) as error:
            shown = f"{error.filename}: {error.strerror}" if isinstance(error, OSError) else error
            return fail(
                f"the environment was restored, but its notebooks were not written: {shown}"
            )
    return 0


def _print_capsule(source: RestoreSource, folder: Path) -> None:
    """Where a capsule's packages come from, its notebooks and where they are written."""
    print(
        "from:     the capsule's own archives (offline: no channel is read), each checked "
        "against its lock's sha256"
    )
    notebooks = source.capsule_notebooks
    if notebooks:
        print(f"notebooks ({len(notebooks)}), written into {folder} (never over a file):")
        for member in notebooks:
            print(f"  {member.rsplit('/', 1)[-1]}")


def _write_capsule_notebooks(result: Any, folder: Path) -> None:
    """Write a restored capsule's notebooks into `folder`, on the new environment's kernel."""
    from .restore.notebooks import restored_kernel, write_notebooks

    manager = _manager()
    kernel = restored_kernel(result.prefix, manager.catalog, manager)
    if kernel is None:
        print(
            f"warning: {result.prefix} has no kernel; the notebooks keep the kernel they had",
            file=sys.stderr,
        )
    for path in write_notebooks(folder, result.notebooks, kernel):
        on = f" (kernel {kernel.name})" if kernel is not None else ""
        print(f"wrote {path}{on}", file=sys.stderr)


def _engine_problem(engine: str | None) -> str | None:
    """Why the restore engine `engine` cannot run here; None if it can (or is unknown: the
    restore service names the engines there are)."""
    from .environments.engines import CLI_NAMES, find_cli

    if engine not in CLI_NAMES or find_cli(engine) is not None:
        return None
    variable = {"conda": " or CONDA_EXE", "micromamba": " or MAMBA_EXE"}.get(engine, "")
    return (
        f"--engine {engine}: {engine} was not found (looked on PATH{variable}); install it or "
        f"put it on PATH, or leave out --engine to restore with the embedded engine (rattler), "
        "which needs no conda"
    )


def _strip_one(path: Path, args: argparse.Namespace) -> bool:
    """Strip one file by its policy; True if it changed (or would, with --dry-run)."""
    from .atomic import replace_file
    from .notebooks.policy import load_policy
    from .notebooks.strip import strip_zeppelin_text

    data = path.read_bytes()
    if path.suffix == ".zpln":
        result = strip_zeppelin_text(data)
    else:
        result = _strip_notebook(data, load_policy(path).options)
    if args.textconv:
        sys.stdout.buffer.write(result.text.encode("utf-8", "surrogatepass"))
    elif result.changed and args.dry_run:
        print(f"would strip {path}", file=sys.stderr)
    elif result.changed:
        replace_file(path, result.text)
        print(f"stripped {path}", file=sys.stderr)
    return result.changed


def _strip_notebook(data: bytes, options: StripOptions) -> StripResult:
    """`strip_text`, with "not a notebook" for JSON that is not one (instead of the name of
    the key the stripper missed)."""
    from .notebooks.nbjson import NotebookError, NotJSONError
    from .notebooks.strip import MetadataConflict, strip_text

    try:
        return strip_text(data, options)
    except (NotJSONError, MetadataConflict):
        raise
    except NotebookError as error:
        problem = _notebook_shape_problem(data)
        if problem is None:
            raise
        raise NotebookError(problem) from error


def _notebook_shape_problem(data: bytes) -> str | None:
    """What a JSON document lacks to be a notebook; None if it has the top-level keys of one.

    Only called once stripping has failed, so a notebook is parsed once on the way that works.
    """
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if not any(key in document for key in ("nbformat", "cells", "worksheets")):
        keys = ", ".join(sorted(map(str, document))[:5]) or "none"
        return f"not a notebook: a JSON object without nbformat or cells (its keys: {keys})"
    missing = [key for key in ("nbformat", "metadata") if key not in document]
    if "cells" not in document and "worksheets" not in document:
        missing.append("cells")
    if missing:
        return f"not a notebook: it has no {' and no '.join(missing)}"
    return None


def _strip(args: argparse.Namespace) -> int:
    from .notebooks.nbjson import NotebookError
    from .notebooks.policy import PolicyError, load_policy

    if args.verify:
        args.dry_run = True
    if not args.files:
        # stdin to stdout, by the policy of the current folder's project.
        try:
            policy = load_policy(Path.cwd() / "stdin.ipynb")
            result = _strip_notebook(sys.stdin.buffer.read(), policy.options)
        except (NotebookError, PolicyError) as error:
            # as for a file: the name (here `stdin`), what is wrong, status 1
            print(f"jupyter repro strip: stdin: {error}", file=sys.stderr)
            return 1
        if not args.dry_run:
            sys.stdout.buffer.write(result.text.encode("utf-8", "surrogatepass"))
        return 1 if args.verify and result.changed else 0
    changed = failed = False
    for name in args.files:
        try:
            changed |= _strip_one(Path(name), args)
        except BrokenPipeError:
            raise  # the reader of --textconv's output went away: `main` ends quietly
        except (NotebookError, PolicyError, OSError) as error:
            # Go on with the other files: one bad notebook must not hide the state of the rest.
            print(f"jupyter repro strip: {name}: {error}", file=sys.stderr)
            failed = True
    return 1 if failed or (args.verify and changed) else 0


class _VerifyProblem(Exception):
    """A usage error of `jupyter repro verify`, with the message to print (exit status 2)."""


def report_paths(report: Path, notebooks: Sequence[Path]) -> list[Path]:
    """Where the reports of `notebooks` go for `--report report`: the file itself for one
    notebook; for several, one file each, the notebook's stem added to the name
    (`out.html` -> `out-analysis.html`, then `out-analysis-2.html` for a second `analysis`)."""
    if len(notebooks) == 1:
        return [report]
    paths: list[Path] = []
    for notebook in notebooks:
        candidate = report.with_name(f"{report.stem}-{notebook.stem}{report.suffix}")
        number = 1
        while candidate in paths:
            number += 1
            candidate = report.with_name(f"{report.stem}-{notebook.stem}-{number}{report.suffix}")
        paths.append(candidate)
    return paths


class VerifyTextProgress:
    """The verify service's progress on the terminal: a line per cell as it gets its verdict
    (stdout, flushed: a reader sees each cell at once); a restore's bars and, with
    `verbose`, the service's log on stderr."""

    def __init__(self, out: TextIO, err: TextIO, *, verbose: bool = False) -> None:
        self.out = out
        self.bars = TextProgress(err, verbose=verbose)

    def cell(self, index: int, total: int, cell_id: str | None, status: str | None) -> None:
        if status is None:
            return
        self.bars.end_line()
        self.out.write(f"  cell {index:>3}  {cell_id or '-':<14} {status}\n")
        self.out.flush()

    def phase(self, name: str, done: int, total: int) -> None:
        self.bars.phase(name, done, total)

    def log(self, line: str) -> None:
        self.bars.log(line)


def _print_details(report: Any) -> None:
    """The diff or error of every cell that has one, indented under its cell."""
    for cell in report.cells:
        text = cell.error if cell.error is not None else cell.diff
        if text is None or cell.status not in ("differs", "error"):
            continue
        print(f"  cell {cell.index} ({cell.id or 'no id'}) {cell.status}:")
        for line in text.rstrip("\n").splitlines():
            print(f"      {line}")


def _verify(args: argparse.Namespace) -> int:
    """Run notebooks again and compare their outputs: 0 when every compared cell matches, 1
    when a cell differs or fails (or a notebook cannot be run), 2 for a usage error.

    SIGTERM, like Ctrl-C, cancels the run: the kernel is stopped and a temporary environment
    (--restore) removed before the command ends (status 143, or 130 for Ctrl-C).
    """
    import asyncio
    import signal
    import time

    from .verify.report import REPORT_SUFFIXES
    from .verify.service import VerifyError, VerifyOptions, VerifyService

    def usage(message: str) -> int:
        print(f"jupyter repro verify: error: {message}", file=sys.stderr)
        return 2

    notebooks = [Path(name) for name in args.notebooks]
    for notebook in notebooks:
        if not notebook.is_file():
            return usage(f"no notebook {notebook}")
    if args.timeout is not None and not args.timeout > 0:
        return usage("--timeout must be a number of seconds greater than 0")
    report = Path(args.report) if args.report else None
    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        return usage(f"--report {report}: the name must end with {', '.join(REPORT_SUFFIXES)}")
    destinations = report_paths(report, notebooks) if report is not None else []
    options = VerifyOptions(kernel=args.kernel, restore=args.restore, timeout=args.timeout)
    service = VerifyService(kernel_spec_manager=_manager() if not args.restore else None)
    progress = VerifyTextProgress(sys.stdout, sys.stderr, verbose=args.verbose)
    failed = False

    async def run_all() -> None:
        nonlocal failed
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        terminate = task.cancel if task is not None else None
        # SIGTERM stops the verification (and its kernel) like Ctrl-C. Where a loop takes no
        # signal handlers (Windows: NotImplementedError; not the main thread: RuntimeError or
        # ValueError), the default action is left as it is: nothing is unfinished about that.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if terminate is not None:
                loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            for number, notebook in enumerate(notebooks):
                print(notebook)
                sys.stdout.flush()
                started = time.monotonic()
                try:
                    result = await service.verify(notebook, options, progress)
                except VerifyError as error:
                    progress.bars.end_line()
                    print(f"jupyter repro verify: {notebook}: {error}", file=sys.stderr)
                    failed = True
                    continue
                progress.bars.end_line()
                _print_details(result)
                environment = result.environment
                where = ", ".join(
                    str(v) for v in (environment.get("kernel"), environment.get("platform")) if v
                )
                elapsed = format_duration(time.monotonic() - started)
                print(f"  ran on {where} in {elapsed}")
                print(result.headline)
                sys.stdout.flush()
                failed = failed or not result.ok
                if destinations:
                    written = result.write(destinations[number])
                    print(f"report written to {written}", file=sys.stderr)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        asyncio.run(run_all())
    except asyncio.CancelledError:
        progress.bars.end_line()
        print("jupyter repro verify: terminated; nothing was left behind", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        progress.bars.end_line()
        print("jupyter repro verify: interrupted; nothing was left behind", file=sys.stderr)
        return 130
    except OSError as error:
        # Writing a report: a missing folder, no permission.
        print(f"jupyter repro verify: error: {error}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _human_bytes(size: int) -> str:
    """`512 B`, `3.4 KB`, `1.2 MB`, `2.0 GB` (powers of 1000, as file managers show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


def _pack_environment(args: argparse.Namespace) -> tuple[Path | None, str | None, str | None]:
    """The environment to pack (prefix, name) and, when it is not known, why."""
    if args.prefix is not None:
        return Path(args.prefix), None, None
    if args.env is not None:
        entry = _environment_named(args.env)
        return entry.environment.prefix, entry.name, None
    try:
        prefix, name = _notebook_environment(Path(args.notebooks[0]))
    except _ExportProblem as error:
        return None, None, str(error)
    return prefix, name, None


def _print_pack_plan(plan: Any, output: Path) -> None:
    unique = plan.unique()
    packed = "the notebook's lock" if plan.lock_source == "notebook" else "a lock made now"
    if plan.lock_source == "given":
        packed = "the lock given"
    print(f"would write {output} for {', '.join(plan.platforms)} from {packed}:")
    rows = [("platform", "kind", "package", "version", "size", "from")]
    for item in plan.files:
        size = "?" if item.size is None else _human_bytes(item.size)
        rows.append((item.platform, item.kind, item.name, item.version, size, item.source))
    for line in table(rows):
        print(f"  {line}")
    total = _human_bytes(plan.known_bytes)
    unknown = f" (+{plan.unknown_sizes} of unknown size)" if plan.unknown_sizes else ""
    print(f"{len(unique)} files, {total}{unknown}; {len(plan.notebooks)} notebook(s)")
    _print_missing(plan.missing)


def _print_missing(missing: Sequence[Any]) -> None:
    if not missing:
        return
    print(f"not packed ({len(missing)}):")
    for item in missing:
        print(f"  {item.platform}  {item.name}: {redact_text(item.why)}")


def _pack(args: argparse.Namespace) -> int:
    """`jupyter repro pack`: a capsule (or a conda-pack archive) of notebooks and their env."""
    import asyncio
    import signal
    import time

    started = time.monotonic()

    from .environments.catalog import EnvironmentNotFound
    from .environments.pkgs_dirs import conda_pkgs_dirs
    from .environments.platforms import check_platform
    from .notebooks.embedded import NotebookError
    from .specs.environment import SpecError
    from .specs.export import ExportError, platform_of
    from .specs.pack import PackError, PackRequest, default_capsule_name, pack, plan_pack
    from .specs.pip_lock import PipIndex

    def fail(message: str, status: int = 1) -> int:
        print(f"jupyter repro pack: error: {redact_text(message)}", file=sys.stderr)
        return status

    if not args.notebooks and args.env is None and args.prefix is None:
        return fail("give NOTEBOOK..., --env NAME or --prefix PATH", 2)
    for platform in args.platform:
        try:
            check_platform(platform)
        except ValueError as error:
            return fail(str(error).replace("cannot lock for", "cannot pack for"), 2)
    notebooks = tuple(Path(n) for n in args.notebooks)
    for notebook in notebooks:
        if notebook.suffix != ".ipynb":
            return fail(f"{notebook} is not a notebook (.ipynb)", 2)
        if not notebook.is_file():
            return fail(f"{notebook}: no such notebook")
    if args.format == "conda-pack" and notebooks:
        return fail("--format conda-pack packs an environment only: use --env or --prefix", 2)
    if args.output is not None:
        if (problem := _output_problem(args.output)) is not None:
            return fail(problem)
        if Path(args.output).exists() and not args.force and not args.dry_run:
            return fail(f"{args.output} exists; choose another name or use --force to replace it")
    try:
        prefix, name, unknown = _pack_environment(args)
        if args.format == "conda-pack":
            # conda-pack's own archive: the environment as installed, for its own platform.
            from .specs.conda_pack_format import pack_conda_pack

            assert prefix is not None
            own = platform_of(prefix)
            if any(p != own for p in args.platform):
                return fail(f"--format conda-pack packs the environment as installed ({own})", 2)
            output = Path(args.output or f"{name or prefix.name}.tar.gz")
            progress = TextProgress(sys.stderr)
            written = pack_conda_pack(prefix, output, progress=progress.phase, force=args.force)
            progress.end_line()
            size = _human_bytes(written.stat().st_size)
            print(f"wrote {written} (conda-pack format, {size}); unpack it and run conda-unpack")
            return 0
        request = PackRequest(
            notebooks=notebooks,
            prefix=prefix,
            name=name,
            platforms=tuple(args.platform),
            pip_index=PipIndex(
                index_url=args.index_url, find_links=tuple(args.find_links), no_index=args.no_index
            ),
            environment_problem=unknown,
            # Archives conda kept are packed from there (checked), not downloaded again.
            package_dirs=conda_pkgs_dirs(prefix) if prefix is not None else (),
        )
        progress = TextProgress(sys.stderr)

        def say(line: str) -> None:
            progress.end_line()
            print(redact_text(line), file=sys.stderr)

        plan = asyncio.run(plan_pack(request, progress=progress.phase, log=say))
        progress.end_line()
        output = Path(args.output or default_capsule_name(request, plan.lock))
        if args.dry_run:
            _print_pack_plan(plan, output)
            return 0
        if output.exists() and not args.force:
            return fail(f"{output} exists; choose another name (-o) or use --force")
        if (problem := _output_problem(str(output))) is not None:
            return fail(problem)
        try:
            result = asyncio.run(
                _cancelled_by_sigterm(
                    pack(request, output, plan=plan, progress=progress.phase, log=say)
                )
            )
        except (KeyboardInterrupt, asyncio.CancelledError) as stopped:
            progress.end_line()
            how = "interrupted" if isinstance(stopped, KeyboardInterrupt) else "terminated"
            print(f"jupyter repro pack: {how}; nothing was written", file=sys.stderr)
            if isinstance(stopped, KeyboardInterrupt):
                return 130
            return 128 + (_STOPPED_BY[0] if _STOPPED_BY else signal.SIGTERM)
        progress.end_line()
        manifest = result.manifest
        conda = len({c.path for c in manifest.conda})
        wheels = len({p.path for p in manifest.pypi})
        print(
            f"wrote {result.output} for {', '.join(manifest.platforms)}: {conda} conda "
            f"archives, {wheels} wheels, {len(manifest.notebooks)} notebook(s)"
        )
        print(
            f"  {_human_bytes(result.capsule_bytes)} (packages and files: "
            f"{_human_bytes(result.content_bytes)}) in "
            f"{format_duration(time.monotonic() - started)}"
        )
        for warning in plan.warnings:
            print(f"warning: {redact_text(warning)}", file=sys.stderr)
        _print_missing(manifest.missing)
        return 0
    except (
        _ExportProblem,
        PackError,
        ExportError,
        SpecError,
        NotebookError,
        EnvironmentNotFound,
    ) as error:
        return fail(str(error))
    except BrokenPipeError:
        raise
    except OSError as error:
        return fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))


def _pack_parser(commands: Any) -> None:
    pack = commands.add_parser(
        "pack",
        help="pack notebooks, their lock and every package into one offline capsule",
        description=(
            "Pack a capsule (NAME.capsule.tar.zst): the notebooks, their lock (the one "
            "embedded in the notebook when it covers the platforms, else made now from the "
            "environment) and every conda archive and pip wheel the lock names for each "
            "platform, each checked against the lock's sha256. `jupyter repro restore "
            "CAPSULE` installs from it with no network. What cannot be packed (editable or "
            "local pip installs, archives no channel has) is listed, never dropped. "
            "--format conda-pack writes conda-pack's own archive of the environment instead."
        ),
    )
    pack.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to carry")
    where = pack.add_mutually_exclusive_group()
    where.add_argument("--env", metavar="NAME", help="the environment by name (see `envs`)")
    where.add_argument("--prefix", metavar="PATH", help="the environment at PATH")
    pack.add_argument(
        "--platform",
        metavar="P",
        action="append",
        default=[],
        help="a platform to pack for (repeatable; default: the environment's own)",
    )
    pack.add_argument(
        "--format",
        choices=["capsule", "conda-pack"],
        default="capsule",
        help="a capsule (default) or conda-pack's archive (one platform, no notebooks)",
    )
    pack.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: NAME.capsule.tar.zst)"
    )
    pack.add_argument("--force", action="store_true", help="replace an existing output file")
    pack.add_argument(
        "--dry-run", action="store_true", help="show what would be packed, with sizes"
    )
    _pip_index_arguments(pack)
    pack.set_defaults(run=_pack)


def _pip_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--find-links",
        metavar="DIR",
        action="append",
        default=[],
        help="a folder or URL of wheels for pip (repeatable), e.g. for offline machines",
    )
    parser.add_argument("--index-url", metavar="URL", help="the package index pip/uv use")
    parser.add_argument("--no-index", action="store_true", help="use no package index")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter repro",
        description="Reproducible notebooks: conda environments as kernels, export and restore.",
    )
    parser.add_argument("--version", action="version", version=f"jupyter-repro {__version__}")
    parser.set_defaults(help_of=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = commands.add_parser("status", help="print the version, engine and conda CLIs found")
    status.add_argument("--engine", help="engine to report (default: the embedded one)")
    status.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    status.set_defaults(run=_status)

    envs = commands.add_parser("envs", help="list the environments found (no conda is run)")
    envs.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    envs.set_defaults(run=_envs)

    kernels = commands.add_parser(
        "kernels",
        help="kernels of the environments found",
        description="Kernels of the environments found: list them, or write them as "
        "kernelspecs for tools that read only those (sync).",
    )
    kernels.set_defaults(help_of=kernels)
    kernel_commands = kernels.add_subparsers(dest="kernels_command", metavar="COMMAND")
    listing = kernel_commands.add_parser("list", help="print every environment kernel")
    listing.set_defaults(run=_kernels_list)
    sync = kernel_commands.add_parser(
        "sync",
        help="write real kernelspecs (for papermill, nbconvert, VS Code); remove stale ones",
    )
    scope = sync.add_mutually_exclusive_group()
    scope.add_argument("--user", action="store_true", help="in the user's Jupyter data dir")
    scope.add_argument("--sys-prefix", action="store_true", help="in this Python's prefix")
    scope.add_argument("--prefix", metavar="P", help="in P/share/jupyter/kernels")
    sync.set_defaults(run=_kernels_sync)

    export = commands.add_parser(
        "export",
        help="write the environment of a notebook's kernel (or any environment) as a spec",
        description=(
            "Export an environment from its files (no conda needed): 'portable' (default) pins "
            "what was asked for to the installed versions, 'exact' lists every package with "
            "its build, 'no-builds' every package without. Never a prefix: line or a token."
        ),
    )
    export.add_argument(
        "notebook", nargs="?", metavar="NOTEBOOK", help="export the environment of its kernel"
    )
    export.add_argument("--env", metavar="NAME", help="an environment by name (see `envs`)")
    export.add_argument("--prefix", metavar="PATH", help="the environment at PATH")
    export.add_argument(
        "--mode",
        choices=["portable", "exact", "no-builds"],
        help="what to list (default: portable)",
    )
    export.add_argument(
        "--format",
        choices=["yaml", "explicit", "json"],
        default="yaml",
        help="environment.yml (default), conda's @EXPLICIT URL list, or the spec as JSON",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically)")
    export.add_argument(
        "--embed",
        action="store_true",
        help="write the spec into the notebook's metadata instead of printing it "
        "(with --format explicit, the package URLs too)",
    )
    export.set_defaults(run=_export)

    lock = commands.add_parser(
        "lock",
        help="lock an environment for several platforms (conda-lock.yml, pixi.lock, embedded)",
        description=(
            "Lock the environment of a notebook's kernel (or any conda environment): this "
            "machine's platform exactly as installed, the others solved from the portable "
            "spec as of the environment's last change. A platform that cannot be solved is "
            "reported and left out. The pip section is resolved per platform with uv."
        ),
    )
    lock.add_argument("notebook", nargs="?", metavar="NOTEBOOK", help="lock its kernel's env")
    lock.add_argument("--env", metavar="NAME", help="an environment by name (see `envs`)")
    lock.add_argument("--prefix", metavar="PATH", help="the environment at PATH")
    lock.add_argument(
        "--platform",
        metavar="P",
        action="append",
        default=[],
        help="a platform to lock (repeatable; default: this one plus linux-64, osx-64, "
        "osx-arm64, win-64)",
    )
    lock.add_argument(
        "--format",
        choices=["conda-lock", "pixi", "json"],
        default="conda-lock",
        help="CEP 37 conda-lock.yml (default), rattler/pixi lock, or the embedded JSON",
    )
    lock.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically)")
    lock.add_argument(
        "--embed", action="store_true", help="write the lock into the notebook's metadata"
    )
    _pip_index_arguments(lock)
    lock.set_defaults(run=_lock)

    restore = commands.add_parser(
        "restore",
        help="create an environment from an environment.yml, explicit file or notebook",
        description=(
            "Restore an environment: SOURCE is a lock (conda-lock.yml, pixi.lock), an "
            "environment.yml, an @EXPLICIT list or a notebook (its embedded lock, a lock "
            "file beside it, its embedded spec, an environment.yml beside it, in that order); "
            "a lock installs exactly, verifying every package's sha256, without a solve; a "
            "capsule (jupyter repro pack) installs offline from its own archives and writes "
            "its notebooks (--notebooks-dir), on the new environment's kernel. "
            "The plan is shown first; nothing existing is ever overwritten, and a failed or "
            "interrupted restore leaves no folder behind."
        ),
    )
    restore.add_argument(
        "source",
        metavar="SOURCE",
        help="conda-lock.yml, pixi.lock, environment.yml, explicit file, .ipynb or a capsule "
        "(.capsule.tar.zst)",
    )
    target = restore.add_mutually_exclusive_group()
    target.add_argument("--name", "-n", metavar="N", help="environment name (first envs dir)")
    target.add_argument("--prefix", "-p", metavar="P", help="environment folder to create")
    restore.add_argument("--dry-run", action="store_true", help="show the plan, install nothing")
    restore.add_argument("--engine", help="rattler (default), conda, mamba or micromamba")
    restore.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    restore.add_argument(
        "--allow-pip-urls",
        action="store_true",
        help="allow URLs, paths and options in the spec's pip section (off: refused)",
    )
    _pip_index_arguments(restore)
    restore.add_argument(
        "--lock-environment",
        metavar="ENV",
        default="default",
        help="the environment of a pixi.lock to restore (default: default)",
    )
    restore.add_argument(
        "--notebooks-dir",
        metavar="DIR",
        help="where a capsule's notebooks are written (default: the current folder); an "
        "existing file is never replaced (name-1.ipynb, ...)",
    )
    restore.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="rattler's package cache (default: ReproApp.package_cache_dir of the server's "
        "configuration, else rattler's own); a sticky or another user's folder is used as a "
        "cache shared by several users",
    )
    restore.add_argument("--verbose", "-v", action="store_true", help="print the engine's log")
    restore.set_defaults(run=_restore)

    strip = commands.add_parser(
        "strip",
        help="strip outputs from notebooks by the project's policy (pre-commit uses this)",
        description=(
            "Strip notebooks in place by the strip policy: [tool.jupyter_repro.strip] of the "
            "nearest pyproject.toml, over nbstripout's defaults. With no FILE, strip stdin to "
            "stdout. For nbstripout's exact command line, use jupyter-repro-strip."
        ),
    )
    strip.add_argument("files", nargs="*", metavar="FILE", help="notebooks (.ipynb, .zpln)")
    strip.add_argument(
        "--dry-run", action="store_true", help="say which files would change; change nothing"
    )
    strip.add_argument(
        "--verify", action="store_true", help="exit 1 if any file would change (a dry run)"
    )
    strip.add_argument(
        "--textconv", "-t", action="store_true", help="print the stripped notebooks to stdout"
    )
    strip.set_defaults(run=_strip)

    verify = commands.add_parser(
        "verify",
        help="run notebooks again and check that their outputs reproduce",
        description=(
            "Run each notebook top to bottom on a fresh kernel and compare every code cell "
            "with its outputs, or with the fingerprints stripping recorded (sanitized, numbers "
            "within the [tool.jupyter_repro.verify] tolerance). The notebook is only read. "
            "Prints a line per cell and a summary; exit status 0 when nothing differs or "
            "fails, 1 otherwise, 2 for a usage error."
        ),
    )
    verify.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="notebooks (.ipynb)")
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--kernel", metavar="NAME", help="run on this kernel (default: its own)")
    where.add_argument(
        "--restore",
        action="store_true",
        help="rebuild the notebook's environment from its lock (else its spec) in a temporary "
        "folder, run there, and remove the folder afterwards",
    )
    verify.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds a cell may run (default: the policy's timeout, else no limit); a cell "
        "past it is interrupted and counts as an error, and the run goes on",
    )
    verify.add_argument(
        "--report",
        metavar="FILE",
        help="write the report to FILE.json, FILE.html or FILE.md; with several notebooks, "
        "one file each, named FILE-<notebook name>.<suffix>",
    )
    verify.add_argument("--verbose", "-v", action="store_true", help="print the run's log")
    verify.set_defaults(run=_verify)

    _pack_parser(commands)

    from .git.command import register as register_git_commands

    register_git_commands(commands)
    return parser


# The exit status of a command whose reader went away (`| head`): a shell reports a program
# killed by SIGPIPE as 128 + 13.
BROKEN_PIPE_STATUS = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; `argv` None means the process's own arguments (the console script)."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe must be noticed while we can act
    except BrokenPipeError:
        _silence_stdout()
        status = BROKEN_PIPE_STATUS
    if argv is None and "rattler" in sys.modules:
        # As a program: py-rattler can abort while the interpreter finalizes (see
        # shared/notes/offline-conda.md), so leave without finalizing once output is out.
        # In-process callers (tests) pass argv and get the status back instead.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush
                stream.flush()
        os._exit(status)
    return status


def _silence_stdout() -> None:
    """Point stdout at the null device, so that nothing written later (the interpreter's
    final flush included) fails on the closed pipe with a traceback."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        # A command group alone (`jupyter repro kernels`) shows what it offers.
        getattr(args, "help_of", parser).print_help(sys.stdout)
        return 0
    try:
        return int(args.run(args))
    except ValueError as error:
        print(f"jupyter repro: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
