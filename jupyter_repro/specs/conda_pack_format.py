"""`pack --format conda-pack`: an environment as a conda-pack archive, made by conda-pack.

For sites whose scripts expect conda-pack's archives: unpack anywhere, `source bin/activate`,
run `conda-unpack` (shipped inside the archive), which rewrites the old prefix in the files
that hold it. The archive is conda-pack's own, with its defaults (what `conda-pack -p PREFIX
-o FILE` makes): this module only chooses the format from the file name, checks what
conda-pack would refuse or pack wrongly, turns conda-pack's refusals into messages that say
what to do, reports progress and makes sure that no partial archive is ever left behind.

Refused (CondaPackError, nothing written):
- a folder that is not a conda environment, or one still being restored;
- editable pip installs (`pip install -e`, `setup.py develop`): they point at a source folder
  on this machine (conda-pack#66, #75); conda-pack itself only sees the `pip install -e` kind;
- what conda-pack refuses: files that conda installed were removed or replaced (e.g. by pip),
  noarch python packages whose package-cache copy has no `info/link.json`;
- an output that exists (unless `force`), that is a folder, inside the environment, in a
  folder that does not exist, or whose name does not say a format conda-pack writes.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..environments.prefix import Prefix
from .export import ExportError

Progress = Callable[[str, int, int], None]
"""`(phase, done, total)`: phase `scan` (reading the environment), then `pack` (files)."""

CONDA_PACK_FORMATS: dict[str, str] = {
    ".tar.gz": "tar.gz",
    ".tgz": "tgz",
    ".tar.bz2": "tar.bz2",
    ".tbz2": "tbz2",
    ".tar.xz": "tar.xz",
    ".txz": "txz",
    ".tar.zst": "tar.zst",
    ".tzst": "tzst",
    ".tar": "tar",
    ".zip": "zip",
}
"""Output file suffix -> conda-pack's format. Not offered: conda-pack's `parcel`, `squashfs`
(needs mksquashfs) and `no-archive`, which are not archives that `conda-unpack` sites take."""
CONDA_PACK_DEFAULT_SUFFIX = ".tar.gz"
"""conda-pack's own default (`<env name>.tar.gz`)."""

_ZSTD_FORMATS = frozenset({"tar.zst", "tzst"})
_FALLBACK = "; or pack a capsule instead (--format capsule), which does not need it"


class CondaPackError(ExportError):
    """conda-pack cannot pack this environment, or not to that file; the message says why
    and what to do."""


