"""Tiny kernel launcher: apply conda activation of an environment, then exec the kernel.

Usage: ``python -m jupyter_repro.kernels.launch <prefix> -- <kernel argv...>``

The launcher computes what ``conda activate <prefix>`` would do (without conda): PATH,
``CONDA_PREFIX``, ``CONDA_DEFAULT_ENV``, ``CONDA_SHLVL``, ``CONDA_PROMPT_MODIFIER``,
``CONDA_PREFIX_<n>``, the variables of ``etc/conda/env_vars.d/*.json`` and
``conda-meta/state``, and, only when the environment has any, the ``etc/conda/activate.d/*.sh``
scripts sourced by bash. A plain venv (``pyvenv.cfg`` and no ``conda-meta/``) gets venv
activation instead. Then it replaces itself with the kernel (``os.execvpe``), so the PID the
server holds is the kernel's and interrupt/restart signals reach it directly.

It runs on every kernel launch: it imports only ``os`` and ``sys`` up front; ``json`` only
when there is an environment-variables file to read, ``subprocess``/``shutil`` only when there
are activate.d scripts. Never import the rest of jupyter_repro (or rattler) here.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ACTIVATE_TIMEOUT",
    "activate_scripts",
    "activated_environ",
    "conda_env_name",
    "environment_env_vars",
    "launcher_argv",
    "main",
    "run_activate_scripts",
]

MODULE = "jupyter_repro.kernels.launch"
PROG = "jupyter-repro launch"
USAGE = f"usage: python -m {MODULE} <prefix> -- <kernel command...>\n"
ACTIVATE_TIMEOUT = 30.0
"""Seconds the activate.d scripts may take before they are killed and skipped."""
EXIT_USAGE = 2
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

# `conda env config vars unset X` leaves this value in conda-meta/state; activation skips it.
_UNSET_MARKER = "***unset***"

# Sources the activate.d scripts given as positional arguments (never interpolated into the
# script text), with their stdout sent to stderr so that only `env -0` writes to stdout.
# A script returning non-zero is reported and activation goes on, as conda's `.` would; a
# script that exits the shell makes the whole run fail (checked on the Python side).
_ACTIVATE_SH = """\
__repro_scripts=("$@")
set --
for __repro_f in "${__repro_scripts[@]}"; do
    . "$__repro_f" || printf '%s: warning: activate script %s returned status %s\\n' \
        "$0" "$__repro_f" "$?"
