"""`python -m jupyter_repro.git process | clean [PATH] | textconv PATH`: what git runs.

No argparse: git starts this once per command (and per diffed file for textconv), so every
millisecond of start-up counts.
"""

from __future__ import annotations

import sys

USAGE = "usage: python -m jupyter_repro.git {process | clean [PATH] | textconv PATH}"


def main(argv: list[str]) -> int:
    """Run the sub-command in `argv` (without the program name)."""
    from .filter import run_clean_filter, run_process_filter, run_textconv

    command, arguments = (argv[0], argv[1:]) if argv else ("", [])
    if command == "process" and not arguments:
        return run_process_filter(sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    if command == "clean" and len(arguments) <= 1:
        path = arguments[0] if arguments else None
        return run_clean_filter(path, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    if command == "textconv" and len(arguments) == 1:
        return run_textconv(arguments[0], sys.stdout.buffer, sys.stderr)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
