"""`jupyter repro verify` on real kernels of rig-built conda environments: a notebook run again
reproduces cell by cell (against its outputs or its fingerprints), a changed package shows in
the cell that prints it, tolerance, sanitizers, nbval's tags, errors and timeouts give their
verdicts, and `--restore` leaves no temporary environment behind, even when SIGTERM-ed.

Kernels are few (each start costs about a second): the reference notebook is executed once per
module by nbclient itself, every other kernel is one verification.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from jupyter_repro.cli import main, report_paths
from jupyter_repro.kernels.manager import CondaKernelSpecManager
from jupyter_repro.notebooks.lock import with_lock
from jupyter_repro.notebooks.nbjson import dumps_json
from jupyter_repro.notebooks.policy import PolicyError
from jupyter_repro.notebooks.strip import StripOptions, strip_text
from jupyter_repro.specs.export import host_platform
from jupyter_repro.specs.locking import LockOptions, LockResult, lock_environment
from jupyter_repro.verify.compare import Tolerance
from jupyter_repro.verify.policy import (
    DEFAULT_VERIFY_POLICY,
    load_verify_policy,
    parse_verify_settings,
)
from jupyter_repro.verify.service import (
    OWNER_FILE,
    TEMP_PREFIX,
    VerifyOptions,
    VerifyService,
    reference_of,
)
from tests.rig import run_sync
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation

pytestmark = pytest.mark.timeout(120)

ONE, TWO = "vone", "vtwo"
KERNEL_ONE, KERNEL_TWO = f"conda-env-{ONE}-py", f"conda-env-{TWO}-py"


# --------------------------------------------------------------------------------------------
# the rig: two kernel-capable environments that differ only in pkgb's version


@dataclass
class Rig:
    inst: CondaInstallation
    one: Path
    """pkgb 1.0 (its share/rig/pkgb.txt says `pkgb 1.0`)."""
    two: Path
    """pkgb 2.0."""
    tmpdir: Path
    """The temp dir of verifications (where --restore makes its folder)."""

    def environ(self) -> dict[str, str]:
        return {**self.inst.environ(), "TMPDIR": str(self.tmpdir)}


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, rig_channel: RigChannel, rig_package_cache: Path
) -> Rig:
    inst = CondaInstallation.create(
        tmp_path_factory.mktemp("verify-home"), rig_channel, rig_package_cache
    )
    one = inst.create_env(ONE, ["python", "ipykernel", "pkgb=1.0", "rig-activate"])
    two = inst.create_env(TWO, ["python", "ipykernel", "pkgb=2.0", "rig-activate"])
    return Rig(inst, one, two, tmp_path_factory.mktemp("verify-tmp"))


@contextlib.contextmanager
def confined_to(rig: Rig) -> Iterator[dict[str, str]]:
    """This process sees only the rig's HOME (its environments, kernels, condarc, package
    cache) and the rig's temp dir."""
    env = rig.environ()
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key not in env:
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(tempfile, "tempdir", str(rig.tmpdir))
        yield env


@pytest.fixture
def confined(rig: Rig) -> Iterator[dict[str, str]]:
    with confined_to(rig) as env:
        yield env


# --------------------------------------------------------------------------------------------
# notebooks


def code(source: str, *tags: str, outputs: list[dict[str, Any]] | None = None, count: Any = 1):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    if outputs is not None:
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cell.execution_count = count
    return cell


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(text: str, count: int = 1) -> dict[str, Any]:
    return {
        "output_type": "execute_result",
        "data": {"text/plain": text},
        "metadata": {},
        "execution_count": count,
    }


def new_notebook(cells: list[Any], kernel: str) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = cells
    return nb


