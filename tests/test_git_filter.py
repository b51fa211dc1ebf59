"""The git filter with real git: what reaches the index, what stays in the working tree.

Every test runs git in a repository under tmp_path, with the machine's git configuration
replaced by empty files, and the filter installed by `jupyter_repro.git.install` with this
interpreter.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_repro.git import filter as git_filter
from jupyter_repro.git.install import install
from jupyter_repro.notebooks.policy import DEFAULT_OPTIONS, clear_caches
from jupyter_repro.notebooks.strip import strip_text

# Environment variables of an outer git (a hook running these tests) that would point the
# test's git at another repository.
_OUTER_GIT_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_TRACE",
    "GIT_TRACE_PACKET",
)


@pytest.fixture
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME and empty global and system git configuration files, all in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("")
    (tmp_path / "gitconfig-system").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "gitconfig-system"))
    # /etc/gitattributes of the machine must not change what the tests see either.
    monkeypatch.setenv("GIT_ATTR_NOSYSTEM", "1")
    for name in _OUTER_GIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    clear_caches()
    return home


def git(*args: str, cwd: Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run git; fail the test with git's stderr if it fails."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def git_bytes(*args: str, cwd: Path | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def init_repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", str(path))
    git("config", "user.name", "Test User", cwd=path)
    git("config", "user.email", "test@example.org", cwd=path)
    git("config", "commit.gpgsign", "false", cwd=path)
    git("config", "core.autocrlf", "false", cwd=path)
    return path


@pytest.fixture
def repo(git_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with the filter installed locally; the current directory is its root."""
    path = init_repository(tmp_path / "repo")
    monkeypatch.chdir(path)
    assert install("local", None, sys.executable) == 0
    return path


def code_cell(source: str, output: str, count: int = 1, cell_id: str | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": cell_id or f"cell-{abs(hash(source)) % 10**8}",
        "metadata": {"scrolled": True},
        "outputs": [
            {"name": "stdout", "output_type": "stream", "text": [output]},
            {
                "data": {"text/plain": [f"'{output}'"]},
                "execution_count": count,
                "metadata": {},
                "output_type": "execute_result",
            },
        ],
        "source": [source],
    }


def notebook(*cells: dict, **metadata: Any) -> dict:
    return {
        "cells": list(cells),
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}, **metadata},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, nb: dict) -> bytes:
    text = (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    return text


def sample_notebook(tag: str = "a", cells: int = 3) -> dict:
    return notebook(
        *(
            code_cell(f"print('{tag}{i}')", f"output {tag}{i}", i + 1, f"{tag}-{i}")
            for i in range(cells)
        )
    )


def assert_stripped(blob: bytes) -> dict:
    """The notebook in `blob`, checked to carry no outputs and no execution counts."""
    nb = json.loads(blob)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None
        assert "scrolled" not in cell["metadata"]
    return nb


def porcelain(cwd: Path) -> str:
    return git("status", "--porcelain", cwd=cwd).stdout


def is_fingerprint_line(line: str) -> bool:
    """A diff line of `metadata.jupyter_repro.fingerprints` (tests/test_fingerprint.py): what
    stripping keeps of an output, its digest and (short) sanitized text."""
    return line[1:].lstrip().startswith(('"sha256": ', '"text": '))


# -- commit, checkout, status ------------------------------------------------------------------


def test_commit_stores_the_stripped_notebook_and_keeps_outputs_in_the_working_tree(repo: Path):
    original = write_notebook(repo / "analysis.ipynb", sample_notebook())
    git("add", "analysis.ipynb")
    git("commit", "-q", "-m", "analysis")

    blob = git_bytes("cat-file", "blob", "HEAD:analysis.ipynb")
    nb = assert_stripped(blob)
    assert [c["id"] for c in nb["cells"]] == ["a-0", "a-1", "a-2"], "valid ids are kept"
    assert [c["source"] for c in nb["cells"]] == [["print('a0')"], ["print('a1')"], ["print('a2')"]]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert blob == strip_text(original, DEFAULT_OPTIONS).text.encode()
    assert (repo / "analysis.ipynb").read_bytes() == original
    assert porcelain(repo) == ""


def test_a_change_of_outputs_only_leaves_nothing_to_commit(repo: Path):
    write_notebook(repo / "nb.ipynb", sample_notebook())
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "nb")
    rerun = sample_notebook()
    # The same results again: new execution counts. (A different result changes its
    # fingerprint, so that one is to commit: tests/test_fingerprint.py.)
    rerun["cells"][1]["outputs"][1]["execution_count"] = 42
    rerun["cells"][1]["execution_count"] = 42
    write_notebook(repo / "nb.ipynb", rerun)

    assert subprocess.run(["git", "diff", "--exit-code", "--quiet"]).returncode == 0
    # git trusts a changed file size without running the filter, so status lists the file
    # until it is added; adding it stages nothing.
    git("add", "nb.ipynb")
    assert porcelain(repo) == ""
    assert git("diff", "--cached").stdout == ""


