"""Stripping outputs: the per-file command, `git add` through each tool's filter, a 50 MB
notebook in-process, and the save hook's share of a 20 MB save.

Peers are the tools users run today, installed by the `bench` extra: nbstripout (Python, the
one we are a drop-in for), nbstripout-fast and nb-clean (both Rust binaries). Each is used the
way its README says: files in place for the command, its documented git filter set-up for
`git add`. Every timed run is checked to have really stripped (no outputs, no execution
counts left), so a misconfigured filter cannot pass for a fast one.

1. One file, a fresh process each time (pre-commit, a one-shot clean filter): small (10
   cells, ~20 KB, text outputs), medium (100 cells, ~1 MB, PNGs) and large (~10 MB, PNGs).
   The file is restored from a pristine copy before every run, outside the timing.
2. `git add .` of 500 notebooks (4 small to 1 medium) in a fresh repository per tool and
   run; only `git add` is timed, and every staged blob is checked. nbstripout starts a Python
   and two `git config` processes per notebook (about a second each on the 2-core machines
   this runs on), so 500 of them alone would take the group far past its time budget: it is
   timed once on the first NBSTRIPOUT_SAMPLE notebooks of the same set (the same mix) and
   scaled to 500, which is fair for a cost that is one process per file.
   `REPRO_BENCH_STRIP_NBSTRIPOUT_SAMPLE=500` times it on all of them.
3. `strip_text` of a 50 MB notebook against `json.loads` plus nbformat's `json.dumps` of the
   same notebook: the least any stripper that rewrites the JSON as nbformat does must do.
   Two shapes: mostly outputs (PNGs, as plots make them: stripping leaves little to write,
   so this is the easy case) and mostly source (long cells, short outputs: nearly all of it
   is parsed and written again, so any per-line or per-cell overhead of ours shows). The
   1.5x target applies to both rows, so the worse one decides.
4. The save hook's share of a 20 MB save: the same notebook model PUT to `api/contents` on a
   server with jupyter-repro enabled and on one without it, alternately. Mostly source is the
   honest case: the hook strips little, so its cost is not hidden by a smaller file to write;
   on a mostly-outputs notebook the hook makes the save faster (it writes ~1% of the bytes).

`REPRO_BENCH_QUICK=1` shrinks every size and count for development.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from jupyter_repro.notebooks.strip import StripOptions, strip_text

from . import _notebooks
from ._notebooks import Shape
from ._server import BenchServer
from ._table import Result

QUICK = os.environ.get("REPRO_BENCH_QUICK") == "1"
REPEATS = int(os.environ.get("REPRO_BENCH_STRIP_REPEATS", "3" if QUICK else "7"))
GIT_NOTEBOOKS = int(os.environ.get("REPRO_BENCH_STRIP_GIT_NOTEBOOKS", "40" if QUICK else "500"))
NBSTRIPOUT_SAMPLE = int(
    os.environ.get("REPRO_BENCH_STRIP_NBSTRIPOUT_SAMPLE", "10" if QUICK else "50")
)
GIT_REPEATS = int(os.environ.get("REPRO_BENCH_STRIP_GIT_REPEATS", "3"))
BIG_MB = 5 if QUICK else 50
BIG_REPEATS = int(os.environ.get("REPRO_BENCH_STRIP_BIG_REPEATS", "3"))
SAVE_MB = 2 if QUICK else 20
SAVES = int(os.environ.get("REPRO_BENCH_STRIP_SAVES", "3" if QUICK else "9"))

FILE_SIZES: dict[str, Shape] = {
    "small": _notebooks.SMALL,
    "medium": _notebooks.MEDIUM,
    "large": _notebooks.scaled_outputs(2) if QUICK else _notebooks.LARGE,
}
MEDIUM_EVERY = 5
"""In the `git add` set, every fifth notebook is medium, the others small."""
UNLIMITED = float("inf")  # a row reported for information, with no target


def _tool(name: str) -> str:
    """The peer's executable: beside this Python (the bench venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: install the `bench` extra (make bench)")
    return found


