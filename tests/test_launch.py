"""The activating kernel launcher: real launcher processes exec'ing real programs in rig envs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_repro.kernels.launch import (
    activated_environ,
    launcher_argv,
    run_activate_scripts,
)
from tests.rig.channel import ACTIVATED_VALUE, ACTIVATED_VAR, ENVVARS, ENVVARS_FILE
from tests.rig.installation import CondaInstallation

MODULE = "jupyter_repro.kernels.launch"
# What the "kernel" reports: where it runs, its PID and its environment.
PROBE = (
    "import json, os, sys; "
    "print(json.dumps({'prefix': sys.prefix, 'pid': os.getpid(), 'env': dict(os.environ)}))"
)


def launch(
    prefix: Path | str, kernel_argv: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the launcher as the kernel spec manager will, and wait for the kernel to end."""
    return subprocess.run(
        launcher_argv(str(prefix), kernel_argv), env=env, capture_output=True, text=True, timeout=60
    )


def probe(prefix: Path, env: dict[str, str]) -> tuple[dict, str]:
    """Launch ``python -c PROBE`` in ``prefix``: the kernel's report and the launcher's stderr."""
    done = launch(prefix, ["python", "-c", PROBE], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def path_dirs(env: dict[str, str]) -> list[str]:
    return env["PATH"].split(os.pathsep)


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------------------------
# launches in rig environments
# --------------------------------------------------------------------------------------------


def test_launcher_argv_runs_this_module_with_the_prefix_before_the_separator() -> None:
    argv = launcher_argv("/envs/x", ["python", "-m", "ipykernel_launcher", "-f", "c.json"])
    assert argv == [
        sys.executable,
        "-m",
        MODULE,
        "/envs/x",
        "--",
        "python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "c.json",
    ]
    assert launcher_argv("/p", ["k"], python="/py")[:3] == ["/py", "-m", MODULE]


def test_kernel_runs_activated_in_a_named_env(rig_installation: CondaInstallation) -> None:
    prefix = rig_installation.envs["py"]
    report, stderr = probe(prefix, rig_installation.environ())
    env = report["env"]
    # `python` resolved through the new PATH: the env's interpreter, not the launcher's.
    assert Path(report["prefix"]).resolve() == prefix.resolve()
    assert path_dirs(env)[0] == str(prefix / "bin")
    assert env["CONDA_PREFIX"] == str(prefix)
    assert env["CONDA_DEFAULT_ENV"] == "py"
    assert env["CONDA_SHLVL"] == "1"
    assert env["CONDA_PROMPT_MODIFIER"] == "(py) "
    assert not [k for k in env if k.startswith("CONDA_PREFIX_")]
    # env_vars.d of rig-envvars, activate.d of rig-activate.
    for key, value in ENVVARS.items():
        assert env[key] == value
    assert env[ACTIVATED_VAR] == ACTIVATED_VALUE
    assert stderr == ""


def test_previously_active_env_is_replaced(rig_installation: CondaInstallation) -> None:
    root = rig_installation.root_prefix
    prefix = rig_installation.envs["old"]  # in the condarc envs dir, not an `envs` dir
    base = rig_installation.environ()
    base.update(
        CONDA_PREFIX=str(root),
        CONDA_SHLVL="1",
        CONDA_DEFAULT_ENV="base",
        PATH=os.pathsep.join([str(root / "bin"), base["PATH"]]),
    )
    report, _ = probe(prefix, base)
    env = report["env"]
    assert Path(report["prefix"]).resolve() == prefix.resolve()
    assert str(root / "bin") not in path_dirs(env)
    assert path_dirs(env)[0] == str(prefix / "bin")
    assert env["CONDA_PREFIX"] == str(prefix)
    assert env["CONDA_PREFIX_1"] == str(root)
    assert env["CONDA_SHLVL"] == "2"
    # conda names an environment outside an `envs` folder by its path.
    assert env["CONDA_DEFAULT_ENV"] == str(prefix)
    assert env["CONDA_PROMPT_MODIFIER"] == f"({prefix}) "


def test_root_prefix_is_base(rig_installation: CondaInstallation) -> None:
    report, _ = probe(rig_installation.root_prefix, rig_installation.environ())
    assert Path(report["prefix"]).resolve() == rig_installation.root_prefix.resolve()
    assert report["env"]["CONDA_DEFAULT_ENV"] == "base"
    assert report["env"]["CONDA_PROMPT_MODIFIER"] == "(base) "


def test_state_vars_override_env_vars_d_and_bad_files_are_skipped(
    conda_installation: CondaInstallation,
) -> None:
    prefix = conda_installation.create_env("vars", ["python", "rig-envvars"])
    vars_dir = (prefix / ENVVARS_FILE).parent
    # New files beside the packaged one (which is a hard link into the package cache).
    (vars_dir / "zz-later.json").write_text(json.dumps({"REPRO_RIG_OTHER": "from-later-file"}))
    (vars_dir / "broken.json").write_text("{not json")
    (prefix / "conda-meta" / "state").write_text(
        json.dumps(
            {
                "env_vars": {
                    "REPRO_RIG_ENV_VAR": "from-state",
                    "REPRO_STATE_ONLY": "s",
                    "REPRO_UNSET_ME": "***unset***",
                }
            }
        )
    )
    base = conda_installation.environ()
    base["REPRO_RIG_OTHER"] = "from-the-machine"
    report, stderr = probe(prefix, base)
    env = report["env"]
    assert env["REPRO_RIG_ENV_VAR"] == "from-state"
    assert env["REPRO_STATE_ONLY"] == "s"
    assert env["REPRO_RIG_OTHER"] == "from-later-file"
    # conda keeps the value it overwrote for `conda deactivate`.
    assert env["__CONDA_SHLVL_0_REPRO_RIG_OTHER"] == "from-the-machine"
    assert "REPRO_UNSET_ME" not in env
    assert "broken.json" in stderr
    assert Path(report["prefix"]).resolve() == prefix.resolve()


def test_unreadable_state_file_is_skipped(conda_installation: CondaInstallation) -> None:
    prefix = conda_installation.create_env("badstate", ["python", "rig-envvars"])
    (prefix / "conda-meta" / "state").write_text('["not", "an", "object"]')
    report, stderr = probe(prefix, conda_installation.environ())
    assert "conda-meta/state" in stderr
    assert report["env"]["REPRO_RIG_ENV_VAR"] == ENVVARS["REPRO_RIG_ENV_VAR"]


@pytest.mark.parametrize(("env_name", "has_activate_d"), [("demo", False), ("py", True)])
def test_bash_runs_only_when_activate_d_has_scripts(
    rig_installation: CondaInstallation, tmp_path: Path, env_name: str, has_activate_d: bool
) -> None:
    marker = tmp_path / "bash-ran"
    spy = tmp_path / "spy"
    write_executable(spy / "bash", f'#!/bin/sh\necho ran >> "{marker}"\nexec /bin/bash "$@"\n')
    base = rig_installation.environ()
    base["PATH"] = str(spy)  # no real bash reachable: only the spy
    prefix = rig_installation.envs[env_name]
    report, stderr = probe(prefix, base)
    assert Path(report["prefix"]).resolve() == prefix.resolve()
    assert marker.exists() is has_activate_d
    assert (report["env"].get(ACTIVATED_VAR) == ACTIVATED_VALUE) is has_activate_d
    assert stderr == ""


def test_missing_bash_skips_activate_d_with_a_warning(
    rig_installation: CondaInstallation, tmp_path: Path
) -> None:
    base = rig_installation.environ()
    base["PATH"] = str(tmp_path / "empty")
    prefix = rig_installation.envs["py"]
    report, stderr = probe(prefix, base)
    assert "bash not found" in stderr
    assert ACTIVATED_VAR not in report["env"]
    # Everything that needs no shell still applies.
    assert report["env"]["REPRO_RIG_ENV_VAR"] == ENVVARS["REPRO_RIG_ENV_VAR"]
    assert report["env"]["CONDA_PREFIX"] == str(prefix)


def test_activate_script_that_exits_falls_back_to_the_environment_before_scripts(
    conda_installation: CondaInstallation,
) -> None:
    prefix = conda_installation.create_env("failing", ["python", "rig-activate"])
    (prefix / "etc" / "conda" / "activate.d" / "zz-fail.sh").write_text(
        "export REPRO_PARTIAL=1\necho 'about to fail' >&2\nexit 3\n"
    )
    report, stderr = probe(prefix, conda_installation.environ())
    assert "about to fail" in stderr
    assert "activate.d scripts" in stderr
    assert "exit status 3" in stderr
    env = report["env"]
    # Neither the packaged script's (run first) nor the failing script's exports survive.
    assert ACTIVATED_VAR not in env
    assert "REPRO_PARTIAL" not in env
    assert env["CONDA_PREFIX"] == str(prefix)
    assert Path(report["prefix"]).resolve() == prefix.resolve()


def test_exec_replaces_the_launcher_and_sigint_reaches_the_kernel(
    rig_installation: CondaInstallation,
) -> None:
    code = (
        "import os, time\n"
        "try:\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen(
        launcher_argv(str(rig_installation.envs["py"]), ["python", "-c", code]),
        env=rig_installation.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "interrupted", err
    assert proc.returncode == 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_kernel_gets_default_sigpipe_not_pythons_ignored_one(
    rig_installation: CondaInstallation,
) -> None:
    done = launch(
        rig_installation.envs["demo"], ["cat", "/proc/self/status"], rig_installation.environ()
    )
    assert done.returncode == 0, done.stderr
    ignored = next(
        int(line.split(":")[1], 16)
        for line in done.stdout.splitlines()
        if line.startswith("SigIgn:")
    )
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_kernel_not_found_exits_127_naming_prefix_and_command(
    rig_installation: CondaInstallation,
) -> None:
    prefix = rig_installation.envs["demo"]
    done = launch(prefix, ["no-such-kernel-binary", "-f", "x"], rig_installation.environ())
    assert done.returncode == 127
    assert "no-such-kernel-binary" in done.stderr
    assert str(prefix) in done.stderr


def test_launch_path_imports_nothing_heavy(rig_installation: CondaInstallation) -> None:
    """No activate.d, no env vars: only os and sys; with them, json and subprocess on demand."""

    def imported(prefix: Path) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", MODULE, str(prefix), "--", "true"],
            env=rig_installation.environ(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        rows = [
            line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")
        ]
        return {row[2].strip() for row in rows if len(row) == 3}

    plain = imported(rig_installation.envs["demo"])
    heavy = {"json", "subprocess", "shutil", "rattler", "jupyter_client", "traitlets", "tornado"}
    assert not plain & heavy
    assert {m for m in plain if m.startswith("jupyter_repro")} <= {
        "jupyter_repro",
        "jupyter_repro._version",
        "jupyter_repro.kernels",
    }
    # The env with activate.d and env_vars.d pays for what it uses, and only that.
    activated = imported(rig_installation.envs["py"])
    assert {"json", "subprocess", "shutil"} <= activated
    assert not activated & {"rattler", "jupyter_client", "traitlets", "tornado"}


# --------------------------------------------------------------------------------------------
# usage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing '--'"),
        (["{env}"], "missing '--'"),
        (["{env}", "--"], "no kernel command"),
        (["--", "python"], "exactly one environment prefix"),
        (["{env}", "{env}", "--", "python"], "exactly one environment prefix"),
        (["{missing}", "--", "python"], "is not a directory"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    argv = [a.format(env=env_dir, missing=tmp_path / "missing") for a in args]
    done = subprocess.run(
        [sys.executable, "-m", MODULE, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "usage:" in done.stderr
    assert done.stdout == ""


def test_help_prints_usage_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", MODULE, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith("usage:")


# --------------------------------------------------------------------------------------------
# the pure part: activated_environ
# --------------------------------------------------------------------------------------------


def make_prefix(path: Path, *dirs: str) -> Path:
    (path / "conda-meta").mkdir(parents=True)
    for d in dirs:
        (path / d).mkdir(parents=True)
    return path


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("root/envs/foo", "foo"),
        ("pixi/.pixi/envs/default", "default"),
        ("with-envs-dir", "base"),
        ("with-condabin", "base"),
        ("project/.env", None),  # None: the prefix path itself
    ],
)
def test_conda_default_env_names(tmp_path: Path, layout: str, expected: str | None) -> None:
    extra = {"with-envs-dir": ("envs",), "with-condabin": ("condabin",)}.get(layout, ())
    prefix = make_prefix(tmp_path / layout, *extra)
    env = activated_environ(str(prefix), {"PATH": "/usr/bin"})
    assert env["CONDA_DEFAULT_ENV"] == (expected or str(prefix))
    assert env["CONDA_PROMPT_MODIFIER"] == f"({expected or prefix}) "


def test_condabin_goes_on_path_only_when_present(tmp_path: Path) -> None:
    root = make_prefix(tmp_path / "root", "condabin")
    env = activated_environ(str(root), {"PATH": "/usr/bin"})
    assert path_dirs(env) == [str(root / "bin"), str(root / "condabin"), "/usr/bin"]
    other = make_prefix(tmp_path / "other")
    assert path_dirs(activated_environ(str(other), {"PATH": "/usr/bin"})) == [
        str(other / "bin"),
        "/usr/bin",
    ]


def test_path_never_has_an_entry_twice(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "envs" / "a")
    bin_dir = str(prefix / "bin")
    start = os.pathsep.join(["/usr/local/bin", bin_dir + "/", "/usr/bin", "/usr/local/bin"])
    env = activated_environ(str(prefix), {"PATH": start})
    assert path_dirs(env) == [bin_dir, "/usr/local/bin", "/usr/bin"]


def test_same_env_again_is_a_reactivation(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "envs" / "a")
    start = {
        "PATH": os.pathsep.join(["/usr/bin", str(prefix / "bin")]),
        "CONDA_PREFIX": str(prefix),
        "CONDA_SHLVL": "2",
        "CONDA_PREFIX_1": "/opt/conda",
        "CONDA_DEFAULT_ENV": "a",
    }
    env = activated_environ(str(prefix), start)
    assert env["CONDA_SHLVL"] == "2"
    assert "CONDA_PREFIX_2" not in env
    assert path_dirs(env) == [str(prefix / "bin"), "/usr/bin"]


@pytest.mark.parametrize(("shlvl", "expected"), [(None, "1"), ("", "1"), ("x", "1"), ("3", "4")])
def test_shlvl_counts_up_from_anything(tmp_path: Path, shlvl: str | None, expected: str) -> None:
    prefix = make_prefix(tmp_path / "envs" / "a")
    start = {"PATH": "/usr/bin"} | ({} if shlvl is None else {"CONDA_SHLVL": shlvl})
    assert activated_environ(str(prefix), start)["CONDA_SHLVL"] == expected


def test_env_var_values_follow_conda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = make_prefix(tmp_path / "envs" / "a", "etc/conda/env_vars.d")
    (prefix / "etc/conda/env_vars.d/a.json").write_text(
        json.dumps({"NUM": 42, "GONE": None, "LIST": [1], "BAD=NAME": "x", "OK": "yes"})
    )
    (prefix / "etc/conda/env_vars.d/not-json.txt").write_text("ignored: not a .json file")
    env = activated_environ(str(prefix), {"PATH": "/usr/bin", "GONE": "was-set"})
    assert env["NUM"] == "42"
    assert "GONE" not in env
    assert "LIST" not in env
    assert "BAD=NAME" not in env
    assert env["OK"] == "yes"
    err = capsys.readouterr().err
    assert "'LIST'" in err
    assert "'BAD=NAME'" in err
    assert "not-json.txt" not in err


def test_a_venv_gets_venv_activation(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    old = tmp_path / "old-venv"
    start = {
        "PATH": os.pathsep.join([str(old / "bin"), "/usr/bin"]),
        "VIRTUAL_ENV": str(old),
        "PYTHONHOME": "/somewhere",
    }
    env = activated_environ(str(venv), start)
    assert env["VIRTUAL_ENV"] == str(venv)
    assert path_dirs(env) == [str(venv / "bin"), "/usr/bin"]
    assert "PYTHONHOME" not in env
    assert "CONDA_PREFIX" not in env


# --------------------------------------------------------------------------------------------
# run_activate_scripts with real bash
# --------------------------------------------------------------------------------------------


def activate_d(prefix: Path, **scripts: str) -> Path:
    folder = prefix / "etc" / "conda" / "activate.d"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (folder / name.replace("__", " ")).write_text(text)
    return folder


@pytest.fixture
def base_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}


def test_scripts_see_the_activated_env_and_their_stdout_is_not_parsed(
    tmp_path: Path, base_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "env"
    activate_d(
        prefix,
        **{
            "a.sh": 'echo "hello from a"\nexport REPRO_SEEN="$CONDA_PREFIX"\n',
            "b.sh": 'export REPRO_B="after $REPRO_SEEN"\n',
            "c.txt": "export REPRO_NOT_A_SCRIPT=1\n",
        },
    )
    env = run_activate_scripts(str(prefix), base_env | {"CONDA_PREFIX": str(prefix), "SHLVL": "7"})
    assert env["REPRO_SEEN"] == str(prefix)
    assert env["REPRO_B"] == f"after {prefix}"
    assert "REPRO_NOT_A_SCRIPT" not in env
    # Variables bash keeps for itself are as before, not as bash left them.
    assert env["SHLVL"] == "7"
    assert "_" not in env
    assert "PWD" not in env
    assert "hello from a" in capfd.readouterr().err


def test_script_paths_are_arguments_not_shell_text(
    tmp_path: Path, base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    prefix = tmp_path / "env"
    activate_d(prefix, **{"$(touch INJECTED);__x.sh": "export REPRO_ODD_NAME=1\n"})
    env = run_activate_scripts(str(prefix), base_env)
    assert env["REPRO_ODD_NAME"] == "1"
    assert not (tmp_path / "INJECTED").exists()


def test_script_returning_nonzero_warns_and_keeps_its_effects(
    tmp_path: Path, base_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "env"
    activate_d(prefix, **{"a.sh": "export REPRO_A=1\nfalse\n", "b.sh": "export REPRO_B=1\n"})
    env = run_activate_scripts(str(prefix), base_env)
    assert env["REPRO_A"] == "1"
    assert env["REPRO_B"] == "1"
    assert "a.sh returned status 1" in capfd.readouterr().err


def test_slow_scripts_are_cut_off(
    tmp_path: Path, base_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "env"
    activate_d(prefix, **{"a.sh": "export REPRO_A=1\n", "slow.sh": "exec sleep 20\n"})
    started = time.monotonic()
    env = run_activate_scripts(str(prefix), base_env, timeout=0.5)
    assert time.monotonic() - started < 10
    assert env == base_env
    assert "took over 0.5 s" in capfd.readouterr().err


def test_no_scripts_returns_a_copy_without_running_anything(
    tmp_path: Path, base_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "env"
    activate_d(prefix)  # an empty activate.d
    no_bash = base_env | {"PATH": str(tmp_path / "empty")}
    env = run_activate_scripts(str(prefix), no_bash)
    assert env == no_bash
    assert env is not no_bash
    assert capfd.readouterr().err == ""  # did not even look for bash
