"""Command line polish: closed pipes, tables for people, clear errors, durations, warnings.

Run as real commands where it matters (a real pipe, a real git), in-process otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_repro.cli import format_duration, main
from jupyter_repro.specs.export import host_platform
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.test_git_filter import (
    git,
    git_home,  # noqa: F401  (a fixture)
    repo,  # noqa: F401  (a fixture)
    sample_notebook,
    write_notebook,
)

pytestmark = pytest.mark.timeout(180)

PROGRAM = Path(sys.executable).parent / "jupyter-repro"


def repro(*args: str) -> str:
    """The command line of the installed `jupyter-repro` program with `args`, for bash."""
    return shlex.join([str(PROGRAM), *args])


def fake_environments(installation: CondaInstallation, count: int) -> list[str]:
    """`count` empty conda environments (a `conda-meta/history` each): a long listing."""
    names = [f"analysis-{year}-{i:03d}" for i, year in enumerate(range(2000, 2000 + count))]
    for name in names:
        meta = installation.envs_dir / name / "conda-meta"
        meta.mkdir(parents=True)
        (meta / "history").write_text("")
    return names


def piped(command: str, reader: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `command | reader` in bash; the command's exit status and its stderr."""
    script = f"{command} 2>stderr.txt | {reader} >/dev/null; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(
        ["bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env["HOME"],
    )
    return int(result.stdout.strip()), (Path(env["HOME"]) / "stderr.txt").read_text()


# -- 1. a reader that goes away ------------------------------------------------------------------


def test_envs_json_into_head_ends_quietly(rig_environ, conda_installation):
    fake_environments(conda_installation, 400)  # far more than a pipe holds (64 KiB)

    status, stderr = piped(repro("envs", "--json"), "head -c 10", rig_environ)

    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr
    assert stderr == ""
    assert status in (0, 141)


@pytest.mark.parametrize(
    "arguments",
    [
        ["status"],
        ["status", "--json"],
        ["envs"],
        ["kernels", "list"],
        ["kernels"],
        ["export", "--prefix", "ROOT"],
        ["strip", "--textconv", "NOTEBOOK"],
        ["git", "status"],
    ],
    ids=" ".join,
)
def test_every_printing_command_ends_quietly_when_its_reader_is_gone(
    rig_environ, conda_installation, arguments
):
    home = Path(rig_environ["HOME"])
    write_notebook(home / "nb.ipynb", sample_notebook())
    subprocess.run(["git", "init", "-q", str(home)], check=True, env=rig_environ)
    resolved = [
        str(conda_installation.root_prefix)
        if a == "ROOT"
        else str(home / "nb.ipynb")
        if a == "NOTEBOOK"
        else a
        for a in arguments
    ]

    # `true` exits before the command has started: its first write meets a closed pipe.
    status, stderr = piped(repro(*resolved), "true", rig_environ)

    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr
    assert "Broken pipe" not in stderr
    assert status in (0, 1, 141)  # `git status` exits 1: not installed


