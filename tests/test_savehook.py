"""Strip on save through a real server's contents API, and `repro/notebooks/{path}/strip-policy`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.filemanager import FileContentsManager
from traitlets import TraitError

from jupyter_repro.app import ReproApp
from jupyter_repro.notebooks import policy as policy_module
from jupyter_repro.notebooks.policy import DEFAULT_POLICY, StripPolicy
from jupyter_repro.notebooks.savehook import StripOnSave, strip_in_place
from jupyter_repro.notebooks.strip import MetadataConflict, StripOptions
from tests.server_helpers import answer

ENVIRONMENT = {"environment": {"name": "demo", "dependencies": ["python=3.11"]}}


@pytest.fixture(autouse=True)
def repository_root(jp_root_dir: Path) -> Path:
    """The server root is a git work tree's root: no pyproject.toml above it counts."""
    (jp_root_dir / ".git").mkdir(exist_ok=True)
    policy_module.clear_caches()
    return jp_root_dir


def notebook(*, keep_output: bool | None = None, conflict_last: bool = False) -> dict[str, Any]:
    """A notebook as the frontend sends it: outputs, counts, volatile and protected metadata."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "py"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["jupyter_repro"] = ENVIRONMENT
    if keep_output is not None:
        nb.metadata["keep_output"] = keep_output
    first = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    first.id = "first"
    first.metadata["collapsed"] = False
    first.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3),
        nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
    ]
    second = nbformat.v4.new_markdown_cell("# Title")
    second.id = "second"
    nb.cells = [first, second]
    if conflict_last:
        third = nbformat.v4.new_code_cell("print(2)", execution_count=4)
        third.id = "third"
        third.metadata["keep_output"] = False
        third.metadata["tags"] = ["keep_output"]
        third.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
        nb.cells.append(third)
    return json.loads(json.dumps(nb))


async def save(jp_fetch, path: str, content: Any, kind: str = "notebook") -> None:
    model: dict[str, Any] = {"type": kind, "content": content}
    model["format"] = "json" if kind == "notebook" else "text"
    response = await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model))
    assert response.code in (200, 201)


def on_disk(root: Path, path: str) -> dict[str, Any]:
    return json.loads((root / path).read_text(encoding="utf-8"))


def as_written(nb: dict[str, Any]) -> dict[str, Any]:
    """`nb` as nbformat writes it (lines split): what an unchanged save puts on disk."""
    return json.loads(nbformat.writes(nbformat.from_dict(nb)))


def write_pyproject(folder: Path, table: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f"[tool.jupyter_repro.strip]\n{table}", encoding="utf-8")
    return path


# -- the hook through the contents API -------------------------------------------------------


async def test_a_saved_notebook_is_stripped_on_disk(jp_fetch, jp_root_dir):
    await save(jp_fetch, "nb.ipynb", notebook())

    saved = on_disk(jp_root_dir, "nb.ipynb")
    code = saved["cells"][0]
    assert code["outputs"] == []
    assert code["execution_count"] is None
    assert "collapsed" not in code["metadata"]
    assert "widgets" not in saved["metadata"]
    embedded = saved["metadata"]["jupyter_repro"]
    # Never stripped; the removed outputs' fingerprints added (tests/test_fingerprint.py).
    assert embedded == {**ENVIRONMENT, "fingerprints": {"first": embedded["fingerprints"]["first"]}}
    assert saved["metadata"]["kernelspec"]["name"] == "python3"
    assert [cell["id"] for cell in saved["cells"]] == ["first", "second"]  # valid ids kept


async def test_the_open_document_is_not_stripped(jp_fetch):
    # The save answers with a model without content; the frontend keeps its own outputs.
    model = {"type": "notebook", "format": "json", "content": notebook()}
    response = await jp_fetch("api", "contents", "nb.ipynb", method="PUT", body=json.dumps(model))

    assert json.loads(response.body)["content"] is None


async def test_cells_without_ids_get_stable_ones(jp_fetch, jp_root_dir):
    nb = notebook()
    for cell in nb["cells"]:
        del cell["id"]

    await save(jp_fetch, "a.ipynb", nb)
    await save(jp_fetch, "b.ipynb", nb)

    ids = [cell["id"] for cell in on_disk(jp_root_dir, "a.ipynb")["cells"]]
    assert ids == [cell["id"] for cell in on_disk(jp_root_dir, "b.ipynb")["cells"]]
    assert len(set(ids)) == 2


async def test_on_save_false_in_the_project_keeps_everything(jp_fetch, jp_root_dir):
    write_pyproject(jp_root_dir, "on_save = false\n")
    original = notebook()
    (jp_root_dir / "sub").mkdir()

    await save(jp_fetch, "sub/nb.ipynb", original)

    assert on_disk(jp_root_dir, "sub/nb.ipynb") == as_written(original)


async def test_keep_output_in_the_project_keeps_outputs_but_not_counts(jp_fetch, jp_root_dir):
    write_pyproject(jp_root_dir, "keep_output = true\n")

    await save(jp_fetch, "nb.ipynb", notebook())

    code = on_disk(jp_root_dir, "nb.ipynb")["cells"][0]
    assert [output["output_type"] for output in code["outputs"]] == ["execute_result", "stream"]
    assert code["execution_count"] is None
    assert code["outputs"][0]["execution_count"] is None


async def test_keep_output_in_the_notebooks_metadata_beats_the_project(jp_fetch, jp_root_dir):
    write_pyproject(jp_root_dir, "keep_output = false\n")

    await save(jp_fetch, "nb.ipynb", notebook(keep_output=True))

    assert len(on_disk(jp_root_dir, "nb.ipynb")["cells"][0]["outputs"]) == 2


async def test_a_cell_with_contradicting_keep_output_saves_the_notebook_unchanged(
    jp_fetch, jp_root_dir, caplog
):
    original = notebook(conflict_last=True)
    caplog.set_level(logging.WARNING)

    await save(jp_fetch, "nb.ipynb", original)

    # The earlier cells, which a stripper editing in place would already have stripped,
    # are as they were.
    assert on_disk(jp_root_dir, "nb.ipynb") == as_written(original)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("nb.ipynb" in w and "keep_output" in w for w in warnings), warnings


async def test_a_broken_pyproject_saves_the_notebook_unchanged(jp_fetch, jp_root_dir, caplog):
    write_pyproject(jp_root_dir, "keep_outputs = true\n")
    original = notebook()
    caplog.set_level(logging.WARNING)

    await save(jp_fetch, "nb.ipynb", original)

    assert on_disk(jp_root_dir, "nb.ipynb") == as_written(original)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("pyproject.toml" in w and "keep_outputs" in w for w in warnings), warnings


@pytest.mark.parametrize("name", ["notes.txt", "script.py", "data.json"])
async def test_other_files_are_untouched(jp_fetch, jp_root_dir, name):
    # Text that looks like a notebook with outputs: only notebook models are stripped.
    text = json.dumps(notebook(), indent=3) + "\n"

    await save(jp_fetch, name, text, kind="file")

    assert (jp_root_dir / name).read_text(encoding="utf-8") == text


def mark_saved(model: dict[str, Any], **kwargs: Any) -> None:
    """A user's own pre-save hook."""
    if model["type"] == "notebook":
        model["content"]["metadata"]["user_hook"] = kwargs["path"]