def write(nb: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


PKGB_CELL = (
    'import os, sys\nprint(open(os.path.join(sys.prefix, "share", "rig", "pkgb.txt")).read())'
)


def deterministic_cells() -> list[Any]:
    """What a notebook run twice in one environment shows the same way each time."""
    return [
        code(PKGB_CELL),
        code('print("activated:", os.environ.get("REPRO_RIG_ACTIVATED"))'),
        code("total = sum(i * i for i in range(10))"),
        code("total"),
        code('{"a": [1, 2.5], "b": "text"}'),
        nbformat.v4.new_markdown_cell("# not code"),
        code('from IPython.display import HTML, display\ndisplay(HTML("<b>bold</b>"))'),
        code('print("beside the notebook:", os.path.exists("data.txt"))'),
    ]


def execute_with_nbclient(nb: Any, folder: Path) -> Any:
    """`nb` executed by nbclient on its own kernel (our kernel spec manager), in `folder`."""
    node = copy.deepcopy(nb)
    km = KernelManager(
        kernel_name=nb.metadata.kernelspec.name, kernel_spec_manager=CondaKernelSpecManager()
    )
    try:
        NotebookClient(node, km=km, resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return node


@dataclass
class Reference:
    executed: Path
    """The deterministic notebook, executed and saved, in a folder with its data.txt."""
    stripped: Path
    """The same, stripped with fingerprints, in the same folder."""
    code_cells: int


@pytest.fixture(scope="module")
def reference(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("reference")
    (folder / "data.txt").write_text("data\n")
    nb = new_notebook(deterministic_cells(), KERNEL_ONE)
    with confined_to(rig):
        executed = execute_with_nbclient(nb, folder)
    path = write(executed, folder / "analysis.ipynb")
    stripped = strip_text(path.read_text(), StripOptions(fingerprint=True)).text
    stripped_path = folder / "stripped.ipynb"
    stripped_path.write_text(stripped, encoding="utf-8")
    count = sum(1 for c in nb.cells if c.cell_type == "code")
    return Reference(path, stripped_path, count)


def state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def by_index(report: Any) -> dict[int, Any]:
    return {cell.index: cell for cell in report.cells}


class Recorder:
    """A VerifyProgress that keeps every call."""

    def __init__(self) -> None:
        self.cells: list[tuple[int, int, str | None, str | None]] = []
        self.lines: list[str] = []

    def cell(self, index: int, total: int, cell_id: str | None, status: str | None) -> None:
        self.cells.append((index, total, cell_id, status))

    def log(self, line: str) -> None:
        self.lines.append(line)


def verify(notebook: Path, **options: Any) -> tuple[Any, Recorder]:
    progress = Recorder()
    service = VerifyService(kernel_spec_manager=CondaKernelSpecManager())
    report = run_sync(service.verify(notebook, VerifyOptions(**options), progress))
    return report, progress


def verify_dirs(tmpdir: Path) -> list[Path]:
    return sorted(p for p in tmpdir.iterdir() if p.name.startswith(TEMP_PREFIX))


# --------------------------------------------------------------------------------------------
# 1. a notebook that reproduces


def test_a_deterministic_notebook_reproduces_and_is_never_modified(
    rig: Rig, reference: Reference, confined: dict[str, str], tmp_path: Path, capsys
) -> None:
    before = state(reference.executed)
    report_file = tmp_path / "report.json"
    status = main(["verify", str(reference.executed), "--report", str(report_file)])
    out = capsys.readouterr().out
    n = reference.code_cells
    assert status == 0, out
    assert f"Reproduces: {n} of {n} cells match" in out.splitlines()
    nb = json.loads(reference.executed.read_text())
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert f"cell {index:>3}  {cell['id']:<14} match" in out
    document = json.loads(report_file.read_text())
    assert document["summary"] == {
        "match": n,
        "differs": 0,
        "error": 0,
        "no_reference": 0,
        "skipped": 0,
    }
    assert document["environment"] == {
        "kernel": KERNEL_ONE,
        "prefix": str(rig.one),
        "lock_digest": None,
        "platform": host_platform(),
    }
    assert [c["index"] for c in document["cells"]] == [0, 1, 2, 3, 4, 6, 7]
    assert state(reference.executed) == before


def test_a_stripped_notebook_verifies_against_its_fingerprints(
    reference: Reference, confined: dict[str, str]
) -> None:
    nb = json.loads(reference.stripped.read_text())
    fingerprints = nb["metadata"]["jupyter_repro"]["fingerprints"]
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    before = state(reference.stripped)
    report, progress = verify(reference.stripped)
    cells = by_index(report)
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        # A cell that printed nothing left an empty fingerprint: it must print nothing.
        assert cell["id"] in fingerprints
        assert cells[index].status == "match", (index, cells[index])
    assert fingerprints[nb["cells"][2]["id"]] == []
    assert report.summary["match"] == reference.code_cells
    assert report.ok
    # Progress: each executed cell starts (no status), then gets its verdict.
    assert progress.cells[:2] == [
        (0, reference.code_cells, nb["cells"][0]["id"], None),
        (0, reference.code_cells, nb["cells"][0]["id"], "match"),
    ]
    assert state(reference.stripped) == before


# --------------------------------------------------------------------------------------------
# 2. a changed package


def test_a_changed_package_version_makes_its_cell_differ(
    reference: Reference, confined: dict[str, str], tmp_path: Path, capsys
) -> None:
    before = state(reference.executed)
    report_file = tmp_path / "report.md"
    status = main(
        ["verify", str(reference.executed), "--kernel", KERNEL_TWO, "--report", str(report_file)]
    )
    out = capsys.readouterr().out
    assert status == 1
    n = reference.code_cells
    assert f"Does not reproduce: {n - 1} of {n} cells match (1 differ)" in out.splitlines()
    cell_id = json.loads(reference.executed.read_text())["cells"][0]["id"]
    assert f"cell 0 ({cell_id}) differs:" in out
    details = out.split(f"cell 0 ({cell_id}) differs:", 1)[1]
    assert "1.0" in details
    assert "2.0" in details
    markdown = report_file.read_text()
    assert f"Cell 0 (`{cell_id}`): differs" in markdown
    assert "1.0" in markdown
    assert "2.0" in markdown
    assert state(reference.executed) == before


def test_a_changed_package_differs_from_the_fingerprints_too(
    reference: Reference, confined: dict[str, str]
) -> None:
    report, _ = verify(reference.stripped, kernel=KERNEL_TWO)
    cells = by_index(report)
    assert cells[0].status == "differs"
    # Small outputs keep their text in the fingerprint: the diff shows both values.
    assert "1.0" in cells[0].diff
    assert "2.0" in cells[0].diff
    assert {c.status for i, c in cells.items() if i != 0} <= {"match", "no_reference"}
    assert report.environment["kernel"] == KERNEL_TWO
    assert not report.ok


# --------------------------------------------------------------------------------------------
# 3. tolerance, sanitizers, tags, errors, timeouts, the policy


VALUES = [0.1, 0.2, 0.3]


def test_tolerance_sanitizers_tags_errors_and_timeouts_give_their_verdicts(
    confined: dict[str, str], tmp_path: Path
) -> None:
    forward, backward = sum(VALUES), sum(reversed(VALUES))
    assert repr(forward) != repr(backward)  # the same sum, added in another order
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.jupyter_repro.verify]\nsanitizers = ['run-[0-9a-f]{8}']\ntimeout = 1\n"
    )
    cells = {
        "sum_order": code(f"print(sum({VALUES!r}))", outputs=[stdout(f"{backward!r}\n")]),
        "real_change": code("print(0.1 * 3)", outputs=[stdout("0.4\n")]),
        "address": code(
            "print(repr(object()))", outputs=[stdout("<object object at 0x7f00deadbeef>\n")]
        ),
        "policy_pattern": code(
            'import uuid\nprint("run-" + uuid.uuid4().hex[:8])', outputs=[stdout("run-0123abcd\n")]
        ),
        "cell_rtol": code("print(1000.4)", "repro:rtol=1e-3", outputs=[stdout("1000.0\n")]),
        "skip": code('flag = "ran"', "nbval-skip", outputs=[]),
        "not_run": code('print("flag" in globals())', outputs=[stdout("False\n")]),
        "ignored": code(
            "import random\nprint(random.random())",
            "nbval-ignore-output",
            outputs=[stdout("0.123\n")],
        ),
        "expected_error": code(
            'raise ValueError("expected")',
            "nbval-raises-exception",
            outputs=[
                {
                    "output_type": "error",
                    "ename": "ValueError",
                    "evalue": "expected",
                    "traceback": ["..."],
                }
            ],
        ),
        "raises": code("def f(x):\n    return 1 / x\nf(0)", outputs=[]),
        "timeout": code("import time\ntime.sleep(30)", outputs=[]),
        "after_timeout": code('print("still running")', outputs=[stdout("still running\n")]),
        "never_run": code("x = 1"),
    }
    for name, cell in cells.items():
        cell.id = name.replace("_", "-")
    path = write(new_notebook(list(cells.values()), KERNEL_ONE), project / "checks.ipynb")
    before = state(path)

    report, progress = verify(path)

    verdicts = {cell.id: cell for cell in report.cells}
    assert {name: verdicts[cell.id].status for name, cell in cells.items()} == {
        "sum_order": "match",
        "real_change": "differs",
        "address": "match",
        "policy_pattern": "match",
        "cell_rtol": "match",
        "skip": "skipped",
        "not_run": "match",
        "ignored": "match",
        "expected_error": "match",
        "raises": "error",
        "timeout": "error",
        "after_timeout": "match",
        "never_run": "no_reference",
    }
    change = verdicts["real-change"].diff
    assert "0.4" in change
    assert "0.30000000000000004" in change
    error = verdicts["raises"].error
    assert error.splitlines()[0] == "ZeroDivisionError: division by zero"
    assert "return 1 / x" in error
    timeout = verdicts["timeout"]
    assert "timed out after 1 s" in timeout.error
    assert 1 <= timeout.duration < 10
    assert verdicts["skip"].duration == 0
    assert report.summary == {
        "match": 8,
        "differs": 1,
        "error": 2,
        "no_reference": 1,
        "skipped": 1,
    }
    assert report.headline.startswith("Does not reproduce: 8 of 11 cells match")
    # A skipped cell gets its verdict without ever starting.
    assert (5, len(cells), "skip", None) not in progress.cells
    assert (5, len(cells), "skip", "skipped") in progress.cells
    assert state(path) == before


def test_the_timeout_option_overrides_the_policy_and_a_stuck_kernel_stops_the_run(
    confined: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jupyter_repro.verify.execute.RECOVERY_SECONDS", 1.0)
    # SIGINT ignored: the interrupt cannot end the cell, so the kernel is stopped and the
    # cells after it are not run.
    cells = [
        code('print("first")', outputs=[stdout("first\n")]),
        code(
            "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
            outputs=[],
        ),
        code('print("never")', outputs=[stdout("never\n")]),
    ]
    (tmp_path / "pyproject.toml").write_text("[tool.jupyter_repro.verify]\ntimeout = 100\n")
    path = write(new_notebook(cells, KERNEL_ONE), tmp_path / "stuck.ipynb")
    started = time.monotonic()
    report, _ = verify(path, timeout=0.5)
    elapsed = time.monotonic() - started
    statuses = [c.status for c in report.cells]
    assert statuses == ["match", "error", "skipped"]
    assert "timed out after 0.5 s" in report.cells[1].error
    assert "did not answer" in report.cells[1].error
    assert "not run" in report.cells[2].error
    assert elapsed < 10


# --------------------------------------------------------------------------------------------
# 4. --restore


def lock_of(prefix: Path) -> LockResult:
    return run_sync(lock_environment(prefix, LockOptions(platforms=(host_platform(),))))


def locked_notebook(rig: Rig, folder: Path, cells: list[Any], execute: bool = True) -> Path:
    """A notebook of `cells` on `vone`, executed there (or not), with vone's lock embedded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.txt").write_text("data\n")
    nb = new_notebook(cells, KERNEL_ONE)
    if execute:
        nb = execute_with_nbclient(nb, folder)
    document = with_lock(json.loads(nbformat.writes(nb)), lock_of(rig.one), rig.one)
    path = folder / "locked.ipynb"
    path.write_text(dumps_json(document), encoding="utf-8")
    return path


def test_restore_runs_in_a_temporary_environment_and_removes_it(
    rig: Rig, confined: dict[str, str], tmp_path: Path, capsys
) -> None:
    home = Path(confined["HOME"])
    registry = home / ".conda" / "environments.txt"
    # A folder a killed verification left: its owner is gone, so this run removes it.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    leftover = rig.tmpdir / f"{TEMP_PREFIX}killed"
    (leftover / "env" / "conda-meta").mkdir(parents=True)
    (leftover / OWNER_FILE).write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    )
    with registry.open("a") as stream:
        stream.write(f"{leftover / 'env'}\n")

    path = locked_notebook(rig, tmp_path / "nb", deterministic_cells())
    before = state(path)
    report_file = tmp_path / "report.json"
    status = main(["verify", str(path), "--restore", "--report", str(report_file)])
    out = capsys.readouterr().out
    assert status == 0, out
    n = len([c for c in deterministic_cells() if c.cell_type == "code"])
    assert f"Reproduces: {n} of {n} cells match" in out.splitlines()
    document = json.loads(report_file.read_text())
    environment = document["environment"]
    prefix = Path(environment["prefix"])
    assert prefix.parent.parent == rig.tmpdir
    assert prefix.parent.name.startswith(TEMP_PREFIX)
    assert environment["lock_digest"] == lock_of(rig.one).lock.digest(host_platform())
    assert environment["platform"] == host_platform()
    assert environment["restored_from"] == str(path)
    assert environment["kernel"] == "python3"
    # Nothing left: neither this run's folder nor the dead one's, nor their registry lines.
    assert verify_dirs(rig.tmpdir) == []
    assert str(rig.tmpdir) not in registry.read_text()
    assert state(path) == before


def _processes_in(prefix: Path) -> list[int]:
    """Processes activated in `prefix` (their CONDA_PREFIX): the kernel of a restored env."""
    wanted = f"CONDA_PREFIX={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_sigterm_during_a_restore_verification_leaves_no_temporary_environment(
    rig: Rig, tmp_path: Path
) -> None:
    with confined_to(rig):
        path = locked_notebook(
            rig,
            tmp_path / "nb",
            [code('print("started")'), code("import time\ntime.sleep(60)")],
            execute=False,
        )
    before = state(path)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_repro.cli", "verify", str(path), "--restore"],
        env=rig.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        # The first cell has its verdict: the environment is restored, the kernel runs the
        # second cell.
        for line in process.stdout:
            seen.append(line)
            if line.strip().startswith("cell   0"):
                break
        folders = verify_dirs(rig.tmpdir)
        assert len(folders) == 1, seen
        assert (folders[0] / "env" / "conda-meta").is_dir()
        kernels = _processes_in(folders[0] / "env")
        assert kernels, seen
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err
    assert verify_dirs(rig.tmpdir) == []
    assert _processes_in(folders[0] / "env") == []
    assert state(path) == before


# --------------------------------------------------------------------------------------------
# 5. without kernels: the command line, the policy, references


def test_usage_errors_exit_2_before_anything_runs(tmp_path: Path, capsys) -> None:
    path = write(new_notebook([code("1")], "python3"), tmp_path / "a.ipynb")
    assert main(["verify", str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook" in capsys.readouterr().err
    assert main(["verify", str(path), "--report", str(tmp_path / "r.txt")]) == 2
    assert ".json, .html, .md" in capsys.readouterr().err
    assert main(["verify", str(path), "--timeout", "0"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["verify", str(path), "--kernel", "python3", "--restore"])
    assert exited.value.code == 2
    assert not (tmp_path / "r.txt").exists()


def test_an_unknown_kernel_fails_with_a_message(
    confined: dict[str, str], tmp_path: Path, capsys
) -> None:
    path = write(new_notebook([code("1")], "no-such-kernel"), tmp_path / "a.ipynb")
    assert main(["verify", str(path)]) == 1
    assert "no kernel named 'no-such-kernel'" in capsys.readouterr().err


def test_several_notebooks_get_a_report_each() -> None:
    notebooks = [Path("a/x.ipynb"), Path("b/y.ipynb"), Path("c/x.ipynb")]
    assert report_paths(Path("out/r.html"), notebooks) == [
        Path("out/r-x.html"),
        Path("out/r-y.html"),
        Path("out/r-x-2.html"),
    ]
    assert report_paths(Path("r.json"), notebooks[:1]) == [Path("r.json")]


def test_the_verify_policy_is_read_from_the_nearest_pyproject(tmp_path: Path) -> None:
    nested = tmp_path / "project" / "notebooks"
    nested.mkdir(parents=True)
    notebook = nested / "a.ipynb"
    assert load_verify_policy(notebook) == DEFAULT_VERIFY_POLICY
    pyproject = tmp_path / "project" / "pyproject.toml"
    pyproject.write_text(
        "[tool.jupyter_repro.verify]\nrtol = 1e-6\natol = 0\nsanitizers = ['id=\\d+']\n"
        "timeout = 30\n"
    )
    policy = load_verify_policy(notebook)
    assert policy.tolerance == Tolerance(rtol=1e-6, atol=0)
    assert policy.sanitizers == ("id=\\d+",)
    assert policy.timeout == 30
    assert policy.source == str(pyproject)
    # Only [tool.jupyter_repro.strip]: the verify defaults.
    pyproject.write_text("[tool.jupyter_repro.strip]\nkeep_count = true\n")
    assert load_verify_policy(notebook) == DEFAULT_VERIFY_POLICY


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rtol": -1}, "rtol: expected a finite number >= 0"),
        ({"atol": "small"}, "atol: expected a number"),
        ({"timeout": 0}, "timeout: expected a number greater than 0"),
        ({"sanitizers": "x"}, "sanitizers: expected a list"),
        ({"sanitizers": ["("]}, "is not a regular expression"),
        ({"rtl": 1}, "unknown keys 'rtl'"),
    ],
)
def test_an_invalid_verify_policy_names_the_file_and_key(table: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=r"pyproject\.toml") as raised:
        parse_verify_settings(table, "/p/pyproject.toml")
    assert message in str(raised.value)


def test_a_cells_reference_is_its_outputs_else_its_fingerprints_else_nothing_if_run() -> None:
    prints = {"c": [{"output_type": "stream", "name": "stdout", "sha256": "0"}]}
    out = [stdout("x\n")]
    assert reference_of({"id": "c", "outputs": out, "execution_count": 1}, prints) == (
        "outputs",
        out,
    )
    assert reference_of({"id": "c", "outputs": []}, prints) == ("fingerprints", prints["c"])
    assert reference_of({"id": "d", "outputs": [], "execution_count": 3}, prints) == (
        "outputs",
        [],
    )
    assert reference_of({"id": "d", "outputs": [], "execution_count": None}, prints) == (
        "none",
        None,
    )
