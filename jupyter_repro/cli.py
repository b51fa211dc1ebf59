"""`jupyter repro ...`: the command line over the same services the server uses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