class TestTheUsersHook:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config, "ContentsManager": {"pre_save_hook": mark_saved}}

    async def test_the_users_pre_save_hook_still_runs(self, jp_fetch, jp_root_dir, jp_serverapp):
        await save(jp_fetch, "nb.ipynb", notebook())

        saved = on_disk(jp_root_dir, "nb.ipynb")
        assert saved["metadata"]["user_hook"] == "nb.ipynb"
        assert saved["cells"][0]["outputs"] == []
        assert jp_serverapp.contents_manager.pre_save_hook is mark_saved


class TestServerConfiguration:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {
            **jp_server_config,
            "ReproApp": {"strip_policy": {"keep_output": True, "keep_count": True}},
        }

    async def test_the_server_policy_beats_the_project(self, jp_fetch, jp_root_dir):
        write_pyproject(jp_root_dir, "keep_output = false\n")

        await save(jp_fetch, "nb.ipynb", notebook())

        code = on_disk(jp_root_dir, "nb.ipynb")["cells"][0]
        assert len(code["outputs"]) == 2
        assert code["execution_count"] == 3

    async def test_the_route_reports_it(self, jp_fetch, jp_root_dir):
        await save(jp_fetch, "nb.ipynb", notebook())

        summary = await strip_policy(jp_fetch, "nb.ipynb")

        assert summary["keep_output"] is True
        assert summary["options"]["keep_count"] is True
        assert summary["sources"] == ["server configuration"]