def test_checkout_back_and_forth_leaves_no_phantom_modifications(repo: Path):
    write_notebook(repo / "nb.ipynb", sample_notebook("a"))
    write_notebook(repo / "other.ipynb", sample_notebook("o"))
    git("add", ".")
    git("commit", "-q", "-m", "main")
    git("checkout", "-q", "-b", "feature")
    write_notebook(repo / "nb.ipynb", sample_notebook("b", cells=4))
    git("commit", "-q", "-am", "feature")

    git("checkout", "-q", "main")
    assert porcelain(repo) == ""
    assert_stripped((repo / "nb.ipynb").read_bytes())
    assert (repo / "nb.ipynb").read_bytes() == git_bytes("cat-file", "blob", "main:nb.ipynb")
    git("checkout", "-q", "feature")
    assert porcelain(repo) == ""
    # Files written by checkout, then touched: git re-runs the filter and still sees no change.
    for name in ("nb.ipynb", "other.ipynb"):
        os.utime(repo / name, (time.time() + 5, time.time() + 5))
    assert porcelain(repo) == ""
    git("checkout", "-q", "main")
    assert porcelain(repo) == ""
    assert len(json.loads((repo / "nb.ipynb").read_bytes())["cells"]) == 3


# -- diff -------------------------------------------------------------------------------------


def test_diff_shows_source_changes_and_not_outputs(repo: Path):
    write_notebook(repo / "nb.ipynb", sample_notebook())
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "nb")
    edited = sample_notebook()
    edited["cells"][2]["source"] = ["print('changed')"]
    edited["cells"][2]["outputs"][0]["text"] = ["changed output\n"]
    write_notebook(repo / "nb.ipynb", edited)

    diff = git("diff").stdout
    added = [line for line in diff.splitlines() if line.startswith("+") and "+++" not in line]
    removed = [line for line in diff.splitlines() if line.startswith("-") and "---" not in line]
    assert [line for line in added if not is_fingerprint_line(line)] == [
        "+    \"print('changed')\""
    ]
    assert [line for line in removed if not is_fingerprint_line(line)] == ["-    \"print('a2')\""]
    # Of the outputs, only the changed one's fingerprint.
    assert '+      "text": "changed output\\n"' in added
    assert len(added) == len(removed) == 3