# Each tool's in-place command, as its --help documents it.
COMMANDS: dict[str, Callable[[], list[str]]] = {
    "jupyter-repro-strip": lambda: [_tool("jupyter-repro-strip")],
    "nbstripout": lambda: [_tool("nbstripout")],
    "nbstripout-fast": lambda: [_tool("nbstripout-fast")],
    "nb-clean": lambda: [_tool("nb-clean"), "clean"],
}
PEERS = ("nbstripout", "nbstripout-fast", "nb-clean")
COMMAND_LINES = {
    "nbstripout": "nbstripout FILE",
    "nbstripout-fast": "nbstripout-fast FILE",
    "nb-clean": "nb-clean clean FILE",
}


def _environ(home: Path) -> dict[str, str]:
    """A clean git world: own HOME, no system config, the bench venv's tools first on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "JUPYTER"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


# --- 1. one file, one process -------------------------------------------------------------


def _time_command(command: list[str], pristine: Path, work: Path, env: dict[str, str]) -> float:
    shutil.copyfile(pristine, work)
    started = time.perf_counter()
    subprocess.run([*command, str(work)], check=True, env=env, cwd=work.parent)
    elapsed = time.perf_counter() - started
    if not _notebooks.is_stripped(work.read_bytes()):
        raise RuntimeError(f"{command[0]} left outputs in {work.name}")
    return elapsed


def per_file(base: Path) -> list[Result]:
    env = _environ(base / "home")
    commands = {name: make() for name, make in COMMANDS.items()}
    results: list[Result] = []
    for label, shape in FILE_SIZES.items():
        folder = base / label
        folder.mkdir()
        pristine = folder / "pristine.ipynb"
        megabytes = _notebooks.write(pristine, shape) / 1e6
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, command in commands.items():  # warm the page cache and .pyc files
            _time_command(command, pristine, folder / f"{name}.ipynb", env)
        for _ in range(REPEATS):  # interleaved, so noise hits every tool alike
            for name, command in commands.items():
                times[name].append(_time_command(command, pristine, folder / f"{name}.ipynb", env))
        ours = statistics.median(times["jupyter-repro-strip"]) * 1000
        what = (
            f"strip 1 file in place, {label} notebook ({shape.cells} cells, {megabytes:.2g} MB), "
            f"fresh process (median of {REPEATS})"
        )
        for peer in PEERS:
            results.append(
                Result(
                    what, ours, statistics.median(times[peer]) * 1000, COMMAND_LINES[peer], "ms",
                    limit=0.2 if peer == "nbstripout" else UNLIMITED,
                )
            )  # fmt: skip
    return results


# --- 2. git add through each tool's filter --------------------------------------------------


def _run(command: list[str], repo: Path, env: dict[str, str], stdin: bytes = b"") -> bytes:
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, input=stdin)
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(command)} failed in {repo}: {error}")
    return done.stdout


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    return _run(["git", *args], repo, env).decode()


# The peers strip; recording output fingerprints (our default since verify) is work they do
# not do. The rows with targets time the same work (`fingerprint = false`); the default is
# timed too and reported beside them.
NO_FINGERPRINTS = {"fingerprint": False}


def _install_ours(repo: Path, env: dict[str, str]) -> None:
    _run([_tool("jupyter"), "repro", "git", "install"], repo, env)
    (repo / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\nfingerprint = false\n")


def _install_ours_fingerprinting(repo: Path, env: dict[str, str]) -> None:
    _run([_tool("jupyter"), "repro", "git", "install"], repo, env)


def _install_nbstripout(repo: Path, env: dict[str, str]) -> None:
    _run([_tool("nbstripout"), "--install"], repo, env)


def _install_nbstripout_fast(repo: Path, env: dict[str, str]) -> None:
    # Its README: no installer; a `jupyter` filter whose clean command is nbstripout-fast
    # (stdin to stdout), smudge `cat`, and `*.ipynb filter=jupyter` in .gitattributes.
    _git(repo, env, "config", "filter.jupyter.clean", _tool("nbstripout-fast"))
    _git(repo, env, "config", "filter.jupyter.smudge", "cat")
    (repo / ".gitattributes").write_text("*.ipynb filter=jupyter\n")


def _install_nb_clean(repo: Path, env: dict[str, str]) -> None:
    _run([_tool("nb-clean"), "add-filter"], repo, env)


INSTALLERS: dict[str, Callable[[Path, dict[str, str]], None]] = {
    "jupyter-repro": _install_ours,
    "jupyter-repro+fingerprints": _install_ours_fingerprinting,
    "nbstripout": _install_nbstripout,
    "nbstripout-fast": _install_nbstripout_fast,
    "nb-clean": _install_nb_clean,
}


def _notebook_set(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        shape = _notebooks.MEDIUM if i % MEDIUM_EVERY == MEDIUM_EVERY - 1 else _notebooks.SMALL
        _notebooks.write(folder / f"nb{i:03d}.ipynb", shape, seed=i)


def _time_git_add(base: Path, tool: str, notebooks: Path, count: int) -> float:
    """Seconds of `git add .` of the first `count` notebooks in a fresh repository."""
    repo = base / f"repo-{tool}"
    env = _environ(base / "home")
    subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
    INSTALLERS[tool](repo, env)
    target = repo / "notebooks"
    target.mkdir()
    for path in sorted(notebooks.iterdir())[:count]:
        shutil.copyfile(path, target / path.name)
    _git(repo, env, "status", "--porcelain")  # warm the page cache, outside the timing
    started = time.perf_counter()
    _git(repo, env, "add", ".")
    elapsed = time.perf_counter() - started
    _check_index(repo, env, tool, count)
    shutil.rmtree(repo)
    return elapsed


def _check_index(repo: Path, env: dict[str, str], tool: str, count: int) -> None:
    """Every notebook blob in the index is stripped: the filter really ran, on every file."""
    staged = [
        line.split()[1] for line in _git(repo, env, "ls-files", "-s", "--", "*.ipynb").splitlines()
    ]
    if len(staged) != count:
        raise RuntimeError(f"{tool}: {len(staged)} notebooks staged, expected {count}")
    request = "".join(f"{oid}\n" for oid in staged).encode()
    blobs = _run(["git", "cat-file", "--batch"], repo, env, stdin=request)
    offset = 0
    for _ in staged:
        header_end = blobs.index(b"\n", offset)
        size = int(blobs[offset:header_end].split()[2])
        blob = blobs[header_end + 1 : header_end + 1 + size]
        offset = header_end + 1 + size + 1
        if not _notebooks.is_stripped(blob):
            raise RuntimeError(f"{tool}: a staged notebook still has outputs; is its filter set?")


def git_add(base: Path) -> list[Result]:
    notebooks = base / "set"
    _notebook_set(notebooks, GIT_NOTEBOOKS)
    megabytes = sum(p.stat().st_size for p in notebooks.iterdir()) / 1e6
    # nbstripout once, on its sample; the others GIT_REPEATS times, interleaved.
    sample = min(NBSTRIPOUT_SAMPLE, GIT_NOTEBOOKS)
    print(f"  git add of {sample} notebooks through nbstripout", file=sys.stderr, flush=True)
    seconds = {"nbstripout": _time_git_add(base, "nbstripout", notebooks, sample)}
    seconds["nbstripout"] *= GIT_NOTEBOOKS / sample
    others = [tool for tool in INSTALLERS if tool != "nbstripout"]
    times: dict[str, list[float]] = {tool: [] for tool in others}
    for _ in range(GIT_REPEATS):
        for tool in others:
            times[tool].append(_time_git_add(base, tool, notebooks, GIT_NOTEBOOKS))
    seconds.update((tool, statistics.median(t)) for tool, t in times.items())
    what = (
        f"git add . of {GIT_NOTEBOOKS} notebooks ({megabytes:.0f} MB, 1 in {MEDIUM_EVERY} "
        f"medium), each tool's filter as documented (median of {GIT_REPEATS})"
    )
    scaled = f" (1 run on {sample}, scaled)" if sample < GIT_NOTEBOOKS else " (1 run)"
    peers = {
        "nbstripout": (f"nbstripout --install{scaled}", 1 / 30),
        "nbstripout-fast": ("nbstripout-fast as filter.clean (its README)", 1.0),
        "nb-clean": ("nb-clean add-filter", UNLIMITED),
    }
    results = [
        Result(
            f"{what}, fingerprints off (the peers' work)", seconds["jupyter-repro"],
            seconds[peer], name, "s", limit=limit,
        )
        for peer, (name, limit) in peers.items()
    ]  # fmt: skip
    results.append(
        Result(
            f"{what}, output fingerprints recorded (the default)",
            seconds["jupyter-repro+fingerprints"], seconds["nbstripout-fast"],
            peers["nbstripout-fast"][0], "s", limit=UNLIMITED,
        )
    )  # fmt: skip
    return results


# --- 3. a 50 MB notebook in-process -------------------------------------------------------


def _nbformat_baseline(text: str) -> str:
    """Parse and write back the notebook as nbformat's writer dumps it: the floor for us."""
    nb = json.loads(text)
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)