class TestStripOnSaveOff:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config, "ReproApp": {"strip_on_save": False}}

    async def test_strip_on_save_false_beats_the_project(self, jp_fetch, jp_root_dir):
        write_pyproject(jp_root_dir, "on_save = true\n")
        original = notebook()

        await save(jp_fetch, "nb.ipynb", original)

        assert on_disk(jp_root_dir, "nb.ipynb") == as_written(original)
        assert (await strip_policy(jp_fetch, "nb.ipynb"))["on_save"] is False


def test_an_invalid_server_policy_is_refused_naming_the_key():
    with pytest.raises(TraitError, match=r"ReproApp\.strip_policy: .*'keep_outputs'"):
        ReproApp(strip_policy={"keep_outputs": True})
    with pytest.raises(TraitError, match="'max_size' must be a size"):
        ReproApp(strip_policy={"max_size": "big"})


async def start_extensions(serverapp) -> None:
    """Start extensions as `jupyter server` does once every one has loaded (pytest-jupyter's
    server never starts its io loop, which does it)."""
    await serverapp.extension_manager.start_all_extensions()


class TestJupytext:
    """jupytext replaces the contents manager after jupyter_repro loaded."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        config = json.loads(json.dumps(jp_server_config))
        config["ServerApp"]["jpserver_extensions"]["jupyterlab_jupytext"] = True
        return config

    async def test_notebooks_are_still_stripped(self, jp_fetch, jp_root_dir, jp_serverapp):
        manager = jp_serverapp.contents_manager
        assert hasattr(manager, "formats"), type(manager)  # jupytext's manager serves saves
        await start_extensions(jp_serverapp)
        await start_extensions(jp_serverapp)  # registering again changes nothing

        await save(jp_fetch, "nb.ipynb", notebook())

        assert on_disk(jp_root_dir, "nb.ipynb")["cells"][0]["outputs"] == []
        hooks = [h for h in manager._pre_save_hooks if isinstance(h, StripOnSave)]
        assert len(hooks) == 1  # registered once, however often registration ran

    async def test_a_paired_notebook_is_stripped_and_its_script_written(
        self, jp_fetch, jp_root_dir, jp_serverapp
    ):
        await start_extensions(jp_serverapp)
        nb = notebook()
        nb["metadata"]["jupytext"] = {"formats": "ipynb,py:percent"}

        await save(jp_fetch, "paired.ipynb", nb)

        assert on_disk(jp_root_dir, "paired.ipynb")["cells"][0]["outputs"] == []
        assert "1 + 1" in (jp_root_dir / "paired.py").read_text(encoding="utf-8")


# -- the hook on its own ---------------------------------------------------------------------


@pytest.mark.parametrize("keep_output", [None, True], ids=["outputs-dropped", "outputs-kept"])
def test_stripping_is_all_or_nothing(keep_output):
    # With outputs kept, their execution counts are what a stripper edits in place.
    original = notebook(keep_output=keep_output, conflict_last=True)
    nb = json.loads(json.dumps(original))

    with pytest.raises(MetadataConflict):
        strip_in_place(nb, DEFAULT_POLICY)

    assert nb == original


def test_a_malformed_notebook_is_left_as_it_came():
    nb = notebook()
    # Stripped up to the last cell, whose metadata is no mapping.
    nb["cells"].append({"cell_type": "code", "metadata": [], "outputs": [], "source": ""})
    original = json.loads(json.dumps(nb))

    with pytest.raises(ValueError, match="cannot strip"):
        strip_in_place(nb, StripPolicy(StripOptions(keep_count=False)))

    assert nb == original


def test_output_data_is_shared_not_copied():
    nb = notebook()
    data = nb["cells"][0]["outputs"][0]["data"]
    kept = StripPolicy(StripOptions(keep_output=True))

    assert strip_in_place(nb, kept) is True  # execution counts went

    assert nb["cells"][0]["outputs"][0]["data"] is data


def test_the_hook_ignores_models_that_are_not_notebooks(tmp_path):
    hook = StripOnSave()
    model = {"type": "file", "content": json.dumps(notebook())}
    before = json.loads(json.dumps(model))

    hook(model=model, path="x.ipynb", contents_manager=object())

    assert model == before


def test_a_manager_without_files_uses_the_server_policy():
    hook = StripOnSave({"keep_output": True})
    model = {"type": "notebook", "content": notebook()}

    hook(model=model, path="nb.ipynb", contents_manager=object())

    assert len(model["content"]["cells"][0]["outputs"]) == 2
    assert model["content"]["cells"][0]["execution_count"] is None


# -- GET repro/notebooks/{path}/strip-policy -------------------------------------------------


async def strip_policy(jp_fetch, path: str) -> dict[str, Any]:
    response = await jp_fetch("repro", "notebooks", path, "strip-policy")
    assert response.code == 200
    return json.loads(response.body)


async def test_the_route_gives_the_default_policy(jp_fetch):
    await save(jp_fetch, "nb.ipynb", notebook(keep_output=True))

    summary = await strip_policy(jp_fetch, "nb.ipynb")

    # The notebook's own metadata is the frontend's business: not applied here.
    assert summary["keep_output"] is False
    assert summary["on_save"] is True
    assert summary["sources"] == []
    assert summary["options"]["keep_id"] is True


async def test_the_route_names_the_project_file_relative_to_the_root(
    jp_fetch, jp_root_dir, tmp_path
):
    # A project whose notebooks are served from a subfolder: its pyproject.toml is above
    # the root, and the answer must not reveal where the root is.
    (jp_root_dir / ".git").rmdir()
    (tmp_path / ".git").mkdir(exist_ok=True)
    write_pyproject(jp_root_dir.parent, "keep_output = true\non_save = false\n")
    (jp_root_dir / "sub").mkdir()
    write_pyproject(jp_root_dir / "sub", "keep_count = true\n")
    await save(jp_fetch, "nb.ipynb", notebook())
    await save(jp_fetch, "sub/nb.ipynb", notebook())

    top = await strip_policy(jp_fetch, "nb.ipynb")
    sub = await strip_policy(jp_fetch, "sub/nb.ipynb")

    assert top["keep_output"] is True
    assert top["on_save"] is False
    assert top["sources"] == ["../pyproject.toml"]
    assert sub["sources"] == ["sub/pyproject.toml"]
    assert sub["options"]["keep_count"] is True
    assert sub["keep_output"] is False


async def test_a_broken_policy_is_422_without_the_roots_location(jp_fetch, jp_root_dir):
    (jp_root_dir / "nb.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    write_pyproject(jp_root_dir, 'max_size = "huge"\n')

    code, _, body = await answer(jp_fetch("repro", "notebooks", "nb.ipynb", "strip-policy"))

    assert code == 422
    assert body["message"].startswith("pyproject.toml: 'max_size' must be a size")
    assert str(jp_root_dir) not in body["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [("missing.ipynb", 404), ("notes.txt", 400), ("%2E%2E/outside.ipynb", 403)],
)
async def test_the_route_refuses_bad_paths(
    http_server_client, jp_base_url, jp_auth_header, jp_root_dir, path, status
):
    (jp_root_dir.parent / "outside.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (jp_root_dir / "notes.txt").write_text("{}")

    # Built by hand: jp_fetch would escape the `%` of an encoded `..`.
    response = await http_server_client.fetch(
        f"{jp_base_url}repro/notebooks/{path}/strip-policy",
        headers=jp_auth_header,
        raise_error=False,
    )

    assert response.code == status, response.body


def test_a_path_outside_the_root_is_neither_looked_up_nor_stripped(tmp_path, caplog):
    # Pre-save hooks run before the manager checks the path: the hook sees hostile paths.
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\nbogus = 1\n")
    manager = FileContentsManager(root_dir=str(root))
    model = {"type": "notebook", "content": notebook()}
    before = json.loads(json.dumps(model))
    caplog.set_level(logging.WARNING)

    StripOnSave()(model=model, path="../nb.ipynb", contents_manager=manager)

    assert model == before
    assert any("outside" in r.getMessage() or "no file" in r.getMessage() for r in caplog.records)
    assert not any("bogus" in r.getMessage() for r in caplog.records)


def test_a_notebook_in_a_symlinked_folder_follows_its_real_project(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "real" / "pyproject.toml").write_text("[tool.jupyter_repro.strip]\nkeep_count = true\n")
    (root / "link").symlink_to(root / "real")
    manager = FileContentsManager(root_dir=str(root))

    policy = StripOnSave().policy_for("link/nb.ipynb", manager)

    assert policy.options.keep_count is True
    assert policy.sources == (str(root / "real" / "pyproject.toml"),)
