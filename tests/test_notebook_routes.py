"""repro/environments/{name}/export and repro/notebooks/{path}/environment on a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from jupyter_repro.notebooks.embedded import METADATA_KEY
from jupyter_repro.notebooks.nbjson import dumps_json
from jupyter_repro.specs.export import export_environment
from tests.rig.installation import CondaInstallation
from tests.server_helpers import answer

pytestmark = pytest.mark.timeout(240)

KERNEL = "conda-env-py-py"


@pytest.fixture
def jp_home_dir(rig_installation: CondaInstallation) -> Path:
    """Read-only tests share the session installation (writes go to the server root only)."""
    return rig_installation.home


def write_notebook(path: Path, kernel: str | None = KERNEL, embedded: Any = None) -> Path:
    """A notebook as Jupyter saves it (nbformat's writer), naming `kernel`."""
    nb = nbformat.v4.new_notebook()
    if kernel is not None:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Py", "language": "python"}
    nb.metadata["zeta"] = {"ünïcode": "é ✓ 数据"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Título\n\nSome *text* — “quoted”.\n"),
        nbformat.v4.new_code_cell("print(1)\n", execution_count=1),
    ]
    if embedded is not None:
        nb.metadata[METADATA_KEY] = embedded
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    return path


def nb_route(path: str, action: str = "environment") -> tuple[str, ...]:
    return ("repro", "notebooks", path, action)


# -- repro/environments/{name}/export ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["portable", "exact", "no-builds"])
async def test_environment_export_yaml_is_the_export_of_each_mode(jp_fetch, rig_installation, mode):
    response = await jp_fetch("repro", "environments", "old", "export", params={"mode": mode})

    assert response.code == 200
    assert response.headers["Content-Type"] == "text/yaml; charset=utf-8"
    expected = export_environment(rig_installation.envs["old"], mode, "old").to_yaml()
    assert response.body.decode() == expected
    pkgb = "pkgb=1.0=0" if mode == "exact" else "pkgb=1.0"
    assert pkgb in yaml.safe_load(response.body)["dependencies"]


async def test_environment_export_json_and_explicit(jp_fetch):
    as_json = await jp_fetch("repro", "environments", "py", "export", params={"format": "json"})
    explicit = await jp_fetch(
        "repro", "environments", "py", "export", params={"format": "explicit"}
    )

    assert as_json.headers["Content-Type"] == "application/json"
    assert "pkgc=1.0" in json.loads(as_json.body)["dependencies"]
    assert explicit.headers["Content-Type"].startswith("text/plain")
    text = explicit.body.decode()
    assert "@EXPLICIT" in text
    assert any(line.rsplit("/", 1)[-1].startswith("pkgc-1.0-") for line in text.splitlines())


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"mode": "fuzzy"}, ["portable", "exact", "no-builds"]),
        ({"format": "toml"}, ["yaml", "explicit", "json"]),
        ({"format": "explicit", "mode": "portable"}, ["explicit"]),
    ],
)
async def test_environment_export_bad_options_are_400_naming_the_valid_ones(
    jp_fetch, params, words
):
    code, _, body = await answer(jp_fetch("repro", "environments", "py", "export", params=params))

    assert code == 400
    assert all(word in body["message"] for word in words)


async def test_environment_export_of_an_unknown_environment_is_404(jp_fetch):
    code, _, body = await answer(jp_fetch("repro", "environments", "nope", "export"))

    assert code == 404
    assert "nope" in body["message"]


# -- GET repro/notebooks/{path}/environment ----------------------------------------------------


async def test_notebook_environment_is_the_export_of_its_kernels_environment(
    jp_fetch, jp_root_dir, rig_installation
):
    write_notebook(jp_root_dir / "sub dir" / "analysis.ipynb")

    response = await jp_fetch(*nb_route("sub dir/analysis.ipynb"), params={"mode": "exact"})

    assert response.code == 200
    assert response.headers["X-Jupyter-Repro-Source"] == "environment"
    expected = export_environment(rig_installation.envs["py"], "exact", "py").to_yaml()
    assert response.body.decode() == expected


async def test_notebook_environment_falls_back_to_the_embedded_spec(jp_fetch, jp_root_dir):
    embedded = {"environment": {"name": "elsewhere", "dependencies": ["pkga=1.0"]}}
    write_notebook(jp_root_dir / "moved.ipynb", kernel="conda-env-gone-py", embedded=embedded)

    response = await jp_fetch(*nb_route("moved.ipynb"), params={"format": "json"})

    assert response.headers["X-Jupyter-Repro-Source"] == "embedded"
    assert json.loads(response.body) == {"name": "elsewhere", "dependencies": ["pkga=1.0"]}


@pytest.mark.parametrize(
    ("kernel", "words"),
    [(None, "names no kernel"), ("conda-env-gone-py", "not installed here")],
)
async def test_notebook_environment_without_a_kernel_here_is_404(
    jp_fetch, jp_root_dir, kernel, words
):
    write_notebook(jp_root_dir / "lost.ipynb", kernel=kernel)

    code, _, body = await answer(jp_fetch(*nb_route("lost.ipynb")))

    assert code == 404
    assert words in body["message"]