def test_textconv_diffs_old_commits_with_outputs_as_stripped_notebooks(
    git_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # History written before the filter was installed still holds outputs; diffs hide them.
    path = init_repository(tmp_path / "repo")
    monkeypatch.chdir(path)
    first = sample_notebook()
    write_notebook(path / "nb.ipynb", first)
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "with outputs")
    second = sample_notebook()
    second["cells"][0]["source"] = ["print('new')"]
    for cell in second["cells"]:
        cell["outputs"][0]["text"] = ["rerun output\n"]
    write_notebook(path / "nb.ipynb", second)
    git("commit", "-q", "-am", "rerun")
    raw = git("diff", "HEAD~1", "HEAD").stdout
    assert "rerun output" in raw

    assert install("local", None, sys.executable) == 0
    diff = git("diff", "HEAD~1", "HEAD").stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert [line for line in changed if not is_fingerprint_line(line)] == [
        "-    \"print('a0')\"",
        "+    \"print('new')\"",
    ]
    converted = json.loads(git("cat-file", "--textconv", "HEAD:nb.ipynb").stdout)
    assert all(cell["outputs"] == [] for cell in converted["cells"])
    # cachetextconv keeps the converted text in notes, so the next diff does not convert again
    assert git("for-each-ref", "refs/notes/textconv/").stdout.strip() != ""
    assert git("diff", "--no-textconv", "HEAD~1", "HEAD").stdout == raw


def test_textconv_prints_a_file_that_is_not_json_as_is(repo: Path):
    (repo / "broken.ipynb").write_bytes(b'{"cells": [\n')
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_repro.git", "textconv", "broken.ipynb"],
        capture_output=True,
    )
    assert result.returncode == 0
    assert result.stdout == b'{"cells": [\n'
    assert b"broken.ipynb" in result.stderr


# -- stash and merge --------------------------------------------------------------------------


def test_stash_and_pop_round_trip(repo: Path):
    write_notebook(repo / "nb.ipynb", sample_notebook())
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "nb")
    edited = sample_notebook()
    edited["cells"][1]["source"] = ["print('work in progress')"]
    write_notebook(repo / "nb.ipynb", edited)

    git("stash", "-q")
    assert porcelain(repo) == ""
    assert (repo / "nb.ipynb").read_bytes() == git_bytes("cat-file", "blob", "HEAD:nb.ipynb")
    git("stash", "pop", "-q")
    assert porcelain(repo) == " M nb.ipynb\n"
    assert git("stash", "list").stdout == ""
    restored = json.loads((repo / "nb.ipynb").read_bytes())
    assert restored["cells"][1]["source"] == ["print('work in progress')"]
    # The stash went through the clean filter like any other stored content: the popped
    # notebook is the stripped one, outputs are not restored.
    assert_stripped((repo / "nb.ipynb").read_bytes())


def test_merge_of_branches_editing_different_cells(repo: Path):
    write_notebook(repo / "nb.ipynb", sample_notebook(cells=6))
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "base")
    git("checkout", "-q", "-b", "left")
    left = sample_notebook(cells=6)
    left["cells"][0]["source"] = ["print('left')"]
    left["cells"][0]["outputs"][0]["text"] = ["left output\n"]
    write_notebook(repo / "nb.ipynb", left)
    git("commit", "-q", "-am", "left")
    git("checkout", "-q", "main")
    right = sample_notebook(cells=6)
    right["cells"][5]["source"] = ["print('right')"]
    right["cells"][5]["execution_count"] = 99
    write_notebook(repo / "nb.ipynb", right)
    git("commit", "-q", "-am", "right")

    git("merge", "-q", "--no-edit", "left")
    merged = assert_stripped(git_bytes("cat-file", "blob", "HEAD:nb.ipynb"))
    assert merged["cells"][0]["source"] == ["print('left')"]
    assert merged["cells"][5]["source"] == ["print('right')"]
    assert porcelain(repo) == ""


# -- content the filter cannot strip ----------------------------------------------------------