def test_a_restore_plan_into_a_closed_pipe_installs_nothing_and_ends_quietly(
    rig_environ, conda_installation, rig_channel, tmp_path
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")

    status, stderr = piped(
        repro("restore", str(spec), "--name", "piped", "--yes"), "true", rig_environ
    )

    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr
    assert status == 141
    assert not (conda_installation.extra_envs_dir / "piped").exists()
    assert not (conda_installation.envs_dir / "piped").exists()


# -- 2. an unknown environment name --------------------------------------------------------------


def test_an_unknown_env_name_suggests_the_closest_names(rig_environ, conda_installation, capsys):
    names = fake_environments(conda_installation, 40)

    assert main(["export", "--env", "analysis-2031-31"]) == 1

    err = capsys.readouterr().err
    assert "no environment named 'analysis-2031-31'" in err
    assert "did you mean 'analysis-2031-031'" in err
    # the closest few, not the first twenty of the listing
    assert sum(name in err for name in names) <= 5
    assert "analysis-2000-000" not in err
    assert "jupyter repro envs" in err


def test_an_unknown_env_name_with_nothing_close_says_where_to_look(
    rig_environ, conda_installation, capsys
):
    fake_environments(conda_installation, 3)

    assert main(["export", "--env", "zzz"]) == 1

    err = capsys.readouterr().err
    assert "no environment named 'zzz'" in err
    assert "did you mean" not in err
    assert re.search(r"`jupyter repro envs` lists the \d+ found", err)


def test_a_part_of_a_name_is_close_too(rig_environ, conda_installation, capsys):
    fake_environments(conda_installation, 3)

    assert main(["export", "--env", "2001"]) == 1

    assert "did you mean 'analysis-2001-001'" in capsys.readouterr().err


# -- 3. -o into a missing folder -----------------------------------------------------------------


def test_output_into_a_missing_folder_names_that_folder(
    rig_environ, conda_installation, tmp_path, capsys
):
    target = tmp_path / "x" / "y" / "environment.yml"

    status = main(["export", "--prefix", str(conda_installation.root_prefix), "-o", str(target)])

    err = capsys.readouterr().err
    assert status == 1
    assert err == (
        f"jupyter repro export: error: cannot write {target}: "
        f"the folder {target.parent} does not exist\n"
    )
    assert ".tmp" not in err


def test_output_onto_a_folder_or_under_a_file_says_so(
    rig_environ, conda_installation, tmp_path, capsys
):
    prefix = str(conda_installation.root_prefix)
    (tmp_path / "file").write_text("")

    assert main(["export", "--prefix", prefix, "-o", str(tmp_path)]) == 1
    assert f"cannot write {tmp_path}: it is a folder" in capsys.readouterr().err
    assert main(["export", "--prefix", prefix, "-o", str(tmp_path / "file" / "env.yml")]) == 1
    assert f"{tmp_path / 'file'} is not a folder" in capsys.readouterr().err


# -- 4. status and envs for people, --json for scripts -------------------------------------------


def test_status_prints_aligned_lines_and_json_for_scripts(capsys):
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()

    labels = [line.split()[0] for line in lines]
    assert labels == ["jupyter-repro", "engine", "platform", "conda", "mamba", "micromamba"]
    value_starts = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    assert len(value_starts) == 1, lines
    assert "rattler" in lines[1]
    assert "embedded" in lines[1]

    assert main(["status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"version", "engine", "clis", "platform"}
    assert document["engine"]["name"] == "rattler"
    assert document["platform"] == host_platform()


def test_status_of_a_cli_engine_says_whether_it_was_found(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["status", "--engine", "mamba"]) == 0
    engine = capsys.readouterr().out.splitlines()[1]
    assert "mamba not found" in engine

    fake = tmp_path / "mamba"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert main(["status", "--engine", "mamba"]) == 0
    assert f"runs {fake}" in capsys.readouterr().out


def test_envs_prints_an_aligned_table_with_a_legend(rig_environ, conda_installation, capsys):
    names = fake_environments(conda_installation, 3)

    assert main(["envs"]) == 0

    out = capsys.readouterr().out
    table, _, legend = out.partition("\n\n")
    rows = table.splitlines()
    assert rows[0].split() == ["NAME", "KIND", "PYTHON", "KERNELS", "PREFIX"]
    prefix_column = rows[0].index("PREFIX")
    for row in rows[1:]:
        assert row[prefix_column - 2 : prefix_column] == "  "
        assert row[prefix_column:].startswith("/")
    base = next(row for row in rows if " base " in row)
    assert base.startswith("B ")
    assert {n for n in names if any(f" {n} " in row for row in rows)} == set(names)
    # a legend for the marks used, and only those
    assert "B a base environment" in legend
    marks = {row[:2].strip() for row in rows[1:]} - {""}
    assert ("* " in legend) == ("*" in "".join(marks))


def test_envs_json_keeps_its_shape(rig_environ, conda_installation, capsys):
    fake_environments(conda_installation, 2)

    assert main(["envs", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["environments"]
    keys = {"name", "prefix", "kind", "python_version", "kernels", "is_base", "is_server_env"}
    assert all(keys <= set(env) for env in document["environments"])


# -- 5. a command group alone --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [(["kernels"], ["list", "sync"]), (["git"], ["install", "uninstall", "status"])],
    ids=" ".join,
)
def test_a_command_group_alone_prints_its_own_help(capsys, arguments, expected):
    assert main(arguments) == 0

    out, err = capsys.readouterr()
    assert out.startswith(f"usage: jupyter repro {arguments[0]} ")
    assert all(word in out for word in expected)
    assert err == ""


# -- 7, 8, 9. restore: aligned plans, a missing conda, durations ---------------------------------


def write_spec(folder: Path, channel: RigChannel, *dependencies: str) -> Path:
    path = folder / "environment.yml"
    lines = [
        "channels:",
        f"  - {channel.url}",
        "dependencies:",
        *(f"  - {d}" for d in dependencies),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_restore_plan_aligns_its_package_columns(
    rig_environ, conda_installation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "python", "ipykernel", "pkgc")

    assert main(["restore", str(spec), "--name", "aligned", "--dry-run"]) == 0

    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("packages ("))
    count = int(out[start].split("(")[1].split(")")[0])
    rows = out[start + 1 : start + 1 + count]
    assert len(rows) == count >= 3
    # every column starts where it starts in the other rows
    starts = {tuple(m.start() for m in re.finditer(r"(?<=  )\S", row[2:])) for row in rows}
    assert len(starts) == 1, rows
    assert len(next(iter(starts))) == 3  # version, build, channel after the name


def test_a_cli_engine_that_is_missing_fails_before_the_plan(
    rig_environ, conda_installation, rig_channel, tmp_path, capsys, monkeypatch
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")
    monkeypatch.setenv("PATH", str(tmp_path / "no-conda-here"))
    monkeypatch.delenv("CONDA_EXE", raising=False)

    status = main(["restore", str(spec), "--name", "never", "--engine", "conda"])

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""  # no plan: nothing was solved, nothing asked
    assert "--yes" not in err  # not the confirmation's complaint
    assert "conda was not found" in err
    assert "PATH" in err
    assert "rattler" in err
    assert not (conda_installation.extra_envs_dir / "never").exists()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0004, "0 ms"),
        (0.85, "850 ms"),
        (0.9996, "1.0 s"),
        (4.2, "4.2 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min"),
        (63.2, "1 min 3 s"),
        (120, "2 min"),
        (3725, "1 h 2 min"),
        (7200, "2 h"),
    ],
)
def test_durations_print_for_people(seconds, shown):
    assert format_duration(seconds) == shown


def test_the_restore_summary_gives_its_duration_for_people(
    rig_environ, conda_installation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")

    assert main(["restore", str(spec), "--name", "timed", "--yes"]) == 0

    summary = capsys.readouterr().err.splitlines()[-1]
    assert re.search(r" in (\d+ ms|\d+\.\d s|\d+ min( \d+ s)?)$", summary), summary


# -- 10. strip: not a notebook -------------------------------------------------------------------


def strip(*args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROGRAM), "strip", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
    )


def test_strip_says_a_json_file_is_not_a_notebook(tmp_path):
    (tmp_path / "data.ipynb").write_text('{"a": 1}\n')
    (tmp_path / "half.ipynb").write_text('{"cells": []}\n')

    result = strip("data.ipynb", "half.ipynb", cwd=tmp_path)
    from_stdin = strip(stdin=b'{"a": 1}\n', cwd=tmp_path)

    assert result.returncode == 1
    err = result.stderr.decode()
    assert "jupyter repro strip: data.ipynb: not a notebook" in err
    assert (
        "jupyter repro strip: half.ipynb: not a notebook: it has no nbformat and no metadata" in err
    )
    assert "KeyError" not in err
    assert from_stdin.returncode == 1
    assert from_stdin.stderr.decode().startswith("jupyter repro strip: stdin: not a notebook")
    assert (tmp_path / "data.ipynb").read_text() == '{"a": 1}\n'


def test_a_contradicting_notebook_from_stdin_fails_like_a_file(tmp_path):
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "c1",
        "metadata": {"keep_output": False, "tags": ["keep_output"]},
        "outputs": [],
        "source": [],
    }
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "conflict.ipynb").write_text(json.dumps(nb))

    from_file = strip("conflict.ipynb", cwd=tmp_path)
    from_stdin = strip(stdin=json.dumps(nb).encode(), cwd=tmp_path)

    assert from_file.returncode == from_stdin.returncode == 1
    file_message = from_file.stderr.decode().removeprefix("jupyter repro strip: conflict.ipynb: ")
    assert from_stdin.stderr.decode() == f"jupyter repro strip: stdin: {file_message}"
    assert from_stdin.stdout == b""