def _median_pair(ours: Callable[[], object], baseline: Callable[[], object]) -> tuple[float, float]:
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(BIG_REPEATS):
        for action, times in ((ours, mine), (baseline, theirs)):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
    return statistics.median(mine), statistics.median(theirs)


def big_notebook(base: Path) -> list[Result]:
    results: list[Result] = []
    shapes = {
        "mostly outputs": _notebooks.scaled_outputs(BIG_MB),
        "mostly source": _notebooks.scaled_source(BIG_MB),
    }
    for label, shape in shapes.items():
        path = base / f"big-{label.replace(' ', '-')}.ipynb"
        megabytes = _notebooks.write(path, shape) / 1e6
        text = path.read_text(encoding="utf-8")
        if not _notebooks.is_stripped(strip_text(text, StripOptions()).text):
            raise RuntimeError("strip_text left outputs in the big notebook")
        ours, baseline = _median_pair(
            lambda text=text: strip_text(text, StripOptions()),
            lambda text=text: _nbformat_baseline(text),
        )
        results.append(
            Result(
                f"strip_text, {megabytes:.0f} MB notebook, {label} ({shape.cells} cells), "
                f"in-process (median of {BIG_REPEATS})",
                ours, baseline, "json.loads + nbformat-style json.dumps", "s", limit=1.5,
            )
        )  # fmt: skip
    return results