async def test_a_file_that_is_not_a_notebook_is_400(jp_fetch, jp_root_dir):
    (jp_root_dir / "data.txt").write_text("hello\n")
    (jp_root_dir / "broken.ipynb").write_text("{not json")

    by_name = await answer(jp_fetch(*nb_route("data.txt")))
    by_content = await answer(jp_fetch(*nb_route("broken.ipynb", "drift")))

    assert by_name[0] == 400
    assert ".ipynb" in by_name[2]["message"]
    assert by_content[0] == 400
    assert "not a notebook" in by_content[2]["message"]


@pytest.mark.parametrize("action", ["environment", "drift"])
async def test_a_missing_notebook_is_404(jp_fetch, action):
    code, _, body = await answer(jp_fetch(*nb_route("nope.ipynb", action)))

    assert code == 404
    assert "nope.ipynb" in body["message"]


# -- path escapes --------------------------------------------------------------------------


@pytest.fixture
def escapes(jp_root_dir: Path) -> None:
    """A notebook outside the root, a symlink to it inside, and a hidden notebook."""
    outside = write_notebook(jp_root_dir.parent / "outside.ipynb")
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir / "link-out.ipynb").symlink_to(outside)
    write_notebook(jp_root_dir / ".hidden" / "secret.ipynb")
    write_notebook(jp_root_dir / ".secret.ipynb")


ESCAPES = [
    "../outside.ipynb",
    "sub/../../outside.ipynb",
    "%2E%2E/outside.ipynb",
    "sub/%2e%2e/%2e%2e/outside.ipynb",
    "%2Fetc%2Foutside.ipynb",
    "/" + "tmp/outside.ipynb",
    "link-out.ipynb",
    ".hidden/secret.ipynb",
    ".secret.ipynb",
]


@pytest.mark.parametrize("action", ["environment", "drift"])
@pytest.mark.parametrize("path", ESCAPES)
async def test_paths_leaving_the_root_or_hidden_are_refused(
    http_server_client, jp_base_url, jp_auth_header, escapes, path, action
):
    # Built by hand: jp_fetch would escape the `%` of an encoded `..`.
    url = f"{jp_base_url}repro/notebooks/{path}/{action}"
    response = await http_server_client.fetch(
        url, headers=jp_auth_header, raise_error=False, follow_redirects=False
    )

    # Refused by the root check itself, not by a route that happens not to match.
    assert response.code == 403, response.body
    message = json.loads(response.body)["message"]
    assert "outside the server root" in message or "hidden" in message or "relative" in message


async def test_post_to_an_escaping_path_writes_nothing(
    http_server_client, jp_base_url, jp_auth_header, jp_root_dir, escapes
):
    before = (jp_root_dir.parent / "outside.ipynb").read_bytes()
    for path in ("../outside.ipynb", "%2E%2E/outside.ipynb", "link-out.ipynb"):
        response = await http_server_client.fetch(
            f"{jp_base_url}repro/notebooks/{path}/environment",
            method="POST",
            body=json.dumps({"target": "both"}),
            headers=jp_auth_header,
            raise_error=False,
        )
        assert response.code == 403, (path, response.body)
    assert (jp_root_dir.parent / "outside.ipynb").read_bytes() == before
    assert not (jp_root_dir.parent / "environment.yml").exists()


# -- credentials -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "repro/environments/py/export", None),
        ("GET", "repro/notebooks/a.ipynb/environment", None),
        ("POST", "repro/notebooks/a.ipynb/environment", json.dumps({"target": "file"})),
        ("GET", "repro/notebooks/a.ipynb/drift", None),
    ],
)
async def test_notebook_routes_require_credentials(
    http_server_client, jp_base_url, jp_root_dir, method, path, body
):
    write_notebook(jp_root_dir / "a.ipynb")

    response = await http_server_client.fetch(
        f"{jp_base_url}{path}", method=method, body=body, raise_error=False
    )

    assert response.code == 403
    assert b"pkgc" not in response.body
    assert not (jp_root_dir / "environment.yml").exists()


# -- POST repro/notebooks/{path}/environment ---------------------------------------------------


def without_embedded(text: str) -> dict[str, Any]:
    data = json.loads(text)
    data["metadata"].pop(METADATA_KEY, None)
    return data


