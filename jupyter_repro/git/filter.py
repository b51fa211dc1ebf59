"""Git's clean filter for notebooks: the long-running process protocol, one-shot clean, textconv.

The filter never blocks a commit: whatever it cannot strip (not JSON, not a notebook, a cell
contradicting itself) goes into the index byte for byte, with one warning line on stderr. It
never answers `status=error` for content, because with `filter.<driver>.required` git would
abort the whole `git add`.

The protocol (gitattributes(5), "Long Running Filter Process") frames everything in pkt-lines:
four hex digits giving the length including themselves, then the payload; `0000` is a flush.
Packets are bytes and stay bytes: a file name is whatever bytes git stores (Latin-1, a newline,
an `=`), so the pathname is decoded like the file system's names (`os.fsdecode`, undecodable
bytes as surrogates) and every `os` call on it gets the original bytes back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO, TextIO

from ..notebooks.nbjson import NotebookError
from ..notebooks.policy import DEFAULT_OPTIONS, PolicyError, load_policy
from ..notebooks.strip import StripOptions, strip_text, strip_zeppelin_text

# Largest payload of one pkt-line (65520 bytes with its 4-byte header).
MAX_PAYLOAD = 65516
FLUSH = b"0000"
SUCCESS = b"0013status=success\n"

# `smudge` is advertised although it changes nothing: with `filter.<driver>.required`, git
# (2.39 checked) fails a checkout with "smudge filter failed" when the process filter lacks the
# capability, and it ignores `filter.<driver>.smudge` whenever `.process` is set. Files are
# written to the working tree exactly as stored, which is what keeps `git status` quiet.
CAPABILITIES = (b"clean", b"smudge")


class ProtocolError(Exception):
    """Git sent something that is not the long-running filter protocol."""


class NotebookCleaner:
    """Strips notebook content for a path, with the policy of the path's directory.

    One instance serves every file of a git command, so the policy of each directory is looked
    up once, a broken policy is reported once, and so is a file that cannot be stripped, however
    often git asks for it (`git add` then the index refresh of a `git commit -a`, a racily
    clean file checked again).

    With `quiet`, nothing is reported (textconv under git: see `run_textconv`).
    """

    def __init__(self, stderr: TextIO, *, quiet: bool = False) -> None:
        self._stderr = stderr
        self._quiet = quiet
        self._options: dict[str, StripOptions] = {}
        self._warned: set[str] = set()
        self._warned_paths: set[str | None] = set()

    def clean(self, pathname: str | None, content: bytes) -> bytes:
        """The content to store for `pathname`; `content` itself when it cannot be stripped.

        Without a pathname (a one-shot clean without `%f`) the content is taken for a notebook.
        `pathname` is a file system name as `os.fsdecode` gives it (surrogates for the bytes
        that are not in the file system encoding).
        """
        try:
            if pathname is not None and pathname.endswith(".zpln"):
                return strip_zeppelin_text(content).text.encode("utf-8")
            if pathname is None or pathname.endswith(".ipynb"):
                options = self.options_for(pathname or "notebook.ipynb")
                return strip_text(content, options).text.encode("utf-8")
        except NotebookError as error:
            self._warn_path(pathname, f"{error}")
        except Exception as error:  # a bug here must not cost the user their commit
            self._warn_path(pathname, f"internal error {error!r}")
        return content

    def _warn_path(self, pathname: str | None, problem: str) -> None:
        """One warning per path, even when its content changed between two requests."""
        if pathname in self._warned_paths:
            return
        self._warned_paths.add(pathname)
        self._warn(f"jupyter-repro: warning: {shown_name(pathname)} left as is: {problem}")

    def options_for(self, pathname: str) -> StripOptions:
        """The strip options of the policy that governs `pathname` (cached per directory)."""
        directory = os.path.dirname(pathname)
        options = self._options.get(directory)
        if options is None:
            options = self._load_options(pathname)
            self._options[directory] = options
        return options

    def _load_options(self, pathname: str) -> StripOptions:
        try:
            return load_policy(pathname).options
        except PolicyError as error:
            # A typo in pyproject.toml must not block commits: strip with the defaults.
            self._warn(f"jupyter-repro: warning: {error}; using the default strip policy")
            return DEFAULT_OPTIONS

    def _warn(self, message: str) -> None:
        if self._quiet or message in self._warned:
            return
        self._warned.add(message)
        print(printable(message), file=self._stderr, flush=True)


def printable(text: str) -> str:
    """`text` with the undecodable bytes of file names in it (surrogates) as `\\xNN`, so that
    any text stream can write it."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte (surrogatepass, Windows)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def shown_name(pathname: str | None) -> str:
    """`pathname` for a one-line message: undecodable bytes and control characters escaped."""
    if pathname is None:
        return "<stdin>"
    name = printable(pathname)
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def decode_pathname(value: bytes) -> str:
    """The pathname git sent, as the `str` that `os` functions turn back into these bytes."""
    try:
        return os.fsdecode(value)
    except UnicodeError:  # a strict file system encoding (Windows): never fail the commit
        return value.decode("utf-8", "surrogateescape")