done >&2
unset __repro_scripts __repro_f
command -p env -0
"""
# bash maintains these itself; conda sources the scripts in the user's shell, where they stay.
_SHELL_MANAGED = ("SHLVL", "_", "PWD", "OLDPWD")


def _warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")
    sys.stderr.flush()


def launcher_argv(prefix: str, kernel_argv: list[str], python: str = sys.executable) -> list[str]:
    """The command that launches ``kernel_argv`` activated in ``prefix`` through this module."""
    return [python, "-m", MODULE, prefix, "--", *kernel_argv]


# --------------------------------------------------------------------------------------------
# activation without scripts
# --------------------------------------------------------------------------------------------


def conda_env_name(prefix: str) -> str:
    """``CONDA_DEFAULT_ENV`` for ``prefix``: its name in an ``envs`` dir, ``base``, or the path.

    conda names an environment by its folder only inside an ``envs`` dir; a root prefix
    (recognised by its ``envs`` dir or ``condabin``) is ``base``; anything else is its path.
    """
    parent, name = os.path.split(prefix)
    if name and os.path.basename(parent) == "envs":
        return name
    if os.path.isdir(os.path.join(prefix, "envs")) or os.path.isdir(
        os.path.join(prefix, "condabin")
    ):
        return "base"
    return prefix


def _shlvl(environ: Mapping[str, str]) -> int:
    try:
        return max(0, int(environ.get("CONDA_SHLVL", "").strip() or 0))
    except ValueError:
        return 0


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


def _new_path(environ: Mapping[str, str], remove: list[str], prepend: list[str]) -> str:
    """PATH with the ``remove`` dirs dropped, ``prepend`` in front, and no entry twice."""
    current = environ.get("PATH")
    entries = (current if current is not None else os.defpath).split(os.pathsep)
    if current == "":
        entries = []
    gone = {os.path.normpath(d) for d in remove}
    seen: set[str] = set()
    out: list[str] = []
    for i, entry in enumerate([*prepend, *entries]):
        key = os.path.normpath(entry) if entry else ""
        if key in seen or (i >= len(prepend) and key in gone):
            continue
        seen.add(key)
        out.append(entry)
    return os.pathsep.join(out)


def _read_json(path: str) -> object:
    import json  # only environments that have such files pay for it

    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _valid_vars(raw: object, source: str) -> dict[str, str | None]:
    """The usable name -> value pairs of one file; None means "unset", as conda treats null."""
    if not isinstance(raw, dict):
        _warn(f"ignoring {source}: expected a JSON object of variable names to values")
        return {}
    out: dict[str, str | None] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            _warn(f"ignoring variable {name!r} of {source}: not a valid variable name")
            continue
        if value is None or isinstance(value, str):
            text = value
        elif isinstance(value, (bool, int, float)):
            text = str(value)  # conda writes the Python value into its export line
        else:
            _warn(f"ignoring variable {name!r} of {source}: its value is not a string")
            continue
        if text is not None and "\0" in text:
            _warn(f"ignoring variable {name!r} of {source}: its value contains a NUL byte")
            continue
        out[name] = text
    return out


def environment_env_vars(prefix: str) -> dict[str, str | None]:
    """The environment's own variables: ``env_vars.d/*.json`` (by name), then conda-meta/state.

    As in conda, the variables set on the environment (``conda env config vars set``, kept in
    ``conda-meta/state``) override those shipped by packages. A None value means "unset".
    Unreadable or malformed files are skipped with a warning on stderr.
    """
    env_vars: dict[str, str | None] = {}
    vars_dir = os.path.join(prefix, "etc", "conda", "env_vars.d")
    try:
        names = sorted(n for n in os.listdir(vars_dir) if n.endswith(".json"))
    except OSError:
        names = []
    sources = [os.path.join(vars_dir, n) for n in names]
    state = os.path.join(prefix, "conda-meta", "state")
    if os.path.exists(state):
        sources.append(state)
    for path in sources:
        try:
            raw = _read_json(path)
        except (OSError, ValueError) as exc:
            _warn(f"ignoring {path}: {exc}")
            continue
        if path == state:
            if not isinstance(raw, dict):
                _warn(f"ignoring {path}: expected a JSON object")
                continue
            raw = raw.get("env_vars", {})
        env_vars.update(_valid_vars(raw, path))
    return env_vars


def _venv_environ(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What a venv's ``bin/activate`` does to the environment."""
    env = dict(environ)
    old = env.get("VIRTUAL_ENV")
    remove = [os.path.join(old, "bin")] if old else []
    env["PATH"] = _new_path(environ, remove, [os.path.join(prefix, "bin")])
    env["VIRTUAL_ENV"] = prefix
    env.pop("PYTHONHOME", None)
    return env


