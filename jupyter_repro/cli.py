"""`jupyter repro ...`: the command line over the same services the server uses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._version import __version__


def _status(args: argparse.Namespace) -> int:
    from .environments.engines import EMBEDDED_ENGINE
    from .status import StatusService

    document = StatusService(args.engine or EMBEDDED_ENGINE).status()
    print(json.dumps(document, indent=2, sort_keys=True))
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