class PacketReader:
    """Reads pkt-lines from git."""

    def __init__(self, stream: BinaryIO) -> None:
        self._read = stream.read

    def _exactly(self, size: int) -> bytes:
        data = self._read(size)
        # A buffered stream returns short reads only at end of file; a raw one may return
        # fewer bytes at any time, so keep reading until the packet is whole.
        while len(data) < size:
            more = self._read(size - len(data))
            if not more:
                raise ProtocolError(f"git closed the pipe inside a packet ({len(data)}/{size})")
            data += more
        return data

    def packet(self, at_start: bool = False) -> bytes | None:
        """The payload of the next packet; None for a flush packet.

        With `at_start`, a pipe closed before the packet raises EOFError: git is done.
        """
        header = self._read(4)
        if not header:
            if at_start:
                raise EOFError
            raise ProtocolError("git closed the pipe where a packet was due")
        if len(header) < 4:
            header += self._exactly(4 - len(header))
        try:
            length = int(header, 16)
        except ValueError:
            raise ProtocolError(f"bad packet header {header!r}") from None
        if length == 0:
            return None
        if length <= 4:
            raise ProtocolError(f"unexpected packet {header!r}")
        return self._exactly(length - 4)

    def lines(self, at_start: bool = False) -> list[bytes]:
        """Text packets up to the next flush, as bytes without their trailing newline.

        Only one newline goes: a file name may end in one of its own.
        """
        lines: list[bytes] = []
        while (payload := self.packet(at_start=at_start and not lines)) is not None:
            lines.append(payload[:-1] if payload.endswith(b"\n") else payload)
        return lines

    def content(self) -> bytes:
        """Content packets up to the next flush, joined."""
        content = bytearray()
        while (payload := self.packet()) is not None:
            content += payload
        return bytes(content)


def text_packets(lines: Iterable[bytes]) -> bytes:
    """`lines` as text pkt-lines, each ending in a newline as git writes them."""
    out = bytearray()
    for line in lines:
        payload = line + b"\n"
        out += b"%04x" % (len(payload) + 4)
        out += payload
    return bytes(out)


def content_packets(content: bytes) -> list[bytes | memoryview]:
    """`content` cut into pkt-lines (headers and slices, for one `b"".join`)."""
    view = memoryview(content)
    parts: list[bytes | memoryview] = []
    for start in range(0, len(content), MAX_PAYLOAD):
        chunk = view[start : start + MAX_PAYLOAD]
        parts.append(b"%04x" % (len(chunk) + 4))
        parts.append(chunk)
    return parts


def _handshake(reader: PacketReader, stdout: BinaryIO) -> None:
    welcome = reader.lines()
    if b"git-filter-client" not in welcome or b"version=2" not in welcome:
        raise ProtocolError(f"expected git-filter-client version=2, got {welcome!r}")
    stdout.write(text_packets([b"git-filter-server", b"version=2"]) + FLUSH)
    stdout.flush()
    offered = {line.removeprefix(b"capability=") for line in reader.lines()}
    answer = [b"capability=" + c for c in CAPABILITIES if c in offered]
    stdout.write(text_packets(answer) + FLUSH)
    stdout.flush()


def run_process_filter(stdin: BinaryIO, stdout: BinaryIO, stderr: TextIO) -> int:
    """Serve git's long-running filter protocol until git closes the pipe."""
    reader = PacketReader(stdin)
    cleaner = NotebookCleaner(stderr)
    try:
        _handshake(reader, stdout)
        while True:
            try:
                header = reader.lines(at_start=True)
            except EOFError:
                return 0
            # Split at the first `=` only: the pathname may hold more of them.
            fields = dict(line.partition(b"=")[::2] for line in header)
            content = reader.content()
            command = fields.get(b"command")
            if command == b"clean":
                pathname = fields.get(b"pathname")
                path = None if pathname is None else decode_pathname(pathname)
                result = cleaner.clean(path, content)
            elif command == b"smudge":
                result = content
            else:
                stdout.write(text_packets([b"status=error"]) + FLUSH)
                stdout.flush()
                continue
            # Status, content and the final (empty) status list in one write: one system
            # call per small notebook keeps a 500-notebook `git add` fast.
            response: list[bytes | memoryview] = [SUCCESS, FLUSH]
            response += content_packets(result)
            response += [FLUSH, FLUSH]
            stdout.write(b"".join(response))
            stdout.flush()
    except (ProtocolError, EOFError) as error:
        print(f"jupyter-repro: git filter protocol error: {error}", file=stderr, flush=True)
        return 1
    except BrokenPipeError:
        # git went away mid-answer (it was interrupted): nothing left to serve.
        return 1


def run_clean_filter(path: str | None, stdin: BinaryIO, stdout: BinaryIO, stderr: TextIO) -> int:
    """The one-shot `clean` filter: notebook on stdin, what to store on stdout."""
    content = stdin.read()
    stdout.write(NotebookCleaner(stderr).clean(path, content))
    stdout.flush()
    return 0


def run_textconv(path: str, stdout: BinaryIO, stderr: TextIO, *, quiet: bool | None = None) -> int:
    """The text git diffs for a notebook: stripped, or the file as is when it is not one.

    Run by git (`quiet` None: git's GIT_EXEC_PATH is set), a file that cannot be stripped is
    diffed as is without a warning: git runs textconv once per side of every diffed file, in a
    process of its own, and the filter has already said it once in this command (`git diff`
    cleans the working tree's file) or when the file was added. Run by hand, it warns.
    """
    if quiet is None:
        quiet = "GIT_EXEC_PATH" in os.environ
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        print(f"jupyter-repro: cannot read {shown_name(path)}: {error.strerror}", file=stderr)
        return 1
    # git names its temporary copies `XXXXXX_<name>`, so the suffix still tells the format.
    stdout.write(NotebookCleaner(stderr, quiet=quiet).clean(path, content))
    stdout.flush()
    return 0