# --- 4. the save hook's share of a save ---------------------------------------------------


def _put(server: BenchServer, path: str, body: bytes) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/contents/{path}",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
    return time.perf_counter() - started


def _saves(servers: Sequence[BenchServer], body: bytes) -> list[float]:
    """Median seconds of SAVES PUTs to each server, alternating between them."""
    times: list[list[float]] = [[] for _ in servers]
    for _ in range(SAVES):
        for server, server_times in zip(servers, times, strict=True):
            server_times.append(_put(server, "x.ipynb", body))
    return [statistics.median(t) for t in times]


def save_hook(base: Path) -> list[Result]:
    results: list[Result] = []
    home = base / "home"
    home.mkdir()
    no_fingerprints = {"ReproApp": {"strip_policy": NO_FINGERPRINTS}}
    with (
        BenchServer(base / "on", home, extension=True, config=no_fingerprints) as with_hook,
        BenchServer(base / "default", home, extension=True) as fingerprinting,
        BenchServer(base / "off", home, extension=False) as without,
    ):
        for label, shape in (
            ("mostly source", _notebooks.scaled_source(SAVE_MB)),
            ("mostly outputs", _notebooks.scaled_outputs(SAVE_MB)),
        ):
            nb = _notebooks.notebook(shape)
            megabytes = len(_notebooks.dumps(nb)) / 1e6
            body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
            for server in (with_hook, fingerprinting, without):  # warm, and check each
                _put(server, "x.ipynb", body)
            for folder in ("on", "default"):
                if not _notebooks.is_stripped((base / folder / "x.ipynb").read_bytes()):
                    raise RuntimeError("the save hook did not strip the notebook")
            if _notebooks.is_stripped((base / "off" / "x.ipynb").read_bytes()):
                raise RuntimeError("the notebook was stripped with the extension disabled")
            ours, default, peer = _saves((with_hook, fingerprinting, without), body)
            share = (ours - peer) / ours
            effect = (
                f"save hook's share {share:.1%}"
                if share >= 0
                else f"no hook cost: {peer / ours:.2f}x faster with it (less to write)"
            )
            results.append(
                Result(
                    f"PUT api/contents of a {megabytes:.0f} MB notebook, {label}, fingerprints "
                    f"off: {effect} (median of {SAVES})",
                    # share = (with - without) / with <= 5%  <=>  with / without <= 1 / 0.95
                    ours * 1000, peer * 1000, "same server without jupyter-repro", "ms",
                    limit=1 / 0.95,
                )
            )  # fmt: skip
            results.append(
                Result(
                    f"PUT api/contents of a {megabytes:.0f} MB notebook, {label}, output "
                    f"fingerprints recorded (the default; median of {SAVES})",
                    default * 1000, peer * 1000, "same server without jupyter-repro", "ms",
                    limit=UNLIMITED,
                )
            )  # fmt: skip
    return results


