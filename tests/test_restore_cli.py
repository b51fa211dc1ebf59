"""`jupyter repro restore`, run in-process against the rig's installation and channel."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from jupyter_repro.cli import TextProgress, main
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation

pytestmark = pytest.mark.timeout(180)


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


def tree(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def test_restore_creates_the_named_environment_and_prints_a_summary(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "python", "pkgc")

    status = main(["restore", str(spec), "--name", "fromcli", "--yes"])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert "pkgc" in out  # the plan lists what is installed
    summary = [line for line in err.splitlines() if line.startswith("restored ")]
    assert summary, err
    prefix = Path(summary[-1].split(" into ", 1)[1].split(" (", 1)[0])
    assert prefix.name == "fromcli"
    assert "pkgc" in conda_installation.installed(prefix)
    assert "[" in err  # a progress bar was drawn


def test_dry_run_prints_the_plan_and_touches_nothing(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")
    before = tree(conda_installation.home)

    status = main(["restore", str(spec), "--name", "planned", "--dry-run"])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert "pkgc" in out
    assert "planned" in out
    assert tree(conda_installation.home) == before


def test_unsatisfiable_spec_fails_naming_the_package_and_leaves_no_folder(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "pkgc >=99")
    before = tree(conda_installation.home)

    status = main(["restore", str(spec), "--name", "never", "--yes"])

    _, err = capsys.readouterr()
    assert status != 0
    assert "jupyter repro restore: error:" in err
    assert "pkgc" in err
    assert not any(p.name == "never" for p in tree(conda_installation.home) - before)


def test_without_a_terminal_and_without_yes_nothing_is_installed(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")
    before = tree(conda_installation.home)

    status = main(["restore", str(spec), "--name", "unasked"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "--yes" in err
    assert tree(conda_installation.home) == before


def test_a_missing_source_is_a_clear_error(rig_environ, tmp_path, capsys):
    status = main(["restore", str(tmp_path / "nope.yml"), "--yes"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "nope.yml" in err


def test_name_and_prefix_cannot_be_combined(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["restore", "environment.yml", "--name", "a", "--prefix", str(tmp_path / "a")])

    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_progress_without_a_terminal_writes_a_line_only_when_the_bar_grows():
    stream = io.StringIO()
    progress = TextProgress(stream)

    for done in range(0, 101):
        progress.phase("link", done, 100)
    progress.phase("register", 1, 1)

    lines = stream.getvalue().splitlines()
    assert lines[0] == "link     [....................] 0/100"
    assert lines[-2] == "link     [####################] 100/100"
    assert lines[-1] == "register [####################] 1/1"
    assert len(lines) == 22  # 21 widths of the link bar, one register line
    assert "\r" not in stream.getvalue()


def test_name_rescues_a_spec_whose_own_name_is_unusable(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    spec = write_spec(tmp_path, rig_channel, "pkgc")
    spec.write_text("name: my project env\n" + spec.read_text())

    refused = main(["restore", str(spec), "--yes"])
    refused_err = capsys.readouterr().err
    status = main(["restore", str(spec), "--name", "project", "--yes"])

    err = capsys.readouterr().err
    assert refused != 0
    assert "'my project env'" in refused_err
    assert "--name" in refused_err
    assert status == 0, err
    prefix = conda_installation.extra_envs_dir / "project"
    assert "pkgc" in conda_installation.installed(prefix)


def test_a_taken_name_is_refused_naming_a_free_one_and_the_dry_run_shows_the_conflict(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    existing = conda_installation.create_env("busy", ["pkga"])
    spec = write_spec(tmp_path, rig_channel, "pkgc")
    spec.write_text("name: busy\n" + spec.read_text())

    planned = main(["restore", str(spec), "--dry-run"])
    out, _ = capsys.readouterr()
    refused = main(["restore", str(spec), "--yes"])
    _, err = capsys.readouterr()

    assert planned == 0
    assert f"conflict: the environment at {existing}" in out
    assert "--name busy-2" in out
    assert refused != 0
    assert "'busy-2'" in err
    assert "--name" in err
    assert not (conda_installation.extra_envs_dir / "busy").exists()


@pytest.mark.parametrize("what", ["folder", "fifo"])
def test_a_source_that_is_no_regular_file_is_said_so(tmp_path, capsys, what):
    import os

    from jupyter_repro.cli import main

    path = tmp_path / "x.capsule.tar.zst"
    if what == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)

    status = main(["restore", str(path), "--yes"])

    assert status == 1
    err = capsys.readouterr().err
    assert ("is a folder" if what == "folder" else "not a regular file") in err
    assert "Traceback" not in err


def test_a_notebooks_dir_below_a_file_is_refused_before_anything_is_restored(tmp_path, capsys):
    from jupyter_repro.cli import main

    (tmp_path / "afile").write_text("")
    spec = tmp_path / "environment.yml"
    spec.write_text("name: never\ndependencies: [python]\n")

    status = main(
        ["restore", str(spec), "--prefix", str(tmp_path / "env"), "--yes", "--notebooks-dir",
         str(tmp_path / "afile" / "sub")]
    )  # fmt: skip

    assert status == 1
    assert "afile is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "env").exists()
