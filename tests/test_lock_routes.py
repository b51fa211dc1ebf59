"""repro/environments/{name}/lock and repro/notebooks/{path}/lock on a real server whose HOME
is the installation of the rig's multi-platform `lockme`; then a dry-run restore of the locked
notebook. The locks are checked with conda-lock's and rattler's own parsers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conda_lock.lockfile import parse_conda_lock_file
from rattler import LockFile

from jupyter_repro.notebooks.embedded import METADATA_KEY
from jupyter_repro.specs.lock import parse_conda_lock, parse_embedded_lock
from tests.rig.platforms import LIBPLAT_LATEST, LOCKME_NAME, MultiPlatformEnv
from tests.server_helpers import answer, kernelspecs

# Importing conda-lock sets CONDA_ROOT to this Python's prefix (its vendored conda does), which
# would make discovery take this venv for the base installation: undone, once, at import.
if os.environ.get("CONDA_ROOT") == sys.prefix:
    del os.environ["CONDA_ROOT"]

pytestmark = pytest.mark.timeout(120)

KERNEL = f"conda-env-{LOCKME_NAME}-py"
TWO = [("platform", "linux-64"), ("platform", "win-64")]


@pytest.fixture
def jp_home_dir(multi_platform_env: MultiPlatformEnv) -> Path:
    """The server's HOME: the installation of `lockme` (read-only; writes go to the root)."""
    return multi_platform_env.installation.home


def write_notebook(path: Path, kernel: str = KERNEL, embedded: Any = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "lockme", "language": "python"}
    nb.metadata["zeta"] = {"ünïcode": "é ✓"}
    if embedded is not None:
        nb.metadata[METADATA_KEY] = embedded
    nb.cells = [nbformat.v4.new_code_cell("print(1)\n", execution_count=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    return path


def installed_urls(prefix: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["url"] for p in (prefix / "conda-meta").glob("*.json"))


def post_lock(jp_fetch, path: str, body: Any):
    return answer(
        jp_fetch("repro", "notebooks", path, "lock", method="POST", body=json.dumps(body))
    )


# -- repro/environments/{name}/lock ------------------------------------------------------------


async def test_environment_lock_in_each_format(jp_fetch, tmp_path, multi_platform_env):
    response = await jp_fetch("repro", "environments", LOCKME_NAME, "lock", params=TWO)

    assert response.code == 200
    assert response.headers["Content-Type"] == "text/yaml; charset=utf-8"
    summary = json.loads(response.headers["X-Jupyter-Repro-Lock"])
    assert summary["platforms"] == ["linux-64", "win-64"]
    assert summary["skipped"] == {}
    assert summary["as_of"] == "2025-07-01T12:00:00Z"
    # conda-lock's own parser reads it.
    path = tmp_path / "conda-lock.yml"
    path.write_bytes(response.body)
    parsed = parse_conda_lock_file(path)
    assert sorted(parsed.metadata.platforms) == ["linux-64", "win-64"]
    by_platform: dict[str, dict[str, str]] = {}
    for package in parsed.package:
        by_platform.setdefault(package.platform, {})[package.name] = package.url
    assert sorted(by_platform["linux-64"].values()) == installed_urls(multi_platform_env.prefix)
    assert "/win-64/libplat-1.1-0.conda" in by_platform["win-64"]["libplat"]
    assert "winonly" in by_platform["win-64"]
    assert all(p.hash.sha256 for p in parsed.package)

    pixi = await jp_fetch(
        "repro", "environments", LOCKME_NAME, "lock", params=[*TWO, ("format", "pixi")]
    )
    (tmp_path / "pixi.lock").write_bytes(pixi.body)
    lock_file = LockFile.from_path(tmp_path / "pixi.lock")
    default = lock_file.default_environment()
    assert default is not None
    assert sorted(p.name for p in default.platforms()) == ["linux-64", "win-64"]
    assert json.loads(pixi.headers["X-Jupyter-Repro-Lock"])["platforms"] == ["linux-64", "win-64"]

    as_json = await jp_fetch(
        "repro", "environments", LOCKME_NAME, "lock", params=[*TWO, ("format", "json")]
    )
    assert as_json.headers["Content-Type"] == "application/json"
    embedded = parse_embedded_lock(json.loads(as_json.body), source="answer")
    assert embedded.platform_names == ("linux-64", "win-64")
    assert embedded.name == LOCKME_NAME


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ([("platform", "noarch")], 400, "cannot lock for platform"),
        ([("platform", "linux-64"), ("platform", "beos-68k")], 400, "cannot lock for platform"),
        ([("format", "toml")], 400, "conda-lock"),
    ],
)
async def test_environment_lock_bad_options_are_400(jp_fetch, params, code, words):
    status, _, body = await answer(
        jp_fetch("repro", "environments", LOCKME_NAME, "lock", params=params)
    )

    assert status == code
    assert words in body["message"]


async def test_environment_lock_of_an_unknown_environment_is_404(jp_fetch):
    status, _, body = await answer(jp_fetch("repro", "environments", "nope", "lock"))

    assert status == 404
    assert "nope" in body["message"]


# -- repro/notebooks/{path}/lock ---------------------------------------------------------------