def test_strip_of_json_that_is_not_valid_from_stdin_has_the_prefix_and_status_1(tmp_path):
    result = strip(stdin=b"{ nope", cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.decode().startswith("jupyter repro strip: stdin: not valid notebook JSON")


# -- 11. the filter warns once per git command ---------------------------------------------------


def warnings_of(result: subprocess.CompletedProcess[str], name: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if "warning" in line and name in line]


def run_git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=60)


def test_a_broken_notebook_warns_once_per_git_command(repo: Path):  # noqa: F811
    (repo / "broken.ipynb").write_text('{"cells": [')
    (repo / "data.ipynb").write_text('{"a": 1}\n')

    added = run_git("add", "broken.ipynb", "data.ipynb")
    assert added.returncode == 0, added.stderr
    assert len(warnings_of(added, "broken.ipynb")) == 1, added.stderr
    assert len(warnings_of(added, "data.ipynb")) == 1, added.stderr
    git("commit", "-q", "-m", "broken")

    (repo / "broken.ipynb").write_text('{"cells": [1')
    (repo / "data.ipynb").write_text('{"a": 22}\n')
    # git cleans the working tree's file, then runs textconv on both sides of each diff
    diffed = run_git("diff")
    assert diffed.returncode == 0, diffed.stderr
    assert '+{"cells": [1' in diffed.stdout
    assert len(warnings_of(diffed, "broken.ipynb")) == 1, diffed.stderr
    assert len(warnings_of(diffed, "data.ipynb")) == 1, diffed.stderr
    assert "git-blob" not in diffed.stderr  # no warning about git's temporary copies

    committed = run_git("commit", "-q", "-a", "-m", "still broken")
    assert committed.returncode == 0, committed.stderr
    assert len(warnings_of(committed, "broken.ipynb")) <= 1, committed.stderr
    shown = run_git("log", "-p", "-2")
    assert shown.returncode == 0
    assert shown.stderr == ""