def hook_share(base: Path) -> list[Result]:
    """The hook's own time, timed around the hook inside FileContentsManager.save.

    The PUT rows above compare whole saves, where stripping also shortens the write. Here the
    hook's time is set against the save of the same notebook without the hook (the save the
    user asked for: the target) and against the save it runs in (shorter, as the stripped
    notebook is smaller to write: reported).
    """
    import copy

    from jupyter_server.services.contents.filemanager import FileContentsManager

    from jupyter_repro.notebooks.savehook import StripOnSave

    def median_save(manager: FileContentsManager, nb: dict) -> float:
        saves: list[float] = []
        for _ in range(SAVES):
            model = {"type": "notebook", "format": "json", "content": copy.deepcopy(nb)}
            start = time.perf_counter()
            manager.save(model, "x.ipynb")
            saves.append(time.perf_counter() - start)
        return statistics.median(saves)

    def hook_time(nb: dict, folder: Path, hook: StripOnSave) -> tuple[float, float]:
        """The hook's median time, and the median save it runs in."""
        folder.mkdir(parents=True)
        hooked = FileContentsManager(root_dir=str(folder))
        hook_times: list[float] = []

        def timed_hook(model, path, contents_manager, **kwargs):
            start = time.perf_counter()
            hook(model, path, contents_manager, **kwargs)
            hook_times.append(time.perf_counter() - start)

        hooked.register_pre_save_hook(timed_hook)
        with_hook = median_save(hooked, nb)
        if not _notebooks.is_stripped((folder / "x.ipynb").read_bytes()):
            raise RuntimeError("the save hook did not strip the notebook (in process)")
        return statistics.median(hook_times), with_hook

    results: list[Result] = []
    for label, shape in (
        ("mostly source", _notebooks.scaled_source(SAVE_MB)),
        ("mostly outputs", _notebooks.scaled_outputs(SAVE_MB)),
    ):
        nb = _notebooks.notebook(shape)
        megabytes = len(_notebooks.dumps(nb)) / 1e6
        folder = base / label.replace(" ", "-")
        (folder / "without").mkdir(parents=True)
        hook, with_hook = hook_time(nb, folder / "with", StripOnSave(NO_FINGERPRINTS))
        default_hook, _ = hook_time(nb, folder / "default", StripOnSave())
        without_hook = median_save(FileContentsManager(root_dir=str(folder / "without")), nb)
        name = f"save hook's own time, {megabytes:.0f} MB notebook, {label} (median of {SAVES})"
        results += [
            Result(
                f"{name}, fingerprints off", hook * 1000, without_hook * 1000,
                "FileContentsManager.save of it without the hook", "ms", limit=0.05,
            ),
            Result(
                f"{name}, fingerprints off", hook * 1000, with_hook * 1000,
                "FileContentsManager.save with the hook (writes less)", "ms", limit=float("inf"),
            ),
            Result(
                f"{name}, output fingerprints recorded (the default)", default_hook * 1000,
                without_hook * 1000, "FileContentsManager.save of it without the hook", "ms",
                limit=float("inf"),
            ),
        ]  # fmt: skip
    return results


def run() -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="repro-bench-strip-") as tmp:
        base = Path(tmp)
        for name, part in (
            ("per-file command", per_file),
            ("git add", git_add),
            ("50 MB notebook", big_notebook),
            ("save hook", save_hook),
            ("save hook share", hook_share),
        ):
            print(f"  strip: {name}", file=sys.stderr, flush=True)
            folder = base / name.replace(" ", "-")
            folder.mkdir()
            results += part(folder)
    return results
