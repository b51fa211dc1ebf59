"""Security and fault holes of the REST routes, found under attack, against a real server.

- writes never follow a symlink swapped in after the route's checks (a race);
- routes that read or write the server's files also need the Authorizer's `contents`
  permission, and a denied user learns nothing of a file;
- input-shaped failures (too long, NUL, lone surrogates, absurd JSON) are 4xx with a message.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jupyter_server.auth import Authorizer

from jupyter_repro.handlers import AUTH_RESOURCE
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.server_helpers import answer
from tests.test_notebook_routes import nb_route, write_notebook

pytestmark = pytest.mark.timeout(240)

SECRET = "TOP-SECRET-LINE-4711"
NAME_MAX = 255  # bytes of a file name, and of a path, that Linux file systems take
PATH_MAX = 4096


@pytest.fixture
def jp_home_dir(rig_installation: CondaInstallation) -> Path:
    """The rig's session installation: the notebooks' kernel `conda-env-py-py` exists."""
    return rig_installation.home


async def post(jp_fetch, *parts: str, body: Any) -> tuple[int, Any, Any]:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return await answer(jp_fetch(*parts, method="POST", body=raw))


def assert_json_error(code: int, body: Any, status: int) -> None:
    assert code == status, (code, body)
    assert isinstance(body, dict), body
    assert set(body) <= {"message", "reason", "traceback"}, body
    assert body["message"], body


# -- item 4: a symlink swapped in between the check and the write ----------------------------


class Swapper:
    """A thread that keeps replacing `path` by a symlink to `target` and back by a regular
    file holding `content`, each swap atomic (a rename), as fast as it can."""

    def __init__(self, path: Path, target: Path, content: bytes) -> None:
        self.path, self.target, self.content = path, target, content
        self.stop = threading.Event()
        self.swaps = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        link = self.path.with_name(".swap-link")
        regular = self.path.with_name(".swap-file")
        while not self.stop.is_set():
            link.unlink(missing_ok=True)
            link.symlink_to(self.target)
            os.replace(link, self.path)
            regular.write_bytes(self.content)
            os.replace(regular, self.path)
            self.swaps += 1

    def __enter__(self) -> Swapper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def outside(jp_root_dir: Path) -> Path:
    """A folder beside (not in) the server root."""
    folder = jp_root_dir.parent / "outside"
    folder.mkdir()
    return folder


REQUESTS = 50


async def test_writing_environment_yml_never_follows_a_swapped_in_symlink(
    jp_fetch, jp_root_dir, outside
):
    write_notebook(jp_root_dir / "nb.ipynb")
    victim = outside / "victim.txt"
    victim.write_text("the outside file\n")
    before = victim.read_bytes()

    statuses = []
    with Swapper(jp_root_dir / "environment.yml", victim, b"dependencies: []\n") as swapper:
        for _ in range(REQUESTS):
            code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": "file"})
            statuses.append(code)
            # 403 when the check itself saw the symlink (404 if it kept changing while being
            # resolved); never a server error.
            assert code in (200, 403, 404), body
            assert victim.read_bytes() == before, f"written through the symlink: {code} {body}"
    assert swapper.swaps >= 10  # the swaps really raced the requests
    assert 200 in statuses
    assert victim.read_bytes() == before


async def test_embedding_never_follows_a_notebook_swapped_for_a_symlink(
    jp_fetch, jp_root_dir, outside
):
    notebook = write_notebook(jp_root_dir / "nb.ipynb")
    victim = write_notebook(outside / "victim.ipynb")
    before = victim.read_bytes()

    statuses = []
    with Swapper(notebook, victim, notebook.read_bytes()) as swapper:
        for _ in range(REQUESTS):
            code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": "metadata"})
            statuses.append(code)
            assert code in (200, 403, 404), body
            assert victim.read_bytes() == before, f"written through the symlink: {code} {body}"
    assert swapper.swaps >= 10  # the swaps really raced the requests
    assert 200 in statuses
    assert victim.read_bytes() == before


async def test_a_folder_swapped_for_a_symlink_is_not_followed(jp_fetch, jp_root_dir, outside):
    """The folder of the notebook itself turns into a symlink out of the root."""
    folder = jp_root_dir / "work"
    write_notebook(folder / "nb.ipynb")
    write_notebook(outside / "nb.ipynb")
    spare = jp_root_dir / "work-spare"

    statuses = []
    stop = threading.Event()

    def swap_folder() -> None:
        link = jp_root_dir / ".work-link"
        while not stop.is_set():
            link.unlink(missing_ok=True)
            link.symlink_to(outside, target_is_directory=True)
            os.rename(folder, spare)
            os.replace(link, folder)  # `work` is now a symlink to the outside folder
            os.unlink(folder)
            os.rename(spare, folder)

    thread = threading.Thread(target=swap_folder, daemon=True)
    thread.start()
    try:
        for _ in range(REQUESTS):
            code, _, body = await post(
                jp_fetch, *nb_route("work/nb.ipynb"), body={"target": "file"}
            )
            statuses.append(code)
            # 404 or 400 (cannot read the notebook): the folder was away for a moment.
            assert code in (200, 400, 403, 404), body
            assert not (outside / "environment.yml").exists(), (code, body)
    finally:
        stop.set()
        thread.join(10)
    assert not (outside / "environment.yml").exists()


async def test_a_write_still_runs_the_contents_managers_save_hooks_and_event(
    jp_fetch, jp_serverapp, jp_root_dir
):
    write_notebook(jp_root_dir / "nb.ipynb")
    manager = jp_serverapp.contents_manager
    pre: list[tuple[str, str]] = []
    post_hooks: list[str] = []
    events: list[dict[str, Any]] = []

    def pre_hook(model: dict[str, Any], path: str, **kwargs: Any) -> None:
        pre.append((path, model["type"]))
        if path.endswith(".yml"):
            model["content"] = "# stamped by a pre-save hook\n" + model["content"]

    manager.register_pre_save_hook(pre_hook)
    manager.register_post_save_hook(lambda model, os_path, **kwargs: post_hooks.append(os_path))

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=manager.event_schema_id, listener=listener)

    code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": "both"})

    assert code == 200, body
    assert sorted(pre) == [("environment.yml", "file"), ("nb.ipynb", "file")]
    assert sorted(Path(p).name for p in post_hooks) == ["environment.yml", "nb.ipynb"]
    assert {(e["action"], e["path"]) for e in events} >= {
        ("save", "environment.yml"),
        ("save", "nb.ipynb"),
    }
    text = (jp_root_dir / "environment.yml").read_text()
    assert text.startswith("# stamped by a pre-save hook\n")


async def test_an_existing_file_keeps_its_permissions(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "environment.yml").write_text("old\n")
    os.chmod(jp_root_dir / "environment.yml", 0o640)
    os.chmod(jp_root_dir / "nb.ipynb", 0o600)

    code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": "both"})

    assert code == 200, body
    assert (jp_root_dir / "environment.yml").stat().st_mode & 0o777 == 0o640
    assert (jp_root_dir / "nb.ipynb").stat().st_mode & 0o777 == 0o600
    assert not [p.name for p in jp_root_dir.iterdir() if p.name.endswith(".tmp")]


# -- item 9: the Authorizer's verdict on `contents` -------------------------------------------


class DenyContents(Authorizer):
    """Allows `repro` and everything else, except the listed actions on `contents`."""

    denied: frozenset[str] = frozenset()

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "contents" and action in self.denied)


class DenyContentsRead(DenyContents):
    denied = frozenset({"read"})


class DenyContentsWrite(DenyContents):
    denied = frozenset({"write"})


def server_config(authorizer: type[Authorizer]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_repro": True},
            "allow_unauthenticated_access": False,
            "authorizer_class": authorizer,
        }
    }


@pytest.fixture
def files(jp_root_dir: Path, rig_channel: RigChannel) -> dict[str, bytes]:
    """A notebook, an environment.yml whose text is an invalid spec holding a secret, a
    pyproject.toml with an invalid policy holding it too; their bytes by name."""
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "secret.yml").write_text(f"dependencies:\n  - {SECRET} ][ {{\n")
    (jp_root_dir / "pyproject.toml").write_text(
        f'[tool.jupyter_repro.strip]\nkeep_output = "{SECRET}"\n'
    )
    return {p.name: p.read_bytes() for p in jp_root_dir.iterdir() if p.is_file()}


def unchanged(root: Path, files: dict[str, bytes]) -> bool:
    now = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    return now == files


READ_ROUTES = [
    ("GET", nb_route("nb.ipynb"), None),
    ("GET", nb_route("nb.ipynb"), {"format": "metadata"}),
    ("GET", nb_route("nb.ipynb", "drift"), None),
    ("GET", nb_route("nb.ipynb", "strip-policy"), None),
]
RESTORES = [
    {"source": {"file": "secret.yml"}, "dry_run": True},
    {"source": {"notebook": "nb.ipynb"}, "dry_run": True},
    {"source": {"file": "nb.ipynb"}, "dry_run": True},
]


class TestContentsReadDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsRead)

    async def test_the_authorizer_really_denies_reading_files(self, jp_fetch, files):
        code, _, _ = await answer(jp_fetch("api", "contents", "nb.ipynb"))
        assert code == 403
        code, _, _ = await answer(jp_fetch("repro", "status"))
        assert code == 200  # repro itself is allowed

    @pytest.mark.parametrize(("method", "parts", "params"), READ_ROUTES)
    async def test_routes_reading_notebooks_are_403(
        self, jp_fetch, jp_root_dir, files, method, parts, params
    ):
        code, _, body = await answer(jp_fetch(*parts, method=method, params=params or {}))

        assert_json_error(code, body, 403)
        assert "read" in body["message"]
        assert SECRET not in json.dumps(body)
        assert "pkgc" not in json.dumps(body)

    @pytest.mark.parametrize("body", RESTORES, ids=["file", "notebook", "notebook-as-file"])
    async def test_restore_from_a_file_is_403_and_quotes_nothing(
        self, jp_fetch, jp_root_dir, files, body
    ):
        code, _, answer_body = await post(jp_fetch, "repro", "restore", body=body)

        assert_json_error(code, answer_body, 403)
        assert SECRET not in json.dumps(answer_body)

    async def test_a_missing_file_is_403_too(self, jp_fetch, files):
        # Not 404: a denied user does not learn which files exist.
        body = {"source": {"file": "nope.yml"}, "dry_run": True}
        code, _, answer_body = await post(jp_fetch, "repro", "restore", body=body)
        assert_json_error(code, answer_body, 403)

    async def test_restore_from_content_is_still_allowed(self, jp_fetch, files, rig_channel):
        content = f"channels:\n  - {rig_channel.url}\ndependencies:\n  - pkgc\n"
        body = {"source": {"content": content}, "name": "fromtext", "dry_run": True}
        code, _, plan = await post(jp_fetch, "repro", "restore", body=body)
        assert code == 200, plan

    @pytest.mark.parametrize("target", ["file", "metadata", "both"])
    async def test_writing_is_403_and_writes_nothing(self, jp_fetch, jp_root_dir, files, target):
        code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": target})

        assert_json_error(code, body, 403)
        assert unchanged(jp_root_dir, files)


class TestContentsWriteDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsWrite)

    @pytest.mark.parametrize("target", ["file", "metadata", "both"])
    async def test_writing_is_403_and_writes_nothing(self, jp_fetch, jp_root_dir, files, target):
        code, _, body = await post(
            jp_fetch, *nb_route("nb.ipynb"), body={"target": target, "filename": "env.yml"}
        )

        assert_json_error(code, body, 403)
        assert "write" in body["message"]
        assert unchanged(jp_root_dir, files)
        assert not (jp_root_dir / "env.yml").exists()

    async def test_reading_is_still_allowed(self, jp_fetch, files):
        code, _, _ = await answer(jp_fetch(*nb_route("nb.ipynb")))
        assert code == 200
        code, _, drift = await answer(jp_fetch(*nb_route("nb.ipynb", "drift")))
        assert code == 200, drift


class DenyRepro(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != AUTH_RESOURCE


class TestReproDeniedContentsAllowed:
    """The `contents` permission never stands in for `repro`."""

    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyRepro)

    async def test_writing_is_403(self, jp_fetch, jp_root_dir, files):
        code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body={"target": "both"})
        assert code == 403, body
        assert unchanged(jp_root_dir, files)


# -- item 10: input-shaped failures are 4xx with a message -----------------------------------


async def test_a_filename_longer_than_the_file_system_takes_is_400(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    before = sorted(p.name for p in jp_root_dir.iterdir())

    code, _, body = await post(
        jp_fetch, *nb_route("nb.ipynb"), body={"target": "file", "filename": "a" * 300 + ".yml"}
    )

    assert_json_error(code, body, 400)
    assert str(NAME_MAX) in body["message"]
    assert sorted(p.name for p in jp_root_dir.iterdir()) == before


@pytest.mark.parametrize(
    "raw",
    [
        '{"target": "file", "filename": "\\ud800.yml"}',
        '{"target": "file", "filename": "a\\u0000.yml"}',
        '{"target": "file", "filename": "' + "é" * 200 + '.yml"}',  # 200 characters, 404 bytes
    ],
    ids=["lone-surrogate", "nul", "multibyte-too-long"],
)
async def test_filenames_no_file_system_takes_are_400(jp_fetch, jp_root_dir, raw):
    write_notebook(jp_root_dir / "nb.ipynb")

    code, _, body = await post(jp_fetch, *nb_route("nb.ipynb"), body=raw)

    assert_json_error(code, body, 400)
    assert not (jp_root_dir / "environment.yml").exists()


@pytest.mark.parametrize(
    "raw",
    [
        '{"source": {"file": "\\ud800.yml"}, "dry_run": true}',
        '{"source": {"notebook": "\\udfff.ipynb"}, "dry_run": true}',
        '{"source": {"file": "a\\u0000.yml"}, "dry_run": true}',
        json.dumps({"source": {"file": "a/" * (PATH_MAX // 2) + "b.yml"}, "dry_run": True}),
        "[" * 100_000 + "]" * 100_000,
        '{"source": {"content": 1}}',
        '{"source": {"file": ["x"]}}',
        '{"source": {"content": "x"}, "dry_run": "yes"}',
    ],
    ids=[
        "surrogate-file",
        "surrogate-notebook",
        "nul",
        "too-long",
        "deep-json",
        "int-content",
        "list-path",
        "string-bool",
    ],
)
async def test_restore_bodies_no_file_system_takes_are_400(jp_fetch, raw):
    code, _, body = await post(jp_fetch, "repro", "restore", body=raw)
    assert_json_error(code, body, 400)


@pytest.mark.parametrize("action", ["environment", "drift", "strip-policy"])
@pytest.mark.parametrize(
    "path",
    ["a%00b.ipynb", "a/" * (PATH_MAX // 2) + "b.ipynb"],
    ids=["nul", "too-long"],
)
async def test_notebook_paths_no_file_system_takes_are_400(
    http_server_client, jp_base_url, jp_auth_header, path, action
):
    response = await http_server_client.fetch(
        f"{jp_base_url}repro/notebooks/{path}/{action}",
        headers=jp_auth_header,
        raise_error=False,
    )
    body = json.loads(response.body)
    assert_json_error(response.code, body, 400)


async def test_a_name_the_os_refuses_in_the_path_is_not_a_500(jp_fetch, jp_root_dir):
    """A component longer than NAME_MAX: the OS says ENAMETOOLONG; the route says 404."""
    code, _, body = await answer(jp_fetch(*nb_route("x" * 300 + "/nb.ipynb", "drift")))
    assert code in (400, 404), body


@pytest.mark.parametrize(
    ("route", "params"),
    [
        (("repro", "environments", "py", "export"), {"mode": ""}),
        (nb_route("nb.ipynb"), {"mode": ""}),
        (nb_route("nb.ipynb"), {"mode": "", "format": "json"}),
        (nb_route("nb.ipynb"), {"mode": "", "format": "metadata"}),
        (("repro", "environments", "py", "export"), {"format": ""}),
    ],
    ids=["export", "notebook", "notebook-json", "notebook-metadata", "empty-format"],
)
async def test_an_empty_mode_or_format_is_400_like_any_unknown_one(
    jp_fetch, jp_root_dir, route, params
):
    write_notebook(jp_root_dir / "nb.ipynb")
    code, _, body = await answer(jp_fetch(*route, params=params))
    assert_json_error(code, body, 400)
    assert "portable" in body["message"] or "yaml" in body["message"]


async def test_an_unsupported_method_is_405_naming_the_allowed_ones(
    http_server_client, jp_base_url, jp_auth_header
):
    routes = (("restore", {"POST"}), ("notebooks/nb.ipynb/environment", {"GET", "POST"}))
    for path, allowed in routes:
        for method in ("TRACE", "PUT"):
            response = await http_server_client.fetch(
                f"{jp_base_url}repro/{quote(path)}",
                method=method,
                headers=jp_auth_header,
                body=b"{}" if method == "PUT" else None,
                raise_error=False,
                allow_nonstandard_methods=True,
            )
            assert response.code == 405, (path, method, response.body)
            methods = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allowed <= methods, (path, methods)