def conda_pack_format(output: Path) -> str:
    """conda-pack's format for the file name `output` (by its suffix, case-insensitive).

    Raises CondaPackError for a suffix conda-pack does not write (or `.tar.zst` without the
    zstandard package).
    """
    name = Path(output).name.lower()
    for suffix in sorted(CONDA_PACK_FORMATS, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            fmt = CONDA_PACK_FORMATS[suffix]
            if fmt in _ZSTD_FORMATS and importlib.util.find_spec("zstandard") is None:
                raise CondaPackError(
                    f"{output}: conda-pack writes .tar.zst only with the zstandard package;"
                    " install it or choose .tar.gz"
                )
            return fmt
    raise CondaPackError(
        f"{output}: the file name does not say which archive to make; end it with one of "
        + ", ".join(CONDA_PACK_FORMATS)
    )


def pack_conda_pack(
    prefix: Path,
    output: Path,
    *,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Pack the conda environment at `prefix` into `output` with conda-pack; the output's
    absolute path.

    The format comes from `output`'s suffix (`CONDA_PACK_FORMATS`). The archive is written
    beside `output` under a temporary name and moved into place only when complete: a
    refusal, an error or an exception raised by `progress` (a cancel) leaves no file.
    `force` replaces an existing file (it does not create missing folders).

    Raises CondaPackError (an ExportError) when conda-pack cannot pack the environment or
    the output cannot be written; exceptions raised by `progress` pass through.
    """
    import conda_pack

    prefix = Path(os.path.abspath(prefix))
    output = Path(os.path.abspath(output))
    _check_output(prefix, output, force)
    fmt = conda_pack_format(output)
    _check_prefix(prefix)
    report = progress or (lambda _phase, _done, _total: None)

    report("scan", 0, 1)
    try:
        env = conda_pack.CondaEnv.from_prefix(str(prefix), ignore_editable_packages=False)
    except conda_pack.CondaPackException as exc:
        raise CondaPackError(_explain(prefix, str(exc))) from None
    except OSError as exc:
        raise CondaPackError(f"cannot read the environment {prefix}: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        # conda-pack reading a record or package metadata it does not expect.
        raise CondaPackError(
            f"conda-pack cannot read the environment {prefix} ({type(exc).__name__}: {exc});"
            " its conda-meta records or package cache may be damaged" + _FALLBACK
        ) from exc
    report("scan", 1, 1)

    env.files = _Reporting(env.files, report)
    # Beside the output, so that the last step is a rename on one file system.
    try:
        staging = Path(tempfile.mkdtemp(prefix=".conda-pack-", dir=output.parent))
    except OSError as exc:
        raise CondaPackError(f"cannot write in {output.parent}: {exc}") from exc
    try:
        staged = staging / ("environment" + _suffix_of(output))
        try:
            env.pack(output=str(staged), format=fmt, force=False)
        except conda_pack.CondaPackException as exc:
            raise CondaPackError(_explain(prefix, str(exc))) from None
        except OSError as exc:
            hint = ""
            if exc.errno == errno.ENOSPC:
                hint = (
                    f" (conda-pack builds the archive in {tempfile.gettempdir()} first;"
                    " set TMPDIR to a folder with room)"
                )
            raise CondaPackError(f"packing {prefix} with conda-pack failed: {exc}{hint}") from exc
        _set_mode(staged, output, staging)
        _publish(staged, output, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


# --------------------------------------------------------------------------------------------
# checks


def _suffix_of(output: Path) -> str:
    name = output.name.lower()
    return max((s for s in CONDA_PACK_FORMATS if name.endswith(s)), key=len)


def _check_output(prefix: Path, output: Path, force: bool) -> None:
    if output.is_dir():
        raise CondaPackError(f"{output} is a folder; give the archive's file name")
    if output.exists() and not force:
        raise CondaPackError(
            f"{output} already exists; choose another output file or allow replacing it"
        )
    if not output.parent.is_dir():
        raise CondaPackError(f"cannot write {output}: the folder {output.parent} does not exist")
    if _inside(output, prefix):
        raise CondaPackError(
            f"cannot write {output} inside the environment it packs ({prefix});"
            " choose a file outside it"
        )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.parent.resolve().joinpath(path.name).relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def _check_prefix(prefix: Path) -> None:
    env = Prefix(prefix)
    if not prefix.is_dir():
        raise CondaPackError(f"{prefix}: no such environment (the folder does not exist)")
    if not env.is_conda():
        raise CondaPackError(
            f"{prefix} is not a conda environment (it has no conda-meta folder); conda-pack"
            " packs conda environments only"
        )
    if env.is_restoring():
        raise CondaPackError(f"{prefix} is still being restored; pack it when that is done")
    try:
        editable = sorted(d.name for d in env.pip_distributions() if d.kind == "editable")
    except OSError as exc:
        raise CondaPackError(f"cannot read the environment {prefix}: {exc}") from exc
    if editable:
        raise CondaPackError(_editable_message(prefix, editable))


def _editable_message(prefix: Path, names: list[str]) -> str:
    return (
        f"cannot pack {prefix} with conda-pack: it has editable pip installs"
        f" ({', '.join(names)}), which point at a source folder on this machine and would be"
        " broken wherever the archive is unpacked (conda-pack#66, #75). Install them without"
        " -e (pip install PATH) or uninstall them, then pack again"
        + _FALLBACK
        + " and lists them as not packed"
    )


def _explain(prefix: Path, message: str) -> str:
    """A refusal of conda-pack's, said with what to do about it."""
    detail = message.strip()
    if "editable" in detail.lower():
        names = [line.strip()[2:] for line in detail.splitlines() if line.strip().startswith("- ")]
        return _editable_message(prefix, names or ["see conda-pack's list"])
    if "deleted/overwritten" in detail:
        # conda-pack's words when it took a noarch python package for an arch one.
        without = _noarch_python_without_link_json(prefix)
        if without:
            listed = ", ".join(f"{name} ({folder})" for name, folder in without)
            return (
                f"cannot pack {prefix} with conda-pack: noarch python packages have no"
                f" info/link.json in the package cache: {listed}. conda-pack needs it to find"
                " their files (packages built by conda-build or rattler-build have it);"
                " rebuild or reinstall those packages from a channel whose packages have it"
                + _FALLBACK
            )
        listed = "\n".join(line for line in detail.splitlines() if line.startswith(("- ", "    ")))
        return (
            f"cannot pack {prefix} with conda-pack: files that conda installed were removed or"
            f" replaced (often by pip), in these packages:\n{listed}\nReinstall those packages"
            " (conda install --force-reinstall NAME...) or remove what pip put over them,"
            " then pack again" + _FALLBACK
        )
    return f"conda-pack refused to pack {prefix}: {detail}"


def _noarch_python_without_link_json(prefix: Path) -> list[tuple[str, str]]:
    """`(name version, package cache folder)` of each noarch python record whose cached
    package has neither `info/link.json` nor `info/package_metadata.json`: conda-pack takes
    those for arch packages and misses their relocated files."""
    found = []
    meta = prefix / "conda-meta"
    for path in sorted(meta.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        source = (record.get("link") or {}).get("source") or ""
        noarch = record.get("noarch")
        if isinstance(noarch, dict):
            noarch = noarch.get("type")
        if noarch != "python" or not source or not os.path.isdir(source):
            continue
        info = Path(source) / "info"
        if not (info / "link.json").exists() and not (info / "package_metadata.json").exists():
            found.append((f"{record.get('name')} {record.get('version')}", source))
    return found


# --------------------------------------------------------------------------------------------
# writing


class _Reporting(list[Any]):
    """conda-pack's file list, reporting `("pack", done, total)` as conda-pack goes through
    it (about 200 reports whatever the number of files)."""

    def __init__(self, files: list[Any], report: Progress) -> None:
        super().__init__(files)
        self._report = report

    def __iter__(self) -> Iterator[Any]:
        total = len(self)
        step = max(1, total // 200)
        self._report("pack", 0, total)
        for done, item in enumerate(super().__iter__(), 1):
            yield item
            if done % step == 0 or done == total:
                self._report("pack", done, total)


def _set_mode(staged: Path, output: Path, staging: Path) -> None:
    """conda-pack's archive is a `mkstemp` file (0600): give it the mode of the file it
    replaces, else what the umask gives a new file (found by making one: reading the umask
    means changing it, for every thread)."""
    try:
        mode = output.stat().st_mode
    except OSError:
        probe = staging / "mode-probe"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        mode = probe.stat().st_mode
    os.chmod(staged, stat.S_IMODE(mode))


def _publish(staged: Path, output: Path, force: bool) -> None:
    """Move the finished archive to `output`; without `force`, never over a file that
    appeared meanwhile."""
    try:
        if force:
            os.replace(staged, output)
            return
        try:
            os.link(staged, output)
        except FileExistsError:
            raise CondaPackError(
                f"{output} already exists; choose another output file or allow replacing it"
            ) from None
        except OSError:
            # No hard links on this file system: a rename, after one more look.
            if output.exists():
                raise CondaPackError(
                    f"{output} already exists; choose another output file or allow replacing it"
                ) from None
            os.rename(staged, output)
    except CondaPackError:
        raise
    except OSError as exc:
        raise CondaPackError(f"cannot write {output}: {exc}") from exc
