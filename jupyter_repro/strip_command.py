"""`jupyter-repro-strip`: a drop-in for nbstripout's command line, with its defaults.

Same flags, outputs and exit codes as nbstripout 0.9.1, and the same bytes (see
`notebooks/strip.py` for the few deliberate differences). Errors are reported by nbstripout's
first lines; a cell that contradicts itself gets nbstripout's `MetadataError: ...` line (its
traceback left out) and then which cell it is and what to change. It differs in what it costs: it
imports neither nbformat nor jsonschema and starts no `git config` process per file, so a
pre-commit run or a one-shot clean filter pays a bare interpreter start-up per notebook.
nbstripout also reads `filter.nbstripout.extrakeys` from git config; this command does not:
settings that should travel with a repository belong in `[tool.jupyter_repro.strip]` of
pyproject.toml, which `jupyter repro strip` and the git filter read.

A module of its own (not `cli.py`) so that nothing but this runs at start-up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ._version import __version__
from .atomic import replace_file
from .notebooks.nbjson import NotebookError, NotJSONError
from .notebooks.strip import (
    NBSTRIPOUT_EXTRA_KEYS,
    MetadataConflict,
    StripOptions,
    StripResult,
    parse_max_size,
    strip_text,
    strip_zeppelin_text,
    valid_extra_keys,
)

# nbstripout 0.9.1 lets its MetadataError end the process: a traceback whose last line is
# this (after the exception's module path), and exit status 1.
NBSTRIPOUT_CONFLICT = (
    "MetadataError: cell metadata contradicts tags: "
    "`keep_output` is false, but `keep_output` in tags"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-repro-strip",
        description="Strip outputs from Jupyter and Zeppelin notebooks (nbstripout-compatible). "
        "Files are stripped in place; with no file, stdin is stripped to stdout.",
    )
    task = parser.add_mutually_exclusive_group()
    task.add_argument("--dry-run", action="store_true", help="print which files would change")
    task.add_argument("--install", action="store_true", help="install the git filter")
    task.add_argument("--uninstall", action="store_true", help="remove the git filter")
    task.add_argument(
        "--is-installed", action="store_true", help="exit 0 if the git filter is installed"
    )
    task.add_argument(
        "--status", action="store_true", help="print where and how the git filter is installed"
    )
    task.add_argument("--version", action="store_true", help="print the version")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="exit 1 if any file would change (implies --dry-run)",
    )
    parser.add_argument("--keep-count", action="store_true", help="keep execution counts")
    parser.add_argument("--keep-output", action="store_true", default=None, help="keep outputs")
    parser.add_argument(
        "--drop-output-type",
        nargs="+",
        default=[],
        metavar="TYPE",
        help="output types to drop even when kept, e.g. error or stream:stderr",
    )
    parser.add_argument(
        "--keep-output-type",
        nargs="+",
        default=[],
        metavar="TYPE",
        help="output types to keep even when stripping, e.g. display_data",
    )
    parser.add_argument("--keep-id", action="store_true", help="keep cell ids")
    parser.add_argument(
        "--extra-keys",
        default="",
        metavar="KEYS",
        help="space-separated extra keys to remove, e.g. 'metadata.foo cell.metadata.bar'",
    )
    parser.add_argument(
        "--keep-metadata-keys",
        default="",
        metavar="KEYS",
        help="space-separated keys not to remove, e.g. 'cell.metadata.scrolled'",
    )
    parser.add_argument(
        "--drop-empty-cells", action="store_true", help="remove cells with only whitespace"
    )
    parser.add_argument(
        "--drop-tagged-cells",
        default="",
        metavar="TAGS",
        help="space-separated cell tags; cells with any of them are removed",
    )
    parser.add_argument(
        "--strip-init-cells", action="store_true", help="strip cells marked `init_cell: true` too"
    )
    parser.add_argument(
        "--attributes", metavar="FILEPATH", help="attributes file for --install/--uninstall"
    )
    location = parser.add_mutually_exclusive_group()
    location.add_argument(
        "--global", dest="_global", action="store_true", help="use the global git config"
    )
    location.add_argument(
        "--system", dest="_system", action="store_true", help="use the system git config"
    )
    location.add_argument(
        "--python", dest="_python", metavar="PATH", help="python the filter runs (--install)"
    )
    parser.add_argument(
        "--force", "-f", action="store_true", help="strip files without an .ipynb/.zpln suffix"
    )
    parser.add_argument(
        "--max-size", metavar="SIZE", default="0", help="keep outputs up to SIZE (e.g. 10K)"
    )
    parser.add_argument(
        "--mode", "-m", default="jupyter", choices=["jupyter", "zeppelin"], help="notebook kind"
    )
    parser.add_argument(
        "--textconv", "-t", action="store_true", help="print stripped files to stdout"
    )
    parser.add_argument(
        "--unix-newlines",
        action="store_true",
        help="accepted for compatibility: output always uses \\n",
    )
    parser.add_argument("files", nargs="*", help="notebooks to strip in place")
    return parser


def options_from(args: argparse.Namespace) -> StripOptions:
    keep_metadata_keys = tuple(args.keep_metadata_keys.split())
    return StripOptions(
        keep_output=args.keep_output,
        keep_count=args.keep_count,
        keep_id=args.keep_id,
        extra_keys=NBSTRIPOUT_EXTRA_KEYS + tuple(args.extra_keys.split()),
        keep_metadata_keys=keep_metadata_keys,
        drop_empty_cells=args.drop_empty_cells,
        drop_tagged_cells=tuple(args.drop_tagged_cells.split()),
        strip_init_cells=args.strip_init_cells,
        max_size=parse_max_size(args.max_size),
        keep_output_types=frozenset(args.keep_output_type),
        drop_output_types=frozenset(args.drop_output_type),
    )


def _git_task(args: argparse.Namespace) -> int | None:
    """Run --install/--uninstall/--is-installed/--status; None if none was asked for."""
    if not (args.install or args.uninstall or args.is_installed or args.status):
        return None
    from .git import install as git_install

    location: git_install.Location = (
        "system" if args._system else "global" if args._global else "local"
    )
    if args.install:
        return git_install.install(location, attributes=args.attributes, python=args._python)
    if args.uninstall:
        return git_install.uninstall(location, attributes=args.attributes)
    return git_install.status(location, verbose=args.status)


class _Run:
    def __init__(self, args: argparse.Namespace, options: StripOptions, out: BinaryIO) -> None:
        self.args = args
        self.options = options
        self.out = out
        self.any_change = False

    def write(self, text: str) -> None:
        # Always UTF-8, whatever the locale of the git hook or CI job that runs this.
        self.out.write(text.encode("utf-8", "surrogatepass"))

    def strip(self, text: bytes) -> StripResult:
        if self.args.mode == "zeppelin":
            return strip_zeppelin_text(text)
        return strip_text(text, self.options)

    def file(self, name: str) -> None:
        path = Path(name)
        result = self.strip(path.read_bytes())
        self.any_change |= result.changed
        if self.args.dry_run:
            if result.changed:
                self.write(f"Dry run: would have stripped {name}\n")
        elif self.args.textconv:
            self.write(result.text)
        elif result.changed:
            replace_file(path, result.text)

    def stdin(self, data: bytes) -> None:
        result = self.strip(data)
        self.any_change |= result.changed
        if self.args.dry_run:
            if result.changed:
                self.write("Dry run: would have stripped input from stdin\n")
        else:
            self.write(result.text)


def _report_conflict(conflict: MetadataConflict, name: str | None) -> int:
    """nbstripout's lines for a contradicting cell, for the scripts that look for them,
    then which cell it is and what to change; nbstripout's exit status."""
    if name is not None:
        print(f"Could not strip '{name}'", file=sys.stderr)
    print(NBSTRIPOUT_CONFLICT, file=sys.stderr)
    print(f"{name if name is not None else 'stdin'}: {conflict}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except BrokenPipeError:
        # The reader (a pager, `head`) went away: not an error of ours.
        return 0


def run(argv: Sequence[str] | None = None, *, stdin: bytes | None = None) -> int:
    """The command; `stdin` replaces the process's standard input (for tests)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verify:
        args.dry_run = True
    git_status = _git_task(args)
    if git_status is not None:
        return git_status
    if args.version:
        print(__version__)
        return 0
    try:
        options = options_from(args)
    except ValueError as error:
        parser.error(f"--max-size expects {error}")
    for key in args.extra_keys.split():
        if key not in valid_extra_keys((key,)):
            sys.stderr.write(f"Ignoring invalid extra key `{key}`\n")

    run = _Run(args, options, sys.stdout.buffer)
    for name in args.files:
        if not (args.force or name.endswith((".ipynb", ".zpln"))):
            continue
        try:
            run.file(name)
        except MetadataConflict as conflict:
            return _report_conflict(conflict, name)
        except NotJSONError:
            print(f"No valid notebook detected in '{name}'", file=sys.stderr)
            return 1
        except FileNotFoundError:
            print(f"Could not strip '{name}': file not found", file=sys.stderr)
            return 1
        except (NotebookError, OSError) as error:
            print(f"Could not strip '{name}': {error}", file=sys.stderr)
            return 1

    if not args.files:
        data = stdin if stdin is not None else sys.stdin.buffer.read()
        try:
            run.stdin(data)
        except MetadataConflict as conflict:
            return _report_conflict(conflict, None)
        except NotJSONError:
            print("No valid notebook detected on stdin", file=sys.stderr)
            return 1
        except NotebookError as error:
            print(f"Could not strip input from stdin: {error}", file=sys.stderr)
            return 1
    sys.stdout.buffer.flush()
    return 1 if args.verify and run.any_change else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
