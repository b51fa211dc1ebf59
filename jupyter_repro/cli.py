"""`jupyter repro ...`: the command line over the same services the server uses."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .environments.export import ExportMode
    from .kernels.manager import CondaKernelSpecManager


def _status(args: argparse.Namespace) -> int:
    from .environments.engines import EMBEDDED_ENGINE
    from .status import StatusService

    document = StatusService(args.engine or EMBEDDED_ENGINE).status()
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0


def _manager() -> CondaKernelSpecManager:
    from .kernels.manager import CondaKernelSpecManager

    return CondaKernelSpecManager()


def _envs(args: argparse.Namespace) -> int:
    catalog = _manager().catalog
    summaries = [catalog.summary(e) for e in catalog.entries()]
    if args.json:
        print(json.dumps({"environments": summaries}, indent=2, sort_keys=True))
        return 0
    if not summaries:
        print("no environments found")
        return 0
    width = max(len(s["name"]) for s in summaries)
    for s in summaries:
        marks = "".join(m for m, on in (("*", s["is_server_env"]), ("B", s["is_base"])) if on)
        python = s["python_version"] or "-"
        print(
            f"{s['name']:<{width}}  {marks:<2}  {s['kind']:<5}  python {python:<8}  {s['prefix']}"
        )
    return 0


def _kernels_list(args: argparse.Namespace) -> int:
    manager = _manager()
    kernels = manager.conda_kernels()
    for name in sorted(kernels):
        kernel = kernels[name]
        hidden = "" if kernel.listed else "  (hidden: same as the native kernel)"
        print(f"{name}  {kernel.spec.display_name}  {kernel.environment.prefix}{hidden}")
    if not kernels:
        print("no environment kernels found")
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


def _interpreter_prefix(argv0: str) -> Path:
    """The environment of a kernel interpreter: the folder holding its `bin/` (`Scripts/`)."""
    # jupyter_client runs these names with its own interpreter (format_kernel_cmd).
    version = sys.version_info
    if argv0 in ("python", f"python{version[0]}", f"python{version[0]}.{version[1]}"):
        argv0 = sys.executable
    found = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if found is None:
        raise _ExportProblem(f"the kernel's interpreter {argv0!r} is not on PATH")
    # Not resolved: a venv's bin/python links to the base interpreter, outside the venv.
    folder = Path(os.path.abspath(found)).parent
    return folder.parent if folder.name in ("bin", "Scripts") else folder


def _notebook_environment(notebook: Path) -> tuple[Path, str | None]:
    """The prefix (and name) of the environment of the notebook's kernel."""
    from jupyter_client.kernelspec import NoSuchKernel

    from .notebooks.embedded import kernel_name, read_notebook

    name = kernel_name(read_notebook(notebook))
    if name is None:
        raise _ExportProblem(
            f"{notebook} names no kernel (no metadata.kernelspec.name); "
            "use --env NAME or --prefix PATH"
        )
    try:
        spec = _manager().get_kernel_spec(name)
    except NoSuchKernel:
        raise _ExportProblem(
            f"the kernel of {notebook}, {name!r}, is not installed here (no environment or "
            "kernelspec by that name); use --env NAME or --prefix PATH"
        ) from None
    env_path = spec.metadata.get("conda_env_path")
    if isinstance(env_path, str) and env_path:
        env_name = spec.metadata.get("conda_env_name")
        return Path(env_path), env_name if isinstance(env_name, str) else None
    if not spec.argv:
        raise _ExportProblem(f"the kernelspec {name!r} has no argv to find its environment by")
    return _interpreter_prefix(spec.argv[0]), None


def _export_target(args: argparse.Namespace) -> tuple[Path, str | None]:
    if args.prefix is not None:
        return Path(args.prefix), None
    if args.env is not None:
        entry = _manager().catalog.get(args.env)
        return entry.environment.prefix, entry.name
    return _notebook_environment(Path(args.notebook))


def _export(args: argparse.Namespace) -> int:
    from .environments.catalog import EnvironmentNotFound
    from .environments.export import ExportError, explicit_list, export_environment, platform_of
    from .environments.spec import SpecError, explicit_urls
    from .notebooks.embedded import NotebookError, embed_spec, replace_file

    sources = [s for s in (args.notebook, args.env, args.prefix) if s is not None]
    problem = None
    if len(sources) != 1:
        problem = "give exactly one of NOTEBOOK, --env NAME or --prefix PATH"
    elif args.embed and args.notebook is None:
        problem = "--embed writes into a notebook: give a NOTEBOOK"
    elif args.embed and args.output is not None:
        problem = "--embed and -o cannot be combined: the spec goes into the notebook"
    elif args.format == "explicit" and args.mode not in (None, "exact"):
        problem = f"--format explicit lists exact packages; --mode {args.mode} does not apply"
    if problem is not None:
        print(f"jupyter repro export: error: {problem}", file=sys.stderr)
        return 2
    mode: ExportMode = args.mode or "portable"
    try:
        prefix, name = _export_target(args)
        if args.embed:
            spec = export_environment(prefix, mode, name)
            explicit = None
            platform = platform_of(prefix)
            if args.format == "explicit":
                listed = explicit_list(prefix)
                explicit = {listed.platform: explicit_urls(listed.entries)}
            embed_spec(Path(args.notebook), spec, mode=mode, explicit=explicit, platform=platform)
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
        replace_file(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    except (_ExportProblem, ExportError, SpecError, NotebookError, EnvironmentNotFound) as error:
        message = str(error)
    except OSError as error:
        message = f"cannot write {error.filename or args.output}: {error.strerror or error}"
    print(f"jupyter repro export: error: {message}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter repro",
        description="Reproducible notebooks: conda environments as kernels, export and restore.",
    )
    parser.add_argument("--version", action="version", version=f"jupyter-repro {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = commands.add_parser("status", help="print the version, engine and conda CLIs found")
    status.add_argument("--engine", help="engine to report (default: the embedded one)")
    status.set_defaults(run=_status)

    envs = commands.add_parser("envs", help="list the environments found (no conda is run)")
    envs.add_argument("--json", action="store_true", help="print JSON")
    envs.set_defaults(run=_envs)

    kernels = commands.add_parser("kernels", help="kernels of the environments found")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; `argv` None means the process's own arguments (the console script)."""
    status = _main(argv)
    if argv is None and "rattler" in sys.modules:
        # As a program: py-rattler can abort while the interpreter finalizes (see
        # shared/notes/offline-conda.md), so leave without finalizing once output is out.
        # In-process callers (tests) pass argv and get the status back instead.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe has nothing to flush
                stream.flush()
        os._exit(status)
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except ValueError as error:
        print(f"jupyter repro: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