def test_a_corrupt_notebook_is_committed_unchanged_with_one_warning(repo: Path):
    # Large enough that git gets it back in several packets.
    corrupt = b'{"cells": [{"cell_type": "code", "outputs": [\n' + b"0123456789" * 30_000
    not_a_notebook = b"[1, 2, 3]\n"
    (repo / "corrupt.ipynb").write_bytes(corrupt)
    (repo / "list.ipynb").write_bytes(not_a_notebook)
    write_notebook(repo / "good.ipynb", sample_notebook())

    added = git("add", "corrupt.ipynb", "list.ipynb", "good.ipynb")
    git("commit", "-q", "-m", "mixed")

    assert git_bytes("cat-file", "blob", "HEAD:corrupt.ipynb") == corrupt
    assert git_bytes("cat-file", "blob", "HEAD:list.ipynb") == not_a_notebook
    assert_stripped(git_bytes("cat-file", "blob", "HEAD:good.ipynb"))
    warnings = added.stderr.splitlines()
    assert len([w for w in warnings if "corrupt.ipynb" in w]) == 1
    assert len([w for w in warnings if "list.ipynb" in w]) == 1
    assert not [w for w in warnings if "good.ipynb" in w]
    fsck = git("fsck", "--strict", "--no-dangling")
    assert fsck.stdout == ""
    assert porcelain(repo) == ""


def test_a_cell_contradicting_itself_passes_through_with_a_warning(repo: Path):
    cell = code_cell("x = 1", "1", cell_id="conflict")
    cell["metadata"] = {"keep_output": False, "tags": ["keep_output"]}
    text = write_notebook(repo / "conflict.ipynb", notebook(cell))

    added = git("add", "conflict.ipynb")

    assert git_bytes("cat-file", "blob", ":conflict.ipynb") == text
    assert "conflict.ipynb" in added.stderr


def test_a_zeppelin_notebook_loses_its_results(repo: Path):
    zeppelin = {"paragraphs": [{"text": "%sh ls", "results": {"msg": [{"data": "a b"}]}}]}
    (repo / "note.zpln").write_text(json.dumps(zeppelin))
    (repo / "data.json").write_text('{"results": 1}')

    git("add", "note.zpln", "data.json")

    stored = json.loads(git_bytes("cat-file", "blob", ":note.zpln"))
    assert stored["paragraphs"] == [{"text": "%sh ls", "results": {}}]
    assert git_bytes("cat-file", "blob", ":data.json") == b'{"results": 1}'


# -- size and processes -----------------------------------------------------------------------


def big_notebook(megabytes: int) -> dict:
    """A notebook of about `megabytes` MB, nearly all of it base64 images in outputs."""
    chunk = base64.b64encode(os.urandom(750_000)).decode()  # 1 MB of base64
    cells = []
    for i in range(megabytes):
        cell = code_cell(f"plot({i})", f"figure {i}", i + 1, f"plot-{i}")
        cell["outputs"].append(
            {
                "data": {"image/png": chunk, "text/plain": ["<Figure>"]},
                "metadata": {},
                "output_type": "display_data",
            }
        )
        cells.append(cell)
    return notebook(*cells)


def test_a_50_mb_notebook_goes_through_quickly(repo: Path):
    size = len(write_notebook(repo / "big.ipynb", big_notebook(50)))
    assert size > 50_000_000

    started = time.perf_counter()
    git("add", "big.ipynb")
    elapsed = time.perf_counter() - started

    blob = git_bytes("cat-file", "blob", ":big.ipynb")
    assert len(assert_stripped(blob)["cells"]) == 50
    # The cells' sources and the fingerprints of their outputs (about 1 KB a cell).
    assert len(blob) < 60_000
    # About a second on a laptop; the bound only catches a pathological (quadratic) slowdown
    # on a loaded test machine.
    assert elapsed < 30, f"git add of a {size / 1e6:.0f} MB notebook took {elapsed:.1f} s"


def test_one_filter_process_serves_every_notebook_of_a_git_command(repo: Path, tmp_path: Path):
    for i in range(8):
        write_notebook(repo / f"nb{i}.ipynb", sample_notebook(str(i)))
    trace = tmp_path / "packets.trace"

    git("add", ".", env={**os.environ, "GIT_TRACE_PACKET": str(trace)})

    lines = trace.read_text().splitlines()
    assert len([line for line in lines if "git> git-filter-client" in line]) == 1
    assert len([line for line in lines if "git> command=clean" in line]) == 8
    for i in range(8):
        assert_stripped(git_bytes("cat-file", "blob", f":nb{i}.ipynb"))