def activated_environ(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` as ``conda activate <prefix>`` leaves it, before any activate.d script.

    A venv (``pyvenv.cfg`` without ``conda-meta/``) gets venv activation instead.
    """
    prefix = os.path.abspath(prefix)
    if not os.path.isdir(os.path.join(prefix, "conda-meta")) and os.path.isfile(
        os.path.join(prefix, "pyvenv.cfg")
    ):
        return _venv_environ(prefix, environ)

    env = dict(environ)
    old_shlvl = _shlvl(environ)
    old_prefix = environ.get("CONDA_PREFIX") or None
    bin_dirs = [os.path.join(prefix, "bin")]
    condabin = os.path.join(prefix, "condabin")
    if os.path.isdir(condabin):
        bin_dirs.append(condabin)
    remove = [os.path.join(old_prefix, "bin")] if old_prefix else []
    env["PATH"] = _new_path(environ, remove, bin_dirs)
    env_vars = environment_env_vars(prefix)

    if old_prefix and old_shlvl > 0 and _same_path(old_prefix, prefix):
        # conda reactivates: same level, the name it already has, "unset" markers unset.
        name = environ.get("CONDA_DEFAULT_ENV") or conda_env_name(prefix)
        env.update(CONDA_PREFIX=prefix, CONDA_SHLVL=str(old_shlvl), CONDA_DEFAULT_ENV=name)
        env["CONDA_PROMPT_MODIFIER"] = f"({name}) "
        for key, value in env_vars.items():
            if value is None or value == _UNSET_MARKER:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    name = conda_env_name(prefix)
    env.update(
        CONDA_PREFIX=prefix,
        CONDA_SHLVL=str(old_shlvl + 1),
        CONDA_DEFAULT_ENV=name,
        CONDA_PROMPT_MODIFIER=f"({name}) ",
    )
    if old_prefix and old_shlvl > 0:
        env[f"CONDA_PREFIX_{old_shlvl}"] = old_prefix
    for key, value in env_vars.items():
        if value == _UNSET_MARKER:
            continue
        # conda keeps what it overwrites, so that `conda deactivate` can put it back.
        if key in environ:
            env[f"__CONDA_SHLVL_{old_shlvl}_{key}"] = environ[key]
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# --------------------------------------------------------------------------------------------
# activate.d scripts
# --------------------------------------------------------------------------------------------


def activate_scripts(prefix: str) -> list[str]:
    """The ``etc/conda/activate.d/*.sh`` files of ``prefix``, in conda's (path) order."""
    folder = os.path.join(prefix, "etc", "conda", "activate.d")
    try:
        with os.scandir(folder) as it:
            return sorted(e.path for e in it if e.name.endswith(".sh") and e.is_file())
    except OSError:
        return []


def _parse_env0(data: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in data.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


def run_activate_scripts(
    prefix: str, env: Mapping[str, str], timeout: float = ACTIVATE_TIMEOUT
) -> dict[str, str]:
    """``env`` after sourcing the prefix's activate.d scripts in bash (given ``env``).

    No scripts: ``env`` unchanged, and no process is started. No bash, a script that exits the
    shell, a timeout or unreadable output: a warning on stderr and ``env`` unchanged, so that
    the kernel still starts.
    """
    scripts = activate_scripts(prefix)
    if not scripts:
        return dict(env)
    import shutil
    import subprocess

    bash = shutil.which("bash", path=env.get("PATH", os.defpath))
    if bash is None:
        _warn(f"bash not found on PATH; skipped the activate.d scripts of {prefix}")
        return dict(env)
    try:
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-c", _ACTIVATE_SH, PROG, *scripts],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _warn(f"the activate.d scripts of {prefix} took over {timeout:g} s; skipped them")
        return dict(env)
    except OSError as exc:
        _warn(f"could not run {bash} for the activate.d scripts of {prefix}: {exc}")
        return dict(env)
    if done.returncode != 0 or not done.stdout.endswith(b"\0"):
        _warn(
            f"the activate.d scripts of {prefix} failed (bash exit status {done.returncode});"
            " starting the kernel without them"
        )
        return dict(env)
    result = _parse_env0(done.stdout)
    for key in _SHELL_MANAGED:
        if key in env:
            result[key] = env[key]
        else:
            result.pop(key, None)
    return result


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _usage_error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n{USAGE}")
    sys.stderr.flush()
    return EXIT_USAGE


def _exec(prefix: str, argv: list[str], env: dict[str, str]) -> int:
    """Replace this process with ``argv``; returns only when that fails (with an exit status)."""
    import _signal

    sys.stdout.flush()
    sys.stderr.flush()
    # Python starts with SIGPIPE and SIGXFSZ ignored, and ignored signals survive exec: give
    # the kernel the default dispositions that any other launcher would give it.
    saved = {
        sig: _signal.signal(sig, _signal.SIG_DFL) for sig in (_signal.SIGPIPE, _signal.SIGXFSZ)
    }
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606  (exec is the point: no shell, our argv)
    except (FileNotFoundError, NotADirectoryError):
        status, why = EXIT_NOT_FOUND, "not found on the environment's PATH"
    except (OSError, ValueError) as exc:
        status, why = EXIT_NOT_EXECUTABLE, str(exc)
    for sig, handler in saved.items():
        _signal.signal(sig, handler)
    sys.stderr.write(f"{PROG}: error: cannot start {argv[0]!r} in environment {prefix}: {why}\n")
    sys.stderr.flush()
    return status


def main(argv: list[str] | None = None) -> int:
    """Parse ``<prefix> -- <argv...>``, activate, exec. Returns an exit status only on failure."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE)
        return 0
    if "--" not in args:
        return _usage_error("missing '--' between the environment prefix and the kernel command")
    sep = args.index("--")
    if sep != 1:
        return _usage_error("expected exactly one environment prefix before '--'")
    prefix, kernel_argv = args[0], args[sep + 1 :]
    if not kernel_argv:
        return _usage_error("no kernel command after '--'")
    if not prefix or not os.path.isdir(prefix):
        return _usage_error(f"environment prefix {prefix!r} is not a directory")
    prefix = os.path.abspath(prefix)
    env = run_activate_scripts(prefix, activated_environ(prefix, os.environ))
    return _exec(prefix, kernel_argv, env)


if __name__ == "__main__":
    sys.exit(main())
