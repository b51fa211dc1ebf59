"""Export: real rig environments -> specs in every mode and format, and the CLI over it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from jupyter_repro.cli import main
from jupyter_repro.environments.prefix import CondaRecord, Prefix
from jupyter_repro.notebooks.embedded import METADATA_KEY, embed_spec
from jupyter_repro.specs.environment import SpecError, parse_environment_yaml
from jupyter_repro.specs.explicit import explicit_urls, parse_explicit
from jupyter_repro.specs.export import (
    ExportError,
    environment_platform,
    explicit_list,
    export_environment,
    export_explicit,
    host_platform,
)
from tests.rig.channel import (
    IPYKERNEL_VERSION,
    PYTHON_VERSION,
    PYTHON_XY,
)
from tests.rig.installation import CondaInstallation

SPEC_S = ["python", "ipykernel", "pkgc", "pkgb<2"]
TOKEN = "tk-123"


def records_on_disk(prefix: Path) -> list[dict]:
    """The conda-meta records as plain JSON: the independent view the export is checked by."""
    return [json.loads(p.read_text()) for p in sorted((prefix / "conda-meta").glob("*.json"))]


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{PYTHON_XY}" / "site-packages"


def add_dist_info(prefix: Path, name: str, version: str, direct_url: dict | None = None) -> Path:
    """A pip-installed distribution, optionally with a PEP 610 direct_url.json."""
    dist = site_packages(prefix) / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "INSTALLER").write_text("pip\n")
    if direct_url is not None:
        (dist / "direct_url.json").write_text(json.dumps(direct_url))
    return dist


def every_output(prefix: Path) -> dict[str, str]:
    """Every text an export can produce for `prefix`."""
    outputs = {}
    for mode in ("portable", "exact", "no-builds"):
        spec = export_environment(prefix, mode)
        outputs[f"{mode}.yaml"] = spec.to_yaml()
        outputs[f"{mode}.json"] = spec.to_json()
    outputs["explicit"] = export_explicit(prefix)
    return outputs


@pytest.fixture
def source_env(conda_installation: CondaInstallation) -> Path:
    """An environment built by the rig from SPEC_S (history written as conda writes it)."""
    return conda_installation.create_env("source", SPEC_S)


# -- portable round trip ----------------------------------------------------------------------


def test_portable_round_trip_installs_the_same_names_and_versions(conda_installation, source_env):
    text = export_environment(source_env, "portable").to_yaml()
    spec = parse_environment_yaml(text).spec

    assert spec.dependencies == (
        f"ipykernel={IPYKERNEL_VERSION}",
        "pkgb=1.0",
        "pkgc=1.0",
        f"python={PYTHON_VERSION}",
    )
    assert spec.channels == (conda_installation.channel.url,)
    assert spec.name == "source"
    copy = conda_installation.create_prefix_env(
        conda_installation.home / "copy", list(spec.dependencies)
    )
    assert conda_installation.installed(copy) == conda_installation.installed(source_env)
    assert "pkga" in conda_installation.installed(copy)  # came back as a dependency


def test_portable_has_no_builds_and_no_prefix_line(source_env):
    text = export_environment(source_env).to_yaml()

    assert "prefix:" not in text
    assert "=0" not in text
    assert "rig_0" not in text
    assert str(source_env) not in text


def test_portable_drops_requested_packages_that_are_gone_with_a_comment(conda_installation):
    prefix = conda_installation.create_env("cascade", ["python", "pkgc"])
    conda_installation.remove_packages(prefix, ["pkga"])  # takes pkgc with it

    spec = export_environment(prefix)

    assert spec.dependencies == (f"python={PYTHON_VERSION}",)
    assert any("pkgc" in c and "not installed" in c for c in spec.comments)
    assert "# pkgc: requested as 'pkgc' but not installed; left out" in spec.to_yaml()


def test_portable_follows_updates_in_the_history(conda_installation):
    prefix = conda_installation.create_env("upd", ["python", "pkgb<2"])
    conda_installation.add_packages(prefix, ["pkgb>=2"])

    assert export_environment(prefix).dependencies == ("pkgb=2.0", f"python={PYTHON_VERSION}")


def test_portable_uses_records_when_history_is_empty(conda_installation):
    prefix = conda_installation.create_env("no-history", ["pkgc"])
    (prefix / "conda-meta" / "history").write_text("")

    assert export_environment(prefix).dependencies == ("pkgc=1.0",)


def test_portable_falls_back_to_leaf_packages_with_a_comment(tmp_path):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    for name, depends in (("app", ["lib >=1"]), ("lib", []), ("tool", ["lib"])):
        record = {"name": name, "version": "1.0", "build": "0", "depends": depends}
        (meta / f"{name}-1.0-0.json").write_text(json.dumps(record))

    spec = export_environment(tmp_path)

    assert spec.dependencies == ("app=1.0", "tool=1.0")
    assert any("no record of what was requested" in c for c in spec.comments)


# -- exact, no-builds, explicit ---------------------------------------------------------------


def test_exact_lists_every_record_with_its_build(source_env):
    spec = export_environment(source_env, "exact")

    expected = sorted(
        f"{r['name']}={r['version']}={r['build']}" for r in records_on_disk(source_env)
    )
    assert list(spec.dependencies) == expected
    assert len(expected) == 5
    assert parse_environment_yaml(spec.to_yaml()).spec == spec


def test_no_builds_lists_every_record_without_its_build(source_env):
    spec = export_environment(source_env, "no-builds")

    assert list(spec.dependencies) == sorted(
        f"{r['name']}={r['version']}" for r in records_on_disk(source_env)
    )


def explicit_records(entries, cache: Path) -> list:
    """rattler records for explicit URLs of a local channel, built from the URLs alone (with
    each package's own repodata entry, as an explicit install reads the package's index)."""
    from rattler import PackageRecord, RepoDataRecord

    records = []
    for n, entry in enumerate(entries):
        path = Path(unquote(urlsplit(entry.url).path))
        repodata = json.loads((path.parent / "repodata.json").read_text())
        index = repodata["packages.conda"][path.name]
        index_json = cache / f"index-{n}.json"
        index_json.write_text(json.dumps(index))
        package = PackageRecord.from_index_json(
            index_json, size=index["size"], sha256=index["sha256"], md5=index["md5"]
        )
        records.append(RepoDataRecord(package, path.name, entry.url, path.parent.parent.as_uri()))
    return records


def test_explicit_reinstalls_the_same_urls_and_hashes(source_env, tmp_path):
    from rattler import install

    platform, entries = parse_explicit(export_explicit(source_env))
    on_disk = records_on_disk(source_env)

    assert platform == "linux-64"
    assert sorted((e.url, e.md5) for e in entries) == sorted((r["url"], r["md5"]) for r in on_disk)
    for entry in entries:  # the hash is the file's own
        data = Path(unquote(urlsplit(entry.url).path)).read_bytes()
        assert hashlib.md5(data).hexdigest() == entry.md5
    names = [Path(e.url).name.rsplit("-", 2)[0] for e in entries]
    assert names.index("pkgb") < names.index("pkga") < names.index("pkgc")  # dependencies first
    assert names.index("python") < names.index("ipykernel")

    target = tmp_path / "explicit-env"
    asyncio.run(
        install(
            explicit_records(entries, tmp_path),
            target_prefix=str(target),
            cache_dir=tmp_path / "cache",
            show_progress=False,
        )
    )
    reinstalled = records_on_disk(target)
    assert sorted((r["url"], r["md5"], r["sha256"]) for r in reinstalled) == sorted(
        (r["url"], r["md5"], r["sha256"]) for r in on_disk
    )


def test_explicit_of_a_venv_is_refused(tmp_path):
    venv = make_venv(tmp_path / "venv")
    with pytest.raises(ExportError, match="venv"):
        export_explicit(venv)


def test_explicit_leaves_out_records_without_url_with_a_comment(source_env):
    record = next((source_env / "conda-meta").glob("pkga-*.json"))
    data = json.loads(record.read_text())
    del data["url"], data["channel"]
    record.write_text(json.dumps(data))

    listed = explicit_list(source_env)

    assert len(listed.entries) == 4
    assert "pkga-1.0-0: no package URL recorded; left out" in listed.comments


def test_environment_platform():
    records = [
        CondaRecord("a", "1", "0", subdir="noarch"),
        CondaRecord("b", "1", "0", subdir="osx-arm64"),
        CondaRecord("c", "1", "0", subdir="osx-arm64"),
        CondaRecord("d", "1", "0", subdir="linux-64"),
    ]
    assert environment_platform(records) == "osx-arm64"
    assert environment_platform(records[:1]) == host_platform()
    assert host_platform() == "linux-64"  # the machines these tests run on


# -- pip --------------------------------------------------------------------------------------


def test_pip_section_lists_pip_installs_and_no_conda_owned_dist(
    conda_installation_factory, channel_with_a_conda_dist_info
):
    inst = conda_installation_factory(channel=channel_with_a_conda_dist_info)
    prefix = inst.create_env("mixed", ["python", "condadist"])
    assert (site_packages(prefix) / "condadist-1.0.dist-info").is_dir()
    inst.add_pip_package(prefix, "rig-pip-pkg", "0.3")
    add_dist_info(
        prefix,
        "vcs-pkg",
        "0.1",
        {"url": "https://github.com/o/r.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
    )
    add_dist_info(
        prefix,
        "url-pkg",
        "2.0",
        {
            "url": f"https://user:{TOKEN}@files.example.org/url_pkg-2.0-py3-none-any.whl",
            "archive_info": {"hashes": {"sha256": "0" * 64}},
        },
    )
    add_dist_info(
        prefix,
        "edit-pkg",
        "0.0.1",
        {"url": "file:///home/me/src/edit-pkg", "dir_info": {"editable": True}},
    )
    add_dist_info(
        prefix, "local-pkg", "1.1", {"url": "file:///home/me/src/local-pkg", "dir_info": {}}
    )

    for mode in ("portable", "exact", "no-builds"):
        spec = export_environment(prefix, mode)
        assert spec.pip == (
            "rig-pip-pkg==0.3",
            "url-pkg @ https://files.example.org/url_pkg-2.0-py3-none-any.whl",
            "vcs-pkg @ git+https://github.com/o/r.git@abc",
        )
        # The environment has no conda pip: the spec does not ask for one (a restore
        # installs the section without it), so drift and restore agree with the export.
        assert "pip" not in {d.split("=")[0] for d in spec.dependencies}
        comments = "\n".join(spec.comments)
        assert "edit-pkg 0.0.1 is an editable install" in comments
        assert "local-pkg 1.1 was installed from a local folder" in comments
        text = spec.to_yaml()
        assert "condadist" not in "\n".join(spec.pip)
        assert "/home/me" not in text
        assert TOKEN not in text
        parse_environment_yaml(text)  # and it is a valid environment.yml
    assert "condadist=1.0" in export_environment(prefix).dependencies


def test_no_pip_section_without_pip_installs(source_env):
    spec = export_environment(source_env)
    assert spec.pip == ()
    assert "pip" not in spec.to_yaml()


# -- venv -------------------------------------------------------------------------------------


def make_venv(path: Path, version: str = "3.10.4") -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version}\n")
    (path / "lib" / "python3.10" / "site-packages").mkdir(parents=True)
    return path


def test_venv_exports_python_version_and_pip_section(tmp_path):
    venv = make_venv(tmp_path / "proj-venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    for name, version in (("pip", "24.0"), ("requests", "2.32.3"), ("Attrs", "23.2.0")):
        dist = site / f"{name}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")

    spec = export_environment(venv)

    assert spec.name == "proj-venv"
    assert spec.dependencies == ("python=3.10",)
    assert spec.pip == ("Attrs==23.2.0", "requests==2.32.3")
    assert spec.channels == ()
    assert export_environment(venv, "exact") == spec  # a venv has no builds to list


# -- never a token, never a prefix ------------------------------------------------------------


def test_tokens_never_appear_in_any_output(conda_installation, source_env, tmp_path):
    for record_path in (source_env / "conda-meta").glob("*.json"):
        data = json.loads(record_path.read_text())
        data["url"] = data["url"].replace("file://", f"https://conda.anaconda.org/t/{TOKEN}", 1)
        data["channel"] = f"https://conda.anaconda.org/t/{TOKEN}/private-org/"
        record_path.write_text(json.dumps(data, indent=2))

    outputs = every_output(source_env)

    for name, text in outputs.items():
        assert TOKEN not in text, name
        assert "/t/" not in text, name
        assert "prefix:" not in text, name
    assert "  - private-org\n" in outputs["exact.yaml"]
    notebook = notebook_for(tmp_path / "nb.ipynb", None)
    listed = explicit_list(source_env)
    embed_spec(
        notebook,
        export_environment(source_env),
        mode="portable",
        explicit={listed.platform: explicit_urls(listed.entries)},
    )
    redacted_channel = f"https://conda.anaconda.org{conda_installation.channel.path}/"
    assert redacted_channel in notebook.read_text()
    assert TOKEN not in notebook.read_text()


# -- deterministic ----------------------------------------------------------------------------


def test_same_environment_same_bytes(conda_installation):
    first, second = conda_installation.create_envs(["one", "two"], [*SPEC_S, "rig-envvars"])

    for mode in ("portable", "exact", "no-builds"):
        a = export_environment(first, mode, name="same").to_yaml()
        assert a == export_environment(first, mode, name="same").to_yaml()
        assert a == export_environment(second, mode, name="same").to_yaml()
    assert export_explicit(first) == export_explicit(second)


# -- names, variables, damaged and non-environments ---------------------------------------------


def test_name_defaults_to_the_folder_and_bad_names_are_refused(conda_installation, tmp_path):
    spaced = conda_installation.create_prefix_env(tmp_path / "my env", ["pkgc"])

    assert export_environment(spaced).name is None  # conda would refuse "my env"
    assert export_environment(spaced, name="given").name == "given"
    with pytest.raises(SpecError, match="invalid environment name"):
        export_environment(spaced, name="a/b")


def test_variables_from_conda_env_config_vars(source_env):
    state = {"env_vars": {"B_VAR": "2", "A_VAR": "one", "GONE": "***unset***", "bad name": "x"}}
    (source_env / "conda-meta" / "state").write_text(json.dumps(state))

    spec = export_environment(source_env)

    assert spec.variables == (("A_VAR", "one"), ("B_VAR", "2"))
    assert any("'bad name'" in c for c in spec.comments)


def test_damaged_record_is_exported_from_its_file_name_with_a_comment(source_env):
    (source_env / "conda-meta" / "pkga-1.0-0.json").write_text("{ truncated")

    spec = export_environment(source_env, "exact")

    assert "pkga=1.0=0" in spec.dependencies
    assert any("pkga-1.0-0.json could not be read" in c for c in spec.comments)


def test_records_written_in_other_layouts_read_the_same(source_env):
    before = export_environment(source_env, "exact")
    for n, record_path in enumerate(sorted((source_env / "conda-meta").glob("*.json"))):
        data = json.loads(record_path.read_text())
        data["files"] = [f"share/x/{i}.txt" for i in range(800)]  # past the head read
        layouts = [
            json.dumps(data, indent=2),  # rattler's own key order
            json.dumps(data, indent=2, sort_keys=True),  # conda
            json.dumps(data, indent=4).replace("\n", "\r\n"),  # other tools, Windows
            json.dumps(data),  # one line
        ]
        record_path.write_text(layouts[n % len(layouts)])

    assert export_environment(source_env, "exact") == before


@pytest.mark.parametrize("layout", ["rattler", "conda", "crlf-indent4", "one-line", "small"])
def test_dist_infos_owned_by_records_in_every_layout(tmp_path, layout):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    site = f"lib/python{PYTHON_XY}/site-packages"
    padding = [] if layout == "small" else [f"share/pad/{i}.txt" for i in range(800)]
    files = [*padding, f"{site}/caf\u00e9-1.0.dist-info/METADATA", f"{site}/x-2.dist-info/RECORD"]
    record = {"name": "cafe", "version": "1.0", "build": "0", "requested_specs": [], "files": files}
    text = {
        "rattler": json.dumps(record, indent=2),
        "conda": json.dumps(record, indent=2, sort_keys=True),
        "crlf-indent4": json.dumps(record, indent=4).replace("\n", "\r\n"),
        "one-line": json.dumps(record),
        "small": json.dumps(record, indent=2),
    }[layout]
    (meta / "cafe-1.0-0.json").write_text(text)

    records, owned = Prefix(tmp_path).read_conda_records(dist_infos=True)

    assert owned == {f"{site}/caf\u00e9-1.0.dist-info", f"{site}/x-2.dist-info"}
    assert [(r.name, r.version, r.build, r.damaged) for r in records] == [
        ("cafe", "1.0", "0", False)
    ]


@pytest.mark.parametrize("kind", ["missing", "plain", "file"])
def test_not_an_environment(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "plain":
        target.mkdir()
    elif kind == "file":
        target.write_text("")
    with pytest.raises(ExportError, match="target"):
        export_environment(target)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_conda_meta(source_env):
    meta = source_env / "conda-meta"
    meta.chmod(0)
    try:
        with pytest.raises(ExportError, match="cannot read"):
            export_environment(source_env)
    finally:
        meta.chmod(0o755)


def test_unreadable_conda_meta_as_seen_by_root(source_env, monkeypatch):
    def refuse(self, dist_infos=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Prefix, "read_conda_records", refuse)
    with pytest.raises(ExportError, match=r"cannot read .*conda-meta: Permission denied"):
        export_environment(source_env)


def test_unknown_mode(source_env):
    with pytest.raises(ExportError, match="unknown export mode"):
        export_environment(source_env, "everything")  # type: ignore[arg-type]


# -- the command line -------------------------------------------------------------------------


def notebook_for(path: Path, kernel: str | None) -> Path:
    metadata = {"kernelspec": {"name": kernel, "display_name": "x", "language": "python"}}
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "a",
                "metadata": {},
                "outputs": [],
                "source": ["1"],
            }
        ],
        "metadata": metadata if kernel else {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True) + "\n")
    return path


def test_cli_prefix_modes_and_formats(source_env, capsys):
    assert main(["export", "--prefix", str(source_env)]) == 0
    assert capsys.readouterr().out == export_environment(source_env, "portable").to_yaml()

    assert main(["export", "--prefix", str(source_env), "--mode", "exact", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == export_environment(source_env, "exact").to_dict()

    assert main(["export", "--prefix", str(source_env), "--format", "explicit"]) == 0
    assert capsys.readouterr().out == export_explicit(source_env)


def test_cli_env_name_and_output_file(rig_environ, conda_installation, tmp_path, capsys):
    conda_installation.create_env("named", ["pkgc"])
    out = tmp_path / "environment.yml"
    out.write_text("old")
    out.chmod(0o640)

    assert main(["export", "--env", "named", "--mode", "no-builds", "-o", str(out)]) == 0

    text = out.read_text()
    assert parse_environment_yaml(text).spec.name == "named"
    assert "pkgc=1.0" in text
    assert (out.stat().st_mode & 0o777) == 0o640
    assert capsys.readouterr().out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["environment.yml"]  # no temp file left


def test_cli_notebook_kernel_and_embed(rig_environ, conda_installation, tmp_path, capsys):
    prefix = conda_installation.create_env("nbenv", ["python", "ipykernel", "pkgc"])
    notebook = notebook_for(tmp_path / "analysis.ipynb", "conda-env-nbenv-py")

    assert main(["export", str(notebook)]) == 0
    printed = capsys.readouterr().out
    assert printed == export_environment(prefix, name="nbenv").to_yaml()

    assert main(["export", str(notebook), "--embed", "--format", "explicit"]) == 0
    embedded = json.loads(notebook.read_text())["metadata"][METADATA_KEY]
    assert embedded["environment"] == export_environment(prefix, name="nbenv").to_dict()
    assert embedded["exported"]["mode"] == "portable"
    assert embedded["exported"]["platform"] == "linux-64"
    assert len(embedded["explicit"]["linux-64"]) == len(records_on_disk(prefix))


def test_cli_notebook_with_a_regular_kernelspec_uses_its_interpreter(
    rig_environ, conda_installation, tmp_path, capsys
):
    venv = make_venv(tmp_path / "kvenv")
    kernels = Path(rig_environ["JUPYTER_DATA_DIR"]) / "kernels" / "venv-kernel"
    kernels.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "v", "language": "python"})
    )
    notebook = notebook_for(tmp_path / "v.ipynb", "venv-kernel")

    assert main(["export", str(notebook)]) == 0

    assert "python=3.10" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--env", "no-such-env"], 1, "no environment named 'no-such-env'"),
        (["NOTEBOOK:missing-kernel"], 1, "'conda-env-gone-py', is not installed here"),
        (["NOTEBOOK:no-kernel"], 1, "names no kernel"),
        (["NOTEBOOK:not-json"], 1, "not a notebook"),
        (["PREFIX:plain"], 1, "is not an environment"),
        ([], 2, "exactly one of NOTEBOOK"),
        (["--env", "x", "--prefix", "y"], 2, "exactly one of NOTEBOOK"),
        (["--env", "x", "--embed"], 2, "--embed writes into a notebook"),
        (["NOTEBOOK:no-kernel", "--embed", "-o", "f"], 2, "cannot be combined"),
        (["--env", "x", "--format", "explicit", "--mode", "portable"], 2, "does not apply"),
        (["PREFIX:env", "--env", "x"], 2, "exactly one"),
        (["PREFIX:env", "--mode", "exact", "-o", "DIR:missing/out.yml"], 1, "does not exist"),
    ],
)
def test_cli_errors_are_clear(rig_environ, source_env, tmp_path, capsys, args, status, message):
    (tmp_path / "plain").mkdir()
    (tmp_path / "not-json.ipynb").write_text("{ nope")
    notebook_for(tmp_path / "no-kernel.ipynb", None)
    notebook_for(tmp_path / "missing-kernel.ipynb", "conda-env-gone-py")
    resolved = []
    for arg in args:
        kind, _, rest = arg.partition(":")
        if kind == "NOTEBOOK":
            resolved.append(str(tmp_path / f"{rest}.ipynb"))
        elif kind == "PREFIX":
            resolved += ["--prefix", str(source_env if rest == "env" else tmp_path / rest)]
        elif kind == "DIR":
            resolved.append(str(tmp_path / rest))
        else:
            resolved.append(arg)
    before = (tmp_path / "not-json.ipynb").read_bytes()

    assert main(["export", *resolved]) == status

    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert (tmp_path / "not-json.ipynb").read_bytes() == before


def test_cli_as_a_program(rig_environ, source_env):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_repro.cli",
            "export",
            "--prefix",
            str(source_env),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=rig_environ,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == export_environment(source_env).to_dict()

    failed = subprocess.run(
        [sys.executable, "-m", "jupyter_repro.cli", "export", "--env", "nope"],
        capture_output=True,
        text=True,
        env=rig_environ,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "no environment named 'nope'" in failed.stderr