# -- the one-shot command ---------------------------------------------------------------------


def test_the_clean_command_and_the_process_filter_store_the_same_bytes(repo: Path):
    files = {
        "nb.ipynb": write_notebook(repo / "nb.ipynb", sample_notebook()),
        "big.ipynb": write_notebook(repo / "big.ipynb", big_notebook(1)),
        "corrupt.ipynb": b"{not json",
        "note.zpln": json.dumps({"paragraphs": [{"results": {"x": 1}}]}).encode(),
    }
    for name, content in files.items():
        (repo / name).write_bytes(content)
    git("add", *files)

    for name, content in files.items():
        one_shot = subprocess.run(
            [sys.executable, "-m", "jupyter_repro.git", "clean", name],
            input=content,
            capture_output=True,
            check=True,
        )
        assert one_shot.stdout == git_bytes("cat-file", "blob", f":{name}"), name
    assert files["nb.ipynb"] != git_bytes("cat-file", "blob", ":nb.ipynb")


def test_git_uses_the_clean_command_where_no_process_filter_is_configured(repo: Path):
    git("config", "--unset", "filter.jupyter-repro.process")
    write_notebook(repo / "nb.ipynb", sample_notebook())

    git("add", "nb.ipynb")

    assert_stripped(git_bytes("cat-file", "blob", ":nb.ipynb"))


# -- policy -----------------------------------------------------------------------------------


