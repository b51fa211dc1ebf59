"""Installing, reporting and removing the git filter, with real git configuration files."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_repro.git import command
from jupyter_repro.git.install import (
    ATTRIBUTE_LINES,
    install,
    is_installed,
    status,
    uninstall,
)
from tests.test_git_filter import (
    assert_stripped,
    git,
    git_bytes,
    git_home,  # noqa: F401  (a fixture)
    init_repository,
    sample_notebook,
    write_notebook,
)

PROGRAM = f"'{sys.executable}' -m jupyter_repro.git"


def config_of(location: str, cwd: Path | None = None) -> dict[str, str]:
    listed = git("config", f"--{location}", "--list", cwd=cwd).stdout.splitlines()
    return dict(line.split("=", 1) for line in listed if "jupyter-repro" in line)


@pytest.fixture
def bare_repo(git_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """A repository without the filter; the current directory is its root."""
    path = init_repository(tmp_path / "plain")
    monkeypatch.chdir(path)
    return path


def test_install_configures_the_filter_and_the_diff_driver(bare_repo: Path):
    assert install("local", None, None) == 0

    assert config_of("local") == {
        "filter.jupyter-repro.process": f"{PROGRAM} process",
        "filter.jupyter-repro.clean": f"{PROGRAM} clean %f",
        "filter.jupyter-repro.smudge": "cat",
        "filter.jupyter-repro.required": "true",
        "diff.jupyter-repro.textconv": f"{PROGRAM} textconv",
        "diff.jupyter-repro.cachetextconv": "true",
    }
    attributes = (bare_repo / ".git" / "info" / "attributes").read_text()
    assert attributes.splitlines()[-2:] == list(ATTRIBUTE_LINES)
    checked = git("check-attr", "filter", "diff", "--", "a/b.ipynb", "n.zpln").stdout
    assert checked.splitlines() == [
        "a/b.ipynb: filter: jupyter-repro",
        "a/b.ipynb: diff: jupyter-repro",
        "n.zpln: filter: jupyter-repro",
        "n.zpln: diff: unspecified",
    ]


def test_install_twice_changes_nothing(bare_repo: Path):
    attributes = bare_repo / ".git" / "info" / "attributes"
    assert install("local", None, sys.executable) == 0
    config = (bare_repo / ".git" / "config").read_text()
    lines = attributes.read_text()

    assert install("local", None, sys.executable) == 0

    assert (bare_repo / ".git" / "config").read_text() == config
    assert attributes.read_text() == lines


def test_uninstall_restores_the_configuration_and_the_users_attributes(bare_repo: Path):
    config_file = bare_repo / ".git" / "config"
    attributes = bare_repo / ".gitattributes"
    # a user's own lines, the last one without a newline
    attributes.write_text("*.png binary\n*.csv diff=csv")
    git("config", "diff.csv.textconv", "cat")
    config_before = config_file.read_text()

    assert install("local", ".gitattributes", sys.executable) == 0
    assert attributes.read_text() == "*.png binary\n*.csv diff=csv\n" + "".join(
        line + "\n" for line in ATTRIBUTE_LINES
    )
    assert uninstall("local", ".gitattributes") == 0

    assert config_file.read_text() == config_before
    assert attributes.read_text() == "*.png binary\n*.csv diff=csv\n"
    assert uninstall("local", ".gitattributes") == 0, "uninstalling twice is fine"


def test_status_says_where_and_how_the_filter_is_installed(
    bare_repo: Path, capsys: pytest.CaptureFixture[str]
):
    assert status("local", verbose=True) == 1
    assert "not installed in repository" in capsys.readouterr().out
    assert not is_installed("local")

    install("local", None, sys.executable)
    assert status("local", verbose=False) == 0
    assert capsys.readouterr().out == ""
    assert status("local", verbose=True) == 0
    report = capsys.readouterr().out
    assert f"installed in repository '{bare_repo}'" in report
    assert f"process = {PROGRAM} process" in report
    assert f"textconv = {PROGRAM} textconv" in report
    assert "*.ipynb filter=jupyter-repro diff=jupyter-repro" in report
    assert is_installed("local")

    uninstall("local")
    assert status("local") == 1
    assert not is_installed("local")


def test_attribute_lines_in_gitattributes_count_for_a_local_status(bare_repo: Path):
    install("local", ".gitattributes", sys.executable)

    assert status("local") == 0
    assert not (bare_repo / ".git" / "info" / "attributes").exists()


def test_outside_a_repository_every_action_fails_with_nbstripouts_message(
    git_home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))

    assert install("local", None, None) == 1
    assert "Installation failed: not a git repository!" in capsys.readouterr().err
    assert uninstall("local", None) == 1
    assert "Uninstall failed: not a git repository!" in capsys.readouterr().err
    assert status("local", verbose=True) == 1
    assert config_of("global") == {}


def test_without_git_on_path_install_fails_with_a_message(
    bare_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("PATH", str(bare_repo / "no-such-dir"))

    assert install("local", None, None) == 1
    assert "git is not on path" in capsys.readouterr().err
    assert status("local") == 1
    assert "git is not on path" in capsys.readouterr().err


def test_a_global_installation_strips_in_every_repository(
    git_home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.chdir(tmp_path)
    assert install("global", None, sys.executable) == 0
    assert (git_home / ".config" / "git" / "attributes").read_text().splitlines() == list(
        ATTRIBUTE_LINES
    )
    assert status("global") == 0

    path = init_repository(tmp_path / "fresh")
    write_notebook(path / "nb.ipynb", sample_notebook())
    git("add", "nb.ipynb", cwd=path)
    assert_stripped(git_bytes("cat-file", "blob", ":nb.ipynb", cwd=path))
    assert config_of("local", cwd=path) == {}

    assert uninstall("global") == 0
    assert config_of("global") == {}
    assert (git_home / ".config" / "git" / "attributes").read_text() == ""
    assert status("global") == 1


def test_a_global_installation_uses_the_configured_attributes_file(
    git_home: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.chdir(git_home)
    git("config", "--global", "core.attributesFile", "~/my-attributes")

    assert install("global", None, sys.executable) == 0

    assert (git_home / "my-attributes").read_text().splitlines() == list(ATTRIBUTE_LINES)
    assert not (git_home / ".config" / "git" / "attributes").exists()


def test_a_system_installation_writes_the_system_configuration(
    git_home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.chdir(tmp_path)
    attributes = tmp_path / "system-attributes"

    assert install("system", str(attributes), sys.executable) == 0

    system = (tmp_path / "gitconfig-system").read_text()
    assert f"process = {PROGRAM} process" in system
    assert attributes.read_text().splitlines() == list(ATTRIBUTE_LINES)
    assert config_of("global") == {}
    assert uninstall("system", str(attributes)) == 0
    assert (tmp_path / "gitconfig-system").read_text() == ""


def test_a_python_path_with_spaces_and_quotes_works_through_sh(bare_repo: Path, tmp_path: Path):
    # git runs filter commands through sh; a wrapper in an awkward folder stands for a venv
    # installed under such a path.
    folder = tmp_path / 'my "env\'s" $HOME `python`'
    folder.mkdir()
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o755)

    assert install("local", None, str(wrapper)) == 0
    write_notebook(bare_repo / "nb.ipynb", sample_notebook())
    write_notebook(bare_repo / "sub dir" / "it's.ipynb", sample_notebook())
    git("add", ".")

    assert_stripped(git_bytes("cat-file", "blob", ":nb.ipynb"))
    assert_stripped(git_bytes("cat-file", "blob", ":sub dir/it's.ipynb"))
    one_shot = git("config", "filter.jupyter-repro.clean").stdout.strip()
    clean = subprocess.run(
        ["sh", "-c", one_shot.replace("%f", shlex.quote("sub dir/it's.ipynb"))],
        input=(bare_repo / "sub dir" / "it's.ipynb").read_bytes(),
        capture_output=True,
        check=True,
    )
    assert clean.stdout == git_bytes("cat-file", "blob", ":sub dir/it's.ipynb")


def test_a_linked_worktree_shares_the_installation(
    bare_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_notebook(bare_repo / "nb.ipynb", sample_notebook())
    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "unfiltered")
    worktree = tmp_path / "worktree"
    git("worktree", "add", "-q", str(worktree))
    monkeypatch.chdir(worktree)

    assert install("local", None, sys.executable) == 0

    assert "jupyter-repro" in (bare_repo / ".git" / "info" / "attributes").read_text()
    write_notebook(worktree / "new.ipynb", sample_notebook("w"))
    git("add", "new.ipynb")
    assert_stripped(git_bytes("cat-file", "blob", ":new.ipynb"))
    assert status("local") == 0
    monkeypatch.chdir(bare_repo)
    assert status("local") == 0


# -- the command line ---------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jupyter repro")
    command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_command_line_installs_reports_and_uninstalls(
    bare_repo: Path, capsys: pytest.CaptureFixture[str]
):
    args = parse(["git", "install", "--attributes", ".gitattributes", "--python", "/opt/py"])
    assert (args.location, args.attributes, args.python) == ("local", ".gitattributes", "/opt/py")
    assert args.run(args) == 0
    process = git("config", "filter.jupyter-repro.process").stdout
    assert process == "'/opt/py' -m jupyter_repro.git process\n"

    args = parse(["git", "status"])
    assert args.run(args) == 0
    assert "installed in repository" in capsys.readouterr().out

    args = parse(["git", "uninstall", "--attributes", ".gitattributes"])
    assert args.run(args) == 0
    assert (bare_repo / ".gitattributes").read_text() == ""
    args = parse(["git", "status"])
    assert args.run(args) == 1


def test_the_command_line_chooses_the_location(bare_repo: Path):
    assert parse(["git", "install", "--global"]).location == "global"
    assert parse(["git", "uninstall", "--system"]).location == "system"
    assert parse(["git", "status"]).location == "local"
    with pytest.raises(SystemExit):
        parse(["git", "install", "--global", "--system"])


def test_the_module_rejects_unknown_subcommands(git_home: Path):  # noqa: F811
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_repro.git", "smudge"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m jupyter_repro.git")


# -- what install says, and installing over nbstripout ------------------------------------------

NBSTRIPOUT_LINES = ["*.ipynb filter=nbstripout", "*.zpln filter=nbstripout", "*.ipynb diff=ipynb"]


def test_install_says_what_it_configured(bare_repo: Path, capsys: pytest.CaptureFixture[str]):
    args = parse(["git", "install", "--python", sys.executable])
    assert args.run(args) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"jupyter-repro git filter installed in repository '{bare_repo}'\n")
    assert f"git config (--local): {bare_repo / '.git' / 'config'}\n" in out
    assert "filter.jupyter-repro: process, clean" in out
    assert "diff.jupyter-repro: textconv" in out
    assert f"attributes: {bare_repo / '.git' / 'info' / 'attributes'}\n" in out
    assert all(f"    {line}\n" in out for line in ATTRIBUTE_LINES)
    assert "nbstripout" not in out

    assert args.run(args) == 0
    assert "is already installed (nothing changed)" in capsys.readouterr().out


def test_the_nbstripout_drop_in_installs_as_quietly_as_nbstripout(
    bare_repo: Path, capsys: pytest.CaptureFixture[str]
):
    assert install("local", None, sys.executable) == 0

    assert capsys.readouterr() == ("", "")


def nbstripout_install(*args: str) -> None:
    # nbstripout is a test dependency: its absence is an error, not a skip.
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--install", *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "nbstripout" in git("config", "filter.nbstripout.clean").stdout


def assert_our_filter_runs_on_add(repo: Path) -> None:
    """`git add` runs our filter (and no nbstripout); the blob is stripped."""
    write_notebook(repo / "nb.ipynb", sample_notebook())
    added = subprocess.run(
        ["git", "add", "nb.ipynb"],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TRACE": "1"},
    )
    assert added.returncode == 0, added.stderr
    assert "jupyter_repro.git process" in added.stderr
    assert "nbstripout" not in added.stderr
    assert_stripped(git_bytes("cat-file", "blob", ":nb.ipynb"))
    checked = git("check-attr", "filter", "diff", "--", "nb.ipynb", "n.zpln").stdout
    assert checked.splitlines() == [
        "nb.ipynb: filter: jupyter-repro",
        "nb.ipynb: diff: jupyter-repro",
        "n.zpln: filter: jupyter-repro",
        "n.zpln: diff: unspecified",
    ]


@pytest.mark.parametrize(
    ("theirs", "ours", "file"),
    [
        ([], [], ".git/info/attributes"),
        (["--attributes", ".gitattributes"], ["--attributes", ".gitattributes"], ".gitattributes"),
        ([], ["--attributes", ".gitattributes"], ".gitattributes"),
    ],
    ids=["info-attributes", "gitattributes", "info-attributes-then-gitattributes"],
)
def test_install_replaces_an_nbstripout_set_up(
    bare_repo: Path, capsys: pytest.CaptureFixture[str], theirs, ours, file
):
    (bare_repo / ".git" / "info").mkdir(exist_ok=True)
    (bare_repo / ".git" / "info" / "attributes").write_text("*.csv diff=csv\n")
    git("config", "filter.nbstripout.extrakeys", "metadata.foo")
    nbstripout_install(*theirs)
    nbstripout_file = bare_repo / (theirs[1] if theirs else ".git/info/attributes")
    assert nbstripout_file.read_text().splitlines()[-3:] == NBSTRIPOUT_LINES

    args = parse(["git", "install", "--python", sys.executable, *ours])
    assert args.run(args) == 0

    out = capsys.readouterr().out
    assert "replaced nbstripout:" in out
    assert f'removed [diff "ipynb"] and [filter "nbstripout"] from {bare_repo}/.git/config' in out
    assert f"replaced its 3 attribute lines in {nbstripout_file}" in out
    assert "filter.nbstripout.extrakeys (metadata.foo) is not read" in out
    # nbstripout's configuration is gone, ours is there, the user's own line stays
    left = subprocess.run(
        ["git", "config", "--get-regexp", "nbstripout|ipynb"], capture_output=True
    )
    assert (left.returncode, left.stdout) == (1, b"")
    assert config_of("local")["filter.jupyter-repro.process"] == f"{PROGRAM} process"
    attributes = (bare_repo / file).read_text().splitlines()
    assert [line for line in attributes if "jupyter-repro" in line] == list(ATTRIBUTE_LINES)
    assert "*.csv diff=csv" in (bare_repo / ".git" / "info" / "attributes").read_text()
    for path in (bare_repo / ".gitattributes", bare_repo / ".git" / "info" / "attributes"):
        assert "nbstripout" not in (path.read_text() if path.exists() else "")
        assert "diff=ipynb" not in (path.read_text() if path.exists() else "")
    assert_our_filter_runs_on_add(bare_repo)
    assert status("local", verbose=True) == 0
    report = capsys.readouterr().out
    assert "is installed in repository" in report
    assert "nbstripout" not in report
    assert "warning" not in report


def test_a_shared_gitattributes_naming_nbstripout_is_left_alone_and_named(
    bare_repo: Path, capsys: pytest.CaptureFixture[str]
):
    nbstripout_install("--attributes", ".gitattributes")
    shared = (bare_repo / ".gitattributes").read_text()

    args = parse(["git", "install", "--python", sys.executable])
    assert args.run(args) == 0

    out = capsys.readouterr().out
    assert (bare_repo / ".gitattributes").read_text() == shared  # a project file: not edited
    assert f"note: {bare_repo / '.gitattributes'} (a project file, left as is)" in out
    assert "--attributes .gitattributes" in out
    assert f'removed [diff "ipynb"] and [filter "nbstripout"] from {bare_repo}/.git/config' in out
    assert "replaced its" not in out
    # .git/info/attributes wins over .gitattributes: ours run
    assert_our_filter_runs_on_add(bare_repo)
    assert status("local", verbose=True) == 0
    assert "still names nbstripout" in capsys.readouterr().out


def test_a_users_own_attributes_on_an_nbstripout_line_are_kept(bare_repo: Path):
    attributes = bare_repo / ".gitattributes"
    attributes.write_text("*.png binary\n*.ipynb filter=nbstripout diff=ipynb eol=lf\n*.txt text\n")
    git("config", "filter.nbstripout.clean", "nbstripout")
    git("config", "diff.ipynb.textconv", "nbstripout -t")

    assert install("local", ".gitattributes", sys.executable) == 0

    assert attributes.read_text().splitlines() == [
        "*.png binary",
        *ATTRIBUTE_LINES,
        "*.ipynb eol=lf",
        "*.txt text",
    ]


def test_another_tools_ipynb_diff_driver_is_not_nbstripouts(bare_repo: Path):
    attributes = bare_repo / ".gitattributes"
    attributes.write_text("*.ipynb diff=ipynb\n")
    git("config", "diff.ipynb.textconv", "nbdime diff")

    assert install("local", ".gitattributes", sys.executable) == 0

    assert attributes.read_text().splitlines() == ["*.ipynb diff=ipynb", *ATTRIBUTE_LINES]
    assert git("config", "diff.ipynb.textconv").stdout == "nbdime diff\n"


def test_a_global_nbstripout_is_replaced_globally(
    git_home: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    path = init_repository(tmp_path / "fresh")
    monkeypatch.chdir(path)
    nbstripout_install("--global")
    global_attributes = git_home / ".config" / "git" / "attributes"
    assert "filter=nbstripout" in global_attributes.read_text()

    assert install("global", None, sys.executable, verbose=True) == 0

    assert global_attributes.read_text().splitlines() == list(ATTRIBUTE_LINES)
    assert "nbstripout" not in (git_home / ".gitconfig").read_text()
    assert_our_filter_runs_on_add(path)
