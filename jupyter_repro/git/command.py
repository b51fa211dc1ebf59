"""`jupyter repro git install | uninstall | status`: the git filter from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from .install import Location, install, status, uninstall


def register(subparsers: Any) -> None:
    """Add the `git` command to the `add_subparsers()` object of `jupyter repro`."""
    git = subparsers.add_parser(
        "git",
        help="strip notebooks as git stores them: a filter and a diff driver",
        description="Strip notebooks as git stores them: a filter and a diff driver, "
        "configured in git's configuration with the attribute lines that select notebooks.",
    )
    git.set_defaults(help_of=git)  # `jupyter repro git` alone prints this command's help
    actions = git.add_subparsers(dest="git_command", metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help, description=help)
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--global",
            dest="location",
            action="store_const",
            const="global",
            default="local",
            help="the user's git configuration instead of this repository's",
        )
        where.add_argument(
            "--system",
            dest="location",
            action="store_const",
            const="system",
            help="the system's git configuration instead of this repository's",
        )
        parser.set_defaults(run=run)
        return parser

    installing = add("install", "configure the filter and diff driver, add the attributes")
    installing.add_argument(
        "--attributes",
        metavar="FILE",
        help="attributes file to add the lines to (default: .git/info/attributes, or the "
        "global or system attributes file); use .gitattributes to share them with the project",
    )
    installing.add_argument(
        "--python",
        metavar="PATH",
        help="the Python git runs the filter with (default: this one)",
    )
    removing = add("uninstall", "remove the filter, the diff driver and their attribute lines")
    removing.add_argument("--attributes", metavar="FILE", help="attributes file to clean up")
    add("status", "say whether and how the filter is installed (exit 1 when it is not)")


def run(args: argparse.Namespace) -> int:
    """Run the `git` sub-command parsed into `args`."""
    location: Location = args.location
    if args.git_command == "install":
        return install(location, args.attributes, args.python, verbose=True)
    if args.git_command == "uninstall":
        return uninstall(location, args.attributes)
    return status(location, verbose=True)