async def test_notebook_lock_writes_a_file_metadata_or_both_and_restores_without_a_solve(
    jp_fetch, jp_root_dir, multi_platform_env
):
    assert KERNEL in await kernelspecs(jp_fetch)
    notebook = write_notebook(
        jp_root_dir / "proj" / "analysis.ipynb", embedded={"fingerprint": "keep me"}
    )
    original = notebook.read_bytes()
    route = "proj/analysis.ipynb"

    # file: conda-lock.yml beside the notebook, the notebook untouched.
    code, _, body = await post_lock(
        jp_fetch, route, {"target": "file", "platforms": ["linux-64", "osx-arm64"]}
    )
    assert code == 200, body
    assert body["written"] == ["proj/conda-lock.yml"]
    assert body["summary"]["platforms"] == ["linux-64", "osx-arm64"]
    lock = parse_conda_lock((jp_root_dir / "proj" / "conda-lock.yml").read_text())
    assert lock.platform_names == ("linux-64", "osx-arm64")
    assert notebook.read_bytes() == original

    # metadata: the lock and the spec it was made from; every other key kept.
    code, _, body = await post_lock(
        jp_fetch, route, {"target": "metadata", "platforms": ["linux-64", "win-64"]}
    )
    assert code == 200, body
    assert body["written"] == [route]
    saved = json.loads(notebook.read_text())
    ours = saved["metadata"][METADATA_KEY]
    assert ours["fingerprint"] == "keep me"
    assert set(ours["lock"]["platforms"]) == {"linux-64", "win-64"}
    assert f"libplat={LIBPLAT_LATEST}" in ours["environment"]["dependencies"]
    assert ours["exported"]["platform"] == "linux-64"
    assert saved["metadata"]["zeta"] == {"ünïcode": "é ✓"}
    assert saved["metadata"]["kernelspec"]["name"] == KERNEL
    assert "".join(saved["cells"][0]["source"]) == "print(1)\n"
    embedded = parse_embedded_lock(ours["lock"], source="notebook")
    linux = embedded.platform("linux-64")
    assert linux is not None
    assert sorted(p.url for p in linux.conda) == installed_urls(multi_platform_env.prefix)

    # both, as a pixi.lock.
    code, _, body = await post_lock(
        jp_fetch, route, {"target": "both", "format": "pixi", "filename": "pixi.lock"}
    )
    assert code == 200, body
    assert body["written"] == ["proj/pixi.lock", route]
    assert "environments:" in (jp_root_dir / "proj" / "pixi.lock").read_text()
    assert json.loads(notebook.read_text())["metadata"][METADATA_KEY]["fingerprint"] == "keep me"

    # GET ?format=metadata: the value to embed, for an open notebook; nothing written.
    before = notebook.read_bytes()
    response = await jp_fetch(
        "repro",
        "notebooks",
        route,
        "lock",
        params=[("format", "metadata"), ("platform", "linux-64")],
    )
    answer_body = json.loads(response.body)
    assert set(answer_body) == {"metadata", "summary"}
    assert answer_body["summary"]["platforms"] == ["linux-64"]
    assert list(answer_body["metadata"]["lock"]["platforms"]) == ["linux-64"]
    assert answer_body["metadata"]["fingerprint"] == "keep me"
    assert "environment" in answer_body["metadata"]
    assert notebook.read_bytes() == before

    # The dry-run restore of the notebook is its embedded lock, URL for URL: no solve.
    response = await jp_fetch(
        "repro",
        "restore",
        method="POST",
        body=json.dumps({"source": {"notebook": route}, "name": "lockcopy", "dry_run": True}),
    )
    plan = json.loads(response.body)
    assert sorted(p["url"] for p in plan["packages"]) == installed_urls(multi_platform_env.prefix)
    assert not any("solved" in w for w in plan["warnings"])
    assert Path(plan["target"]).name == "lockcopy"
    assert not Path(plan["target"]).exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"target": "file", "filename": "../x.yml"}, "plain file name"),
        ({"target": "file", "filename": "x.yml"}, "plain file name"),
        ({"target": "file", "format": "pixi", "filename": "conda-lock.yml"}, "pixi.lock"),
        ({"target": "file", "format": "json"}, "conda-lock or pixi"),
        ({"target": "disk"}, "'target' must be one of"),
        ({"target": "file", "platforms": "linux-64"}, "list of conda platforms"),
        ({"target": "file", "platforms": ["noarch"]}, "cannot lock for platform"),
        ({"target": "file", "extra": 1}, "extra"),
    ],
)
async def test_notebook_lock_bad_requests_are_400_and_write_nothing(
    jp_fetch, jp_root_dir, body, words
):
    notebook = write_notebook(jp_root_dir / "analysis.ipynb")
    before = notebook.read_bytes()

    code, _, answered = await post_lock(jp_fetch, "analysis.ipynb", body)

    assert code == 400
    assert words in answered["message"]
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["analysis.ipynb"]
    assert notebook.read_bytes() == before


async def test_notebook_lock_without_its_kernel_here_is_404(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "lost.ipynb", kernel="conda-env-gone-py")

    posted = await post_lock(jp_fetch, "lost.ipynb", {"target": "file"})
    got = await answer(jp_fetch("repro", "notebooks", "lost.ipynb", "lock"))
    missing = await post_lock(jp_fetch, "nope.ipynb", {"target": "file"})

    assert posted[0] == got[0] == missing[0] == 404
    assert "not installed here" in posted[2]["message"]
    assert not (jp_root_dir / "conda-lock.yml").exists()