def test_the_pyproject_policy_of_each_directory_is_honoured(repo: Path):
    (repo / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\nkeep_output = true\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\n")
    write_notebook(repo / "kept.ipynb", sample_notebook())
    write_notebook(repo / "also_kept.ipynb", sample_notebook("b"))
    write_notebook(repo / "sub" / "stripped.ipynb", sample_notebook())

    git("add", ".")

    for name in ("kept.ipynb", "also_kept.ipynb"):
        kept = json.loads(git_bytes("cat-file", "blob", f":{name}"))
        assert [len(c["outputs"]) for c in kept["cells"]] == [2, 2, 2], name
    assert_stripped(git_bytes("cat-file", "blob", ":sub/stripped.ipynb"))


def test_a_broken_policy_warns_once_and_strips_with_the_defaults(repo: Path):
    (repo / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\nkeep_output = 'maybe'\n")
    for i in range(3):
        write_notebook(repo / f"nb{i}.ipynb", sample_notebook(str(i)))

    added = git("add", ".")

    for i in range(3):
        assert_stripped(git_bytes("cat-file", "blob", f":nb{i}.ipynb"))
    warnings = [line for line in added.stderr.splitlines() if "pyproject.toml" in line]
    assert len(warnings) == 1, added.stderr


# -- the protocol itself ----------------------------------------------------------------------


def packet(text: str) -> bytes:
    payload = text.encode() + b"\n"
    return b"%04x" % (len(payload) + 4) + payload


def handshake() -> bytes:
    return (
        packet("git-filter-client")
        + packet("version=2")
        + b"0000"
        + packet("capability=clean")
        + packet("capability=smudge")
        + packet("capability=delay")
        + b"0000"
    )


def request(command: str, pathname: str, content: bytes) -> bytes:
    body = b"".join(git_filter.content_packets(content))
    return packet(f"command={command}") + packet(f"pathname={pathname}") + b"0000" + body + b"0000"


def test_the_protocol_answers_in_packets_of_at_most_65516_bytes(git_home: Path):
    content = bytes(range(256)) * 1000  # 256 000 bytes: four packets, the last one short
    stdin = io.BytesIO(handshake() + request("clean", "data.bin", content))
    stdout = io.BytesIO()

    assert git_filter.run_process_filter(stdin, stdout, io.StringIO()) == 0

    out = stdout.getvalue()
    expected_head = (
        packet("git-filter-server")
        + packet("version=2")
        + b"0000"
        + packet("capability=clean")
        + packet("capability=smudge")
        + b"0000"
        + packet("status=success")
        + b"0000"
    )
    assert out.startswith(expected_head)
    rest, sizes, received = out[len(expected_head) :], [], b""
    while (length := int(rest[:4], 16)) != 0:
        sizes.append(length - 4)
        received += rest[4:length]
        rest = rest[length:]
    assert received == content
    assert sizes == [65516, 65516, 65516, 256000 - 3 * 65516]
    assert rest == b"0000" + b"0000", "content flush, then an empty list keeping the status"


def test_a_pipe_closed_inside_a_request_is_a_protocol_error(git_home: Path):
    stdin = io.BytesIO(handshake() + packet("command=clean") + b"00")
    stderr = io.StringIO()

    assert git_filter.run_process_filter(stdin, io.BytesIO(), stderr) == 1
    assert "protocol error" in stderr.getvalue()


def test_a_hundred_notebooks_are_added_by_one_process(repo: Path):
    for i in range(100):
        write_notebook(repo / "many" / f"nb{i:03}.ipynb", sample_notebook(str(i), cells=10))

    started = time.perf_counter()
    git("add", "many")
    elapsed = time.perf_counter() - started

    assert len(git("ls-files", "many").stdout.splitlines()) == 100
    assert_stripped(git_bytes("cat-file", "blob", ":many/nb099.ipynb"))
    # About 0.2 s measured; nbstripout needs over 25 s here (three processes per file).
    assert elapsed < 15, f"git add of 100 notebooks took {elapsed:.1f} s"


# -- file names that are bytes ----------------------------------------------------------------


def write_raw(repo: Path, name: bytes, content: bytes) -> None:
    """Write `content` to the file `name` (bytes, relative to `repo`), creating its folders."""
    path = os.path.join(os.fsencode(repo), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(content)


def index_blobs(cwd: Path | None = None) -> dict[bytes, bytes]:
    """Every file of the index by its raw name, with the content stored for it."""
    blobs = {}
    for record in git_bytes("ls-files", "-s", "-z", cwd=cwd).split(b"\0"):
        if record:
            info, _, name = record.partition(b"\t")
            blobs[name] = git_bytes("cat-file", "blob", info.split()[1].decode(), cwd=cwd)
    return blobs


@pytest.fixture
def bytes_names(repo: Path) -> Path:
    """The repository, where the file system takes names that are not UTF-8 (not macOS's,
    not Windows')."""
    try:
        write_raw(repo, b"probe-\xe9", b"")
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses names that are not UTF-8")
    os.remove(os.path.join(os.fsencode(repo), b"probe-\xe9"))
    return repo


NOTEBOOK_NAMES = [
    b"caf\xe9.ipynb",  # Latin-1
    b"\xff\xfe.ipynb",  # no encoding's text at all
    b"donn\xe9es/r\xe9sultat.ipynb",  # in a folder that is not UTF-8 either
    b"line\nbreak.ipynb",  # git sends it as is in the pathname packet
    b"a=b=c.ipynb",
    b"pathname=command=smudge.ipynb",  # looks like the header's own lines
    b"-n.ipynb",  # looks like an option to the one-shot clean command
    b"\\x e9 \"quoted\" 'single' $(echo no).ipynb",
    # Long for a name: about as long as a relative path may get on Linux (PATH_MAX 4096).
    b"/".join([b"d\xe9" * 125] * 15) + b"/" + b"\xe9" * 150 + b".ipynb",
]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES, ids=lambda name: repr(name)[:32])
def test_a_notebook_with_any_file_name_is_added_stripped_and_committed(
    bytes_names: Path, name: bytes
):
    original = (json.dumps(sample_notebook(), indent=1) + "\n").encode()
    write_raw(bytes_names, name, original)

    added = subprocess.run(["git", "add", "--", name], capture_output=True)

    assert added.returncode == 0, added.stderr
    assert added.stderr == b""
    stored = index_blobs()
    assert list(stored) == [name]
    assert stored[name] == strip_text(original, DEFAULT_OPTIONS).text.encode()
    assert_stripped(stored[name])
    git("commit", "-q", "-m", "a notebook with an odd name")
    assert git_bytes("status", "--porcelain", "-z") == b""
    with open(os.path.join(os.fsencode(bytes_names), name), "rb") as file:
        assert file.read() == original, "the working tree keeps the outputs"


def test_names_that_are_not_utf_8_all_go_through_one_git_add(bytes_names: Path):
    notebook_text = (json.dumps(sample_notebook(), indent=1) + "\n").encode()
    corrupt = b'{"cells": [\n'
    files = {name: notebook_text for name in NOTEBOOK_NAMES}
    files[b"bad-\xe9\n.ipynb"] = corrupt
    files[b"data-\xe9.bin"] = b"\x00\xe9 not a notebook\n"
    files[b"\xe9/note.zpln"] = json.dumps({"paragraphs": [{"results": {"x": 1}}]}).encode()
    for name, content in files.items():
        write_raw(bytes_names, name, content)

    added = subprocess.run(["git", "add", "-A"], capture_output=True)

    assert added.returncode == 0, added.stderr
    stored = index_blobs()
    assert sorted(stored) == sorted(files)
    for name in NOTEBOOK_NAMES:
        assert_stripped(stored[name])
    assert stored[b"bad-\xe9\n.ipynb"] == corrupt
    assert stored[b"data-\xe9.bin"] == files[b"data-\xe9.bin"]
    assert json.loads(stored[b"\xe9/note.zpln"]) == {"paragraphs": [{"results": {}}]}
    # One warning, on one line, naming the file with its bytes escaped.
    assert len(added.stderr.splitlines()) == 1, added.stderr
    assert added.stderr.startswith(b"jupyter-repro: warning: bad-\\xe9\\n.ipynb left as is: ")
    git("commit", "-q", "-m", "odd names")
    assert git("fsck", "--strict", "--no-dangling").stdout == ""
    assert git_bytes("status", "--porcelain", "-z") == b""


def test_the_policy_of_a_folder_that_is_not_utf_8_is_honoured(bytes_names: Path):
    write_raw(bytes_names, b"r\xe9sultats/pyproject.toml", b"[tool.jupyter_repro.strip]\n")
    write_raw(
        bytes_names,
        b"r\xe9sultats/gard\xe9/pyproject.toml",
        b"[tool.jupyter_repro.strip]\nkeep_output = true\n",
    )
    write_raw(
        bytes_names, b"cass\xe9/pyproject.toml", b"[tool.jupyter_repro.strip]\nkeep_output = 3\n"
    )
    text = json.dumps(sample_notebook()).encode()
    for name in (b"r\xe9sultats/a.ipynb", b"r\xe9sultats/gard\xe9/b.ipynb", b"cass\xe9/c.ipynb"):
        write_raw(bytes_names, name, text)

    added = subprocess.run(["git", "add", "-A"], capture_output=True)

    assert added.returncode == 0, added.stderr
    stored = index_blobs()
    assert_stripped(stored[b"r\xe9sultats/a.ipynb"])
    kept = json.loads(stored[b"r\xe9sultats/gard\xe9/b.ipynb"])
    assert [len(c["outputs"]) for c in kept["cells"]] == [2, 2, 2]
    # A broken policy in such a folder: one warning naming the file, the defaults apply.
    assert_stripped(stored[b"cass\xe9/c.ipynb"])
    warnings = added.stderr.splitlines()
    assert len(warnings) == 1, added.stderr
    assert b"cass\\xe9/pyproject.toml" in warnings[0]


def test_the_clean_command_and_textconv_take_names_that_are_not_utf_8(bytes_names: Path):
    git("config", "--unset", "filter.jupyter-repro.process")  # git runs `clean %f` per file
    name = b"-caf\xe9 'x'.ipynb"
    write_raw(bytes_names, name, json.dumps(sample_notebook()).encode())
    write_raw(bytes_names, b"broken-\xe9.ipynb", b"{not json")

    added = subprocess.run(["git", "add", "-A"], capture_output=True)

    assert added.returncode == 0, added.stderr
    stored = index_blobs()
    assert_stripped(stored[name])
    assert stored[b"broken-\xe9.ipynb"] == b"{not json"
    assert b"broken-\\xe9.ipynb left as is" in added.stderr
    git("commit", "-q", "-m", "one-shot")

    edited = sample_notebook()
    edited["cells"][0]["source"] = ["print('changed')"]
    write_raw(bytes_names, name, json.dumps(edited).encode())
    diff = subprocess.run(["git", "diff", "--", name], capture_output=True)
    assert diff.returncode == 0, diff.stderr
    changed = [line for line in diff.stdout.splitlines() if line[:1] in b"+-"]
    assert changed[2:] == [b"-    \"print('a0')\"", b"+    \"print('changed')\""]
    assert b"output a" not in diff.stdout


def raw_request(command: bytes, pathname: bytes, content: bytes) -> bytes:
    """A request as git writes it, the pathname's bytes as they are."""
    header = b""
    for payload in (b"command=" + command + b"\n", b"pathname=" + pathname + b"\n"):
        header += b"%04x" % (len(payload) + 4) + payload
    return header + b"0000" + b"".join(git_filter.content_packets(content)) + b"0000"


def test_the_protocol_takes_any_bytes_as_pathname(git_home: Path):
    text = json.dumps(sample_notebook()).encode()
    longest = b"\xe9" * (git_filter.MAX_PAYLOAD - len(b"pathname=.ipynb\n")) + b".ipynb"
    names = [b"caf\xe9.ipynb", b"nl\n.ipynb\n", b"a\nb.ipynb", b"=.ipynb", longest]
    stdin = io.BytesIO(
        handshake()
        + b"".join(raw_request(b"clean", name, text) for name in names)
        + raw_request(b"clean", b"corrupt-\xe9\x00.ipynb", b"{")
    )
    stdout, stderr = io.BytesIO(), io.StringIO()

    assert git_filter.run_process_filter(stdin, stdout, stderr) == 0

    answers = stdout.getvalue().split(b"0013status=success\n0000")[1:]
    stripped = strip_text(text, DEFAULT_OPTIONS).text.encode()
    expected = [stripped, text, stripped, stripped, stripped, b"{"]  # "nl\n.ipynb\n" is no .ipynb
    assert len(answers) == len(expected)
    for answer, content in zip(answers, expected):
        assert answer == b"".join(git_filter.content_packets(content)) + b"00000000"
    warning = stderr.getvalue()
    assert warning.startswith("jupyter-repro: warning: corrupt-\\xe9\\x00.ipynb left as is: ")
    assert warning.count("\n") == 1


@pytest.mark.parametrize("content", [b'{"a": 1}', b"[1, 2]", b'{"metadata": {}, "cells": 3}'])
def test_json_that_is_not_a_notebook_is_stored_as_is_with_a_plain_warning(tmp_path, content):
    stderr = io.StringIO()
    cleaner = git_filter.NotebookCleaner(stderr)

    stored = cleaner.clean(str(tmp_path / "data.ipynb"), content)

    warning = stderr.getvalue()
    assert stored == content
    assert "not a notebook" in warning or "a notebook is a JSON object" in warning
    assert "KeyError" not in warning