async def post_environment(jp_fetch, path: str, body: Any) -> tuple[int, Any, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    return await answer(jp_fetch(*nb_route(path), method="POST", body=raw))


async def test_post_file_writes_environment_yml_beside_the_notebook(
    jp_fetch, jp_root_dir, rig_installation
):
    notebook = write_notebook(jp_root_dir / "work" / "nb.ipynb")
    before = notebook.read_bytes()

    code, _, body = await post_environment(jp_fetch, "work/nb.ipynb", {"target": "file"})

    assert code == 200, body
    assert body["written"] == ["work/environment.yml"]
    expected = export_environment(rig_installation.envs["py"], "portable", "py")
    assert (jp_root_dir / "work" / "environment.yml").read_text() == expected.to_yaml()
    assert body["spec"] == expected.to_dict()
    assert notebook.read_bytes() == before


async def test_post_writes_through_the_contents_manager(jp_fetch, jp_serverapp, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    saved: list[tuple[str, str]] = []
    jp_serverapp.contents_manager.register_pre_save_hook(
        lambda model, path, **kwargs: saved.append((path, model["type"]))
    )

    code, _, body = await post_environment(
        jp_fetch, "nb.ipynb", {"target": "both", "filename": "env.yaml"}
    )

    assert code == 200, body
    assert sorted(saved) == [("env.yaml", "file"), ("nb.ipynb", "file")]
    model = json.loads((await jp_fetch("api", "contents", "env.yaml")).body)
    assert "pkgc=1.0" in model["content"]


async def test_post_metadata_changes_only_the_embedded_key(jp_fetch, jp_root_dir):
    notebook = write_notebook(jp_root_dir / "nb.ipynb")
    before = notebook.read_text(encoding="utf-8")

    code, _, body = await post_environment(
        jp_fetch, "nb.ipynb", {"target": "metadata", "mode": "no-builds", "explicit": True}
    )

    assert code == 200, body
    assert body["written"] == ["nb.ipynb"]
    after = notebook.read_text(encoding="utf-8")
    assert without_embedded(after) == without_embedded(before)
    # Byte layout: what nbformat writes, plus the key.
    assert dumps_json(json.loads(after)) == after
    assert dumps_json(without_embedded(after)) == before
    embedded = json.loads(after)["metadata"][METADATA_KEY]
    assert embedded["environment"] == body["spec"]
    assert embedded["exported"]["mode"] == "no-builds"
    assert any("pkgc-1.0" in url for urls in embedded["explicit"].values() for url in urls)
    assert not (jp_root_dir / "environment.yml").exists()


async def test_post_both_writes_the_file_and_embeds(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")

    code, _, body = await post_environment(jp_fetch, "nb.ipynb", {"target": "both"})

    assert code == 200, body
    assert sorted(body["written"]) == ["environment.yml", "nb.ipynb"]
    notebook = json.loads((jp_root_dir / "nb.ipynb").read_text(encoding="utf-8"))
    on_disk = yaml.safe_load((jp_root_dir / "environment.yml").read_text())
    assert notebook["metadata"][METADATA_KEY]["environment"] == on_disk == body["spec"]


@pytest.mark.parametrize(
    "body",
    [
        {"target": "file", "filename": "../environment.yml"},
        {"target": "file", "filename": "sub/environment.yml"},
        {"target": "file", "filename": ".environment.yml"},
        {"target": "file", "filename": "other.ipynb"},
        {"target": "nowhere"},
        {"mode": "portable"},
        {"target": "file", "mode": "fuzzy"},
        {"target": "file", "surprise": 1},
        "[1, 2]",
        "not json",
    ],
)
async def test_post_bad_bodies_are_400_and_write_nothing(jp_fetch, jp_root_dir, body):
    notebook = write_notebook(jp_root_dir / "nb.ipynb")
    before = sorted(p.name for p in jp_root_dir.rglob("*"))
    content = notebook.read_bytes()

    code, _, answer_body = await post_environment(jp_fetch, "nb.ipynb", body)

    assert code == 400
    assert answer_body["message"]
    assert sorted(p.name for p in jp_root_dir.rglob("*")) == before
    assert notebook.read_bytes() == content


async def test_post_for_a_kernel_missing_here_is_404(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-gone-py")

    code, _, body = await post_environment(jp_fetch, "nb.ipynb", {"target": "both"})

    assert code == 404
    assert "conda-env-gone-py" in body["message"]
    assert not (jp_root_dir / "environment.yml").exists()


async def test_metadata_format_is_the_value_post_would_embed(jp_fetch, jp_root_dir):
    notebook = write_notebook(jp_root_dir / "nb.ipynb")
    before = notebook.read_bytes()

    code, headers, value = await answer(
        jp_fetch(
            *nb_route("nb.ipynb"),
            params={"format": "metadata", "mode": "no-builds", "explicit": "true"},
        )
    )

    assert code == 200, value
    assert notebook.read_bytes() == before  # a GET writes nothing
    assert headers["X-Jupyter-Repro-Source"] == "environment"
    await post_environment(
        jp_fetch, "nb.ipynb", {"target": "metadata", "mode": "no-builds", "explicit": True}
    )
    embedded = json.loads(notebook.read_text(encoding="utf-8"))["metadata"][METADATA_KEY]
    for value_or_embedded in (value, embedded):
        value_or_embedded["exported"].pop("at")
    assert value == embedded


@pytest.mark.parametrize(
    "params", [{"explicit": "yes"}, {"mode": "builds"}], ids=["explicit", "mode"]
)
async def test_metadata_format_bad_options_are_400(jp_fetch, jp_root_dir, params):
    write_notebook(jp_root_dir / "nb.ipynb")
    code, _, body = await answer(
        jp_fetch(*nb_route("nb.ipynb"), params={"format": "metadata", **params})
    )
    assert code == 400, body