def test_one_filter_process_warns_once_per_path_whatever_git_sends():
    import io

    from jupyter_repro.git import filter as git_filter
    from tests.test_git_filter import raw_request

    handshake = (
        git_filter.text_packets([b"git-filter-client", b"version=2"])
        + b"0000"
        + git_filter.text_packets([b"capability=clean", b"capability=smudge"])
        + b"0000"
    )
    requests = b"".join(
        raw_request(b"clean", b"broken.ipynb", content)
        for content in (b'{"cells": [', b'{"cells": [', b'{"cells": [1')
    )
    stderr = io.StringIO()

    status = git_filter.run_process_filter(io.BytesIO(handshake + requests), io.BytesIO(), stderr)

    assert status == 0
    assert len(stderr.getvalue().splitlines()) == 1, stderr.getvalue()


def test_textconv_run_by_hand_still_warns(tmp_path, monkeypatch):
    monkeypatch.delenv("GIT_EXEC_PATH", raising=False)
    (tmp_path / "broken.ipynb").write_bytes(b'{"cells": [\n')

    result = subprocess.run(
        [sys.executable, "-m", "jupyter_repro.git", "textconv", "broken.ipynb"],
        capture_output=True,
        cwd=tmp_path,
    )
    quiet = subprocess.run(
        [sys.executable, "-m", "jupyter_repro.git", "textconv", "broken.ipynb"],
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, "GIT_EXEC_PATH": "/usr/lib/git-core"},
    )

    assert result.stdout == quiet.stdout == b'{"cells": [\n'
    assert b"broken.ipynb left as is" in result.stderr
    assert quiet.stderr == b""
