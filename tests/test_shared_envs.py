"""Shared (administrator's, read-only) environments: discovery, kernels, the REST API, restores.

Real conda-format environments built offline with the rig, in folders locked down as an
administrator leaves them (owned by another system user when the tests run as root), a real
Jupyter server, and, for the system condarc's envs dirs, a process of another real user.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from jupyter_repro.environments.catalog import EnvironmentCatalog
from jupyter_repro.environments.discovery import USUAL_ROOT_NAMES, EnvironmentDiscovery
from jupyter_repro.kernels.manager import CondaKernelSpecManager
from jupyter_repro.restore.errors import NameTaken, SharedTarget
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.export import host_platform
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.server_helpers import answer, kernelspecs, run_in_kernel, start_kernel
from tests.shared_folders import (
    ADMIN_USER,
    IS_ROOT,
    STUDENT_USER,
    lock_down,
    make_shared_envs,
    remove_tree,
    run_as,
    system_users,
    tree_state,
    unlock,
)

pytestmark = pytest.mark.timeout(240)

OPENAPI = json.loads(
    (Path(__file__).resolve().parent.parent / "jupyter_repro" / "openapi.json").read_text()
)


def schema_errors(document: Any, schema_name: str) -> list[str]:
    """Where `document` disagrees with a schema of the shipped OpenAPI document."""
    validator = Draft202012Validator({**OPENAPI, "$ref": f"#/components/schemas/{schema_name}"})
    return [error.message for error in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, pwd.struct_passwd]]:
    """The administrator and a student as real system users (root runs only)."""
    if not IS_ROOT:
        yield {}
        return
    with system_users() as made:
        yield made


@pytest.fixture
def admin(users) -> pwd.struct_passwd | None:
    return users.get(ADMIN_USER)


def discovery_of(inst: CondaInstallation, tmp_path: Path, **kwargs: Any) -> EnvironmentDiscovery:
    """Discovery confined to `inst`'s HOME (no machine folders)."""
    kwargs.setdefault("server_prefix", tmp_path / "server-prefix")
    kwargs.setdefault("usual_roots", [inst.home / name for name in USUAL_ROOT_NAMES])
    kwargs.setdefault("system_condarc_dirs", [tmp_path / "etc-conda"])
    return EnvironmentDiscovery(environ=inst.environ(), home=inst.home, **kwargs)


def spec_source(channel: RigChannel, name: str | None = None) -> Any:
    head = f"name: {name}\n" if name else ""
    return load_source(content=f"{head}channels:\n  - {channel.url}\ndependencies:\n  - pkgc\n")


@pytest.fixture
def shared_folder(tmp_path: Path) -> Iterator[Path]:
    """`<tmp>/srv/conda/envs`, as administrators name it; writable again afterwards."""
    folder = tmp_path / "srv" / "conda" / "envs"
    folder.mkdir(parents=True)
    yield folder.resolve()
    unlock(tmp_path / "srv")


# -- discovery, catalog, kernels ------------------------------------------------------------


def test_a_configured_shared_folder_is_listed_and_marked_shared(
    conda_installation: CondaInstallation, tmp_path, shared_folder, admin
):
    inst = conda_installation
    mine = inst.create_env("mine", ["python", "ipykernel"])
    shared = make_shared_envs(inst, shared_folder, ["course"], tmp_path / "pkgs")
    # An administrator's environment kept elsewhere and linked into the shared folder.
    elsewhere = make_shared_envs(inst, tmp_path / "disk2", ["big"], tmp_path / "pkgs")["big"]
    (shared_folder / "big").symlink_to(elsewhere)
    lock_down(shared_folder.parent.parent, admin)

    found = discovery_of(inst, tmp_path, shared_envs_dirs=[shared_folder]).discover()

    flags = {e.prefix: e.shared for e in found.environments}
    assert flags == {
        inst.root_prefix: False,
        mine: False,
        shared["course"]: True,
        elsewhere: True,
    }
    assert found.shared_dirs == (shared_folder,)
    # Not one of conda's envs dirs: conda itself would not look there.
    assert shared_folder not in found.envs_dirs

    catalog = EnvironmentCatalog(discovery_of(inst, tmp_path, shared_envs_dirs=[shared_folder]))
    summaries = {s["name"]: s for s in catalog.summaries()}
    assert {name: s["shared"] for name, s in summaries.items()} == {
        "base": False,
        "mine": False,
        "conda-course": True,
        "big": True,  # named after where it really is, as nb_conda_kernels names it
    }
    # Read-only, whatever the file system lets this process do (root may write anywhere).
    assert summaries["conda-course"]["writable"] is False
    assert summaries["mine"]["writable"] is True
    for summary in summaries.values():
        assert schema_errors(summary, "EnvironmentSummary") == []
    details = catalog.details(catalog.get("conda-course"))
    assert details["shared"] is True
    assert schema_errors(details, "EnvironmentDetails") == []


def test_without_the_setting_nothing_is_shared(conda_installation, tmp_path):
    inst = conda_installation
    inst.create_env("mine", ["pkgc"])
    found = discovery_of(inst, tmp_path).discover()
    assert found.shared_dirs == ()
    assert not any(e.shared for e in found.environments)


def test_the_kernel_manager_lists_the_kernels_of_shared_environments(
    rig_environ, conda_installation: CondaInstallation, tmp_path, shared_folder, admin
):
    shared = make_shared_envs(conda_installation, shared_folder, ["course"], tmp_path / "pkgs")
    lock_down(shared_folder, admin)

    manager = CondaKernelSpecManager()
    assert "conda-env-conda-course-py" not in manager.conda_kernels()

    manager.shared_envs_dirs = [str(shared_folder)]

    kernel = manager.conda_kernels()["conda-env-conda-course-py"]
    assert kernel.listed
    assert kernel.environment.shared
    assert kernel.spec.metadata["conda_env_path"] == str(shared["course"])
    assert "conda-env-conda-course-py" in manager.find_kernel_specs()
    assert manager.catalog.get("conda-course").environment.shared


# -- the restore service ----------------------------------------------------------------------


@pytest.fixture
def shared_first(
    conda_installation: CondaInstallation, tmp_path, shared_folder, admin, rig_channel
) -> tuple[CondaInstallation, dict[str, Path]]:
    """An installation whose ~/.condarc lists the shared folder FIRST in envs_dirs (as a
    site condarc copied into homes would), with `course` there."""
    inst = conda_installation
    shared = make_shared_envs(inst, shared_folder, ["course"], tmp_path / "pkgs")
    lock_down(shared_folder.parent.parent, admin)
    inst.condarc.write_text(
        f"envs_dirs:\n  - {shared_folder}\n  - {inst.extra_envs_dir}\n"
        f"channels:\n  - {rig_channel.url}\n"
    )
    return inst, shared


def service_for(inst: CondaInstallation, tmp_path: Path, shared: Path, **options: Any):
    catalog = EnvironmentCatalog(discovery_of(inst, tmp_path, shared_envs_dirs=[shared]))
    return RestoreService(
        RestoreOptions(**options), environ=inst.environ(), home=inst.home, catalog=catalog
    )


def test_a_named_restore_never_goes_into_a_shared_folder_listed_first(
    shared_first, tmp_path, shared_folder, rig_channel
):
    inst, _ = shared_first
    service = service_for(inst, tmp_path, shared_folder)
    assert service._envs_dirs()[0] == shared_folder  # conda's order: the shared one first

    target, name = service.resolve_target(
        name="fresh", prefix=None, source=spec_source(rig_channel)
    )
    assert (target, name) == (inst.extra_envs_dir / "fresh", "fresh")
    # The spec's own name goes to the same place.
    target, _ = service.resolve_target(
        name=None, prefix=None, source=spec_source(rig_channel, "fromspec")
    )
    assert target.parent == inst.extra_envs_dir
    assert service.check_name("fresh").target == inst.extra_envs_dir / "fresh"


def test_a_name_a_shared_environment_has_is_taken(
    shared_first, tmp_path, shared_folder, rig_channel
):
    inst, shared = shared_first
    service = service_for(inst, tmp_path, shared_folder)
    source = spec_source(rig_channel)

    # The folder's name, and the name it is listed under.
    for taken, reason in (("course", "folder"), ("conda-course", "environment")):
        with pytest.raises(NameTaken) as raised:
            service.resolve_target(name=taken, prefix=None, source=source)
        assert raised.value.conflict is not None
        assert raised.value.conflict.reason == reason
        assert raised.value.conflict.prefix == shared["course"]
        assert raised.value.suggested_name == f"{taken}-2"
        assert service.check_name(taken).conflict is not None


def test_a_shared_folder_that_is_not_in_envs_dirs_still_takes_its_names(
    conda_installation, tmp_path, shared_folder, rig_channel, admin
):
    inst = conda_installation
    make_shared_envs(inst, shared_folder, ["course"], tmp_path / "pkgs")
    # A folder of the shared dir that is no environment yet (an administrator's build).
    (shared_folder / "coming").mkdir()
    lock_down(shared_folder, admin)
    service = service_for(inst, tmp_path, shared_folder)
    source = spec_source(rig_channel)
    for taken in ("course", "coming"):
        with pytest.raises(NameTaken):
            service.resolve_target(name=taken, prefix=None, source=source)


def prefixes_into_the_shared_folder(inst: CondaInstallation, shared: Path) -> list[str]:
    """Ways to name a new prefix that all end up inside `shared`."""
    own = inst.extra_envs_dir
    (own / "door").symlink_to(shared)  # a folder of the user's envs dir leading there
    (own / "alias").symlink_to(shared / "newenv")  # a dangling link to a shared path
    up = os.path.relpath(shared, own)
    return [
        str(shared / "newenv"),
        str(own / "door" / "newenv"),
        str(own / "alias"),
        f"{own}/{up}/newenv",  # `..` climbing out of the user's own folder
        str(shared / "course" / "nested"),
        str(shared),
    ]


def test_a_prefix_inside_a_shared_folder_is_refused_however_it_is_named(
    shared_first, tmp_path, shared_folder, rig_channel
):
    inst, _ = shared_first
    before = tree_state(shared_folder)
    source = spec_source(rig_channel)
    prefixes = prefixes_into_the_shared_folder(inst, shared_folder)
    for roots in (None, ()):  # the CLI (any prefix) and the server (envs dirs only)
        service = service_for(inst, tmp_path, shared_folder, allowed_prefix_roots=roots)
        for prefix in prefixes:
            with pytest.raises(SharedTarget) as raised:
                service.resolve_target(name=None, prefix=prefix, source=source)
            message = str(raised.value)
            assert "administrator's shared folder" in message, message
            assert "your own envs dir" in message
            assert str(inst.extra_envs_dir) in message  # where a name would go instead
    assert tree_state(shared_folder) == before


async def test_a_restore_into_a_shared_folder_is_refused_before_anything_is_created(
    shared_first, tmp_path, shared_folder, rig_channel
):
    inst, _ = shared_first
    service = service_for(inst, tmp_path, shared_folder)
    before = tree_state(shared_folder)
    with pytest.raises(SharedTarget):
        await service.restore(spec_source(rig_channel), prefix=shared_folder / "newenv")
    with pytest.raises(SharedTarget):
        await service.plan(spec_source(rig_channel), prefix=shared_folder / "newenv")
    assert tree_state(shared_folder) == before


# -- system condarc envs dirs, seen by another user ---------------------------------------


@pytest.fixture
def machine(users, rig_channel: RigChannel) -> Iterator[dict[str, Any]]:
    """A machine outside pytest's private tmp: an administrator's conda installation whose
    own .condarc (and a system condarc) name envs dirs with environments in them, and a
    student's HOME. As root, the folders belong to real users and the student's view is
    taken in a process of the student; otherwise the folders are made read-only."""
    from tests.shared_folders import world_readable_tmp

    top = world_readable_tmp("repro-machine-")
    admin, student = users.get(ADMIN_USER), users.get(STUDENT_USER)
    try:
        cache = top / "pkgs"
        inst = CondaInstallation.create(top / "admin", rig_channel, cache)
        srv = top / "srv" / "conda" / "envs"  # in the installation's .condarc
        site = top / "srv" / "site-envs"  # in /etc/conda/.condarc
        team = top / "srv" / "team-envs"  # read-only, but in the student's own condarc
        open_dir = top / "srv" / "scratch-envs"  # in a system condarc, writable by all
        envs = {
            **make_shared_envs(inst, srv, ["course"], cache),
            **make_shared_envs(inst, site, ["site"], cache),
            **make_shared_envs(inst, team, ["team"], cache),
        }
        (inst.root_prefix / ".condarc").write_text(f"envs_dirs:\n  - {srv}\n")
        etc = top / "etc-conda"
        etc.mkdir()
        (etc / ".condarc").write_text(f"envs_dirs:\n  - {site}\n  - {open_dir}\n")
        home = top / "home-student"
        home.mkdir()
        (home / ".condarc").write_text(f"envs_dirs:\n  - {team}\n")
        for folder in (srv.parent, site, team):
            lock_down(folder, admin)
        open_dir.mkdir()
        open_dir.chmod(0o1777)
        if student is not None:
            os.chown(home, student.pw_uid, student.pw_gid)
        yield {
            "top": top,
            "inst": inst,
            "envs": envs,
            "dirs": {"srv": srv, "site": site, "team": team, "open": open_dir},
            "etc": etc,
            "home": home,
            "student": student,
            "environ": {
                "HOME": str(home),
                "CONDA_ROOT": str(inst.root_prefix),
                "PATH": os.environ.get("PATH", ""),
            },
        }
    finally:
        remove_tree(top)


def test_system_condarc_envs_dirs_the_user_cannot_write_are_shared(machine, rig_channel):
    environ, home, etc = machine["environ"], machine["home"], machine["etc"]
    dirs, envs = machine["dirs"], machine["envs"]
    source = spec_source(rig_channel)
    import ruamel.yaml  # noqa: F401  (imported here: the student cannot read the stdlib's home)

    def students_view() -> dict[str, Any]:
        discovery = EnvironmentDiscovery(
            environ=environ,
            home=home,
            server_prefix=home / "no-server",
            usual_roots=[],
            system_condarc_dirs=[etc],
        )
        found = discovery.discover()
        service = RestoreService(
            RestoreOptions(allowed_prefix_roots=()),
            environ=environ,
            home=home,
            catalog=EnvironmentCatalog(discovery),
        )
        refused: dict[str, str | None] = {}
        for where in ("srv", "site"):
            try:
                service.resolve_target(name=None, prefix=dirs[where] / "mine", source=source)
                refused[where] = None
            except SharedTarget as error:
                refused[where] = str(error)
        taken: str | None = None
        try:
            service.resolve_target(name="course", prefix=None, source=source)
        except NameTaken as error:
            taken = str(error)
        target, _ = service.resolve_target(name="fresh", prefix=None, source=source)
        return {
            "uid": os.getuid(),
            "shared": {str(e.prefix): e.shared for e in found.environments},
            "shared_dirs": [str(p) for p in found.shared_dirs],
            "envs_dirs": [str(p) for p in found.envs_dirs],
            "refused": refused,
            "taken": taken,
            "target": str(target),
        }

    view = run_as(machine["student"], students_view)

    if machine["student"] is not None:
        assert view["uid"] == machine["student"].pw_uid
    assert view["shared"] == {
        str(machine["inst"].root_prefix): False,
        str(envs["course"]): True,  # the installation's .condarc
        str(envs["site"]): True,  # /etc/conda/.condarc
        str(envs["team"]): False,  # the user's own condarc: read-only, but not shared
    }
    assert sorted(view["shared_dirs"]) == sorted([str(dirs["srv"]), str(dirs["site"])])
    assert str(dirs["open"]) not in view["shared_dirs"]  # writable by the user
    assert view["envs_dirs"][0] == str(dirs["team"])  # the user's condarc comes first
    for where in ("srv", "site"):
        assert "administrator's shared folder" in (view["refused"][where] or "")
    assert "'course' is taken" in (view["taken"] or "")
    # Not the first envs dirs (read-only ones), nor a shared one: the student's own.
    assert view["target"] in (
        str(dirs["open"] / "fresh"),
        str(home / ".conda" / "envs" / "fresh"),
    )
    assert Path(view["target"]).parent not in (dirs["srv"], dirs["site"], dirs["team"])


def test_a_system_envs_dir_the_administrator_locks_becomes_shared_at_once(machine):
    """The folders a restore checks are cached: an administrator's chmod of a system condarc's
    envs dir is seen on the next restore all the same (the student's view, in one process)."""
    import threading
    import time

    from tests.required import unavailable

    student = machine["student"]
    if student is None:
        unavailable("needs root, to lock a folder against another user")
    environ, home, etc, open_dir = (
        machine["environ"],
        machine["home"],
        machine["etc"],
        machine["dirs"]["open"],
    )
    ready, go = open_dir / "student-ready", machine["top"] / "go"

    def students_view() -> list[list[str]]:
        discovery = EnvironmentDiscovery(
            environ=environ,
            home=home,
            server_prefix=home / "no-server",
            usual_roots=[],
            system_condarc_dirs=[etc],
        )
        before = discovery.folders().shared_dirs
        ready.write_text("")
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return [[str(p) for p in before], [str(p) for p in discovery.folders().shared_dirs]]

    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(run_as(student, students_view)))
    worker.start()
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        open_dir.chmod(0o755)  # root's: the student may no longer create environments there
        go.write_text("")
        worker.join(timeout=60)
    finally:
        open_dir.chmod(0o1777)
        go.unlink(missing_ok=True)
        ready.unlink(missing_ok=True)

    before, after = answers[0]
    assert str(open_dir) not in before
    assert str(open_dir) in after


def test_as_root_a_writable_system_envs_dir_is_not_shared_unless_configured(machine):
    """The same machine seen by whoever runs the tests: root may write every folder, so
    only configured folders are shared (which is why the setting exists)."""
    if not IS_ROOT:
        pytest.skip("only root may write every folder")
    found = EnvironmentDiscovery(
        environ=machine["environ"],
        home=machine["home"],
        server_prefix=machine["home"] / "no-server",
        usual_roots=[],
        system_condarc_dirs=[machine["etc"]],
    ).discover()
    assert found.shared_dirs == ()
    configured = EnvironmentDiscovery(
        environ=machine["environ"],
        home=machine["home"],
        server_prefix=machine["home"] / "no-server",
        usual_roots=[],
        system_condarc_dirs=[machine["etc"]],
        shared_envs_dirs=[machine["dirs"]["srv"]],
    ).discover()
    assert {e.prefix for e in configured.environments if e.shared} == {machine["envs"]["course"]}


# -- through a real Jupyter server ------------------------------------------------------------


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory()


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


@pytest.fixture
def served_shared(
    installation: CondaInstallation, tmp_path, shared_folder, admin, rig_channel
) -> dict[str, Path]:
    """The shared folder with `course`, locked down, listed first in ~/.condarc."""
    shared = make_shared_envs(installation, shared_folder, ["course"], tmp_path / "pkgs")
    lock_down(shared_folder.parent.parent, admin)
    installation.condarc.write_text(
        f"envs_dirs:\n  - {shared_folder}\n  - {installation.extra_envs_dir}\n"
        f"channels:\n  - {rig_channel.url}\n"
    )
    return shared


@pytest.fixture
def jp_server_config(served_shared, shared_folder):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_repro": True},
            "allow_unauthenticated_access": False,
        },
        "ReproApp": {"shared_envs_dirs": [str(shared_folder)]},
    }


@pytest.fixture
def spec_file(jp_root_dir: Path, rig_channel: RigChannel) -> str:
    (jp_root_dir / "environment.yml").write_text(
        f"channels:\n  - {rig_channel.url}\ndependencies:\n  - python\n  - ipykernel\n"
    )
    return "environment.yml"


async def get_json(jp_fetch, *parts: str, **params: str) -> Any:
    return json.loads((await jp_fetch(*parts, params=params or None)).body)


def restore_request(jp_fetch, body: dict[str, Any]):
    return answer(jp_fetch("repro", "restore", method="POST", body=json.dumps(body)))


async def finished_job(jp_fetch, job_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(1200):
        job = await get_json(jp_fetch, "repro", "jobs", job_id)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def test_the_api_marks_shared_environments(jp_fetch, served_shared, installation):
    listing = (await get_json(jp_fetch, "repro", "environments"))["environments"]

    by_name = {e["name"]: e for e in listing}
    assert all(isinstance(e["shared"], bool) for e in listing)
    assert by_name["conda-course"]["shared"] is True
    assert by_name["conda-course"]["writable"] is False
    assert by_name["conda-course"]["prefix"] == str(served_shared["course"])
    assert by_name["base"]["shared"] is False
    assert all(schema_errors(e, "EnvironmentSummary") == [] for e in listing)
    details = await get_json(jp_fetch, "repro", "environments", "conda-course")
    assert details["shared"] is True
    assert {p["name"] for p in details["conda_packages"]} >= {"python", "ipykernel", "pkgc"}
    assert schema_errors(details, "EnvironmentDetails") == []


async def test_a_shared_environment_is_a_kernel_that_runs(jp_fetch, jp_serverapp, served_shared):
    assert "conda-env-conda-course-py" in await kernelspecs(jp_fetch)
    kernel_id = await start_kernel(jp_fetch, "conda-env-conda-course-py")
    try:
        printed = run_in_kernel(jp_serverapp, kernel_id, "import sys; print(sys.prefix)")
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert Path(printed.strip()).resolve() == served_shared["course"]


async def test_a_restore_into_the_shared_folder_is_403_and_writes_nothing(
    jp_fetch, served_shared, shared_folder, installation, spec_file
):
    before = tree_state(shared_folder)
    for prefix in prefixes_into_the_shared_folder(installation, shared_folder):
        for dry_run in (True, False):
            status, _, body = await restore_request(
                jp_fetch, {"source": {"file": spec_file}, "prefix": prefix, "dry_run": dry_run}
            )
            assert status == 403, (prefix, body)
            assert body["reason"] == "shared target"
            assert "administrator's shared folder" in body["message"]
            assert "choose a name or a prefix in your own envs dir" in body["message"]
    assert tree_state(shared_folder) == before
    assert not os.path.lexists(installation.extra_envs_dir / "door" / "newenv")


async def test_names_in_the_shared_folder_are_taken(
    jp_fetch, served_shared, shared_folder, spec_file
):
    before = tree_state(shared_folder)
    for name, reason in (("course", "folder"), ("conda-course", "environment")):
        status, _, plan = await restore_request(
            jp_fetch, {"source": {"file": spec_file}, "name": name, "dry_run": True}
        )
        assert status == 200, plan
        assert plan["conflict"]["reason"] == reason
        assert plan["conflict"]["prefix"] == str(served_shared["course"])
        assert plan["suggested_name"] == f"{name}-2"

        status, _, body = await restore_request(
            jp_fetch, {"source": {"file": spec_file}, "name": name}
        )
        assert status == 409, body
        assert f"{name}-2" in body["message"]

        check = await get_json(jp_fetch, "repro", "restore", "name", name=name)
        assert check["conflict"]["reason"] == reason

    # Names with path tricks never reach the shared folder either.
    rel = os.path.relpath(shared_folder, served_shared["course"].parent)
    for name in ("../envs/x", f"{rel}/x", "..", ".", "a/b", "course/../x", "/abs"):
        status, _, body = await restore_request(
            jp_fetch, {"source": {"file": spec_file}, "name": name}
        )
        assert 400 <= status < 500, (name, body)
    assert tree_state(shared_folder) == before


async def test_a_named_restore_goes_to_the_users_own_envs_dir(
    jp_fetch, served_shared, shared_folder, installation, spec_file
):
    before = tree_state(shared_folder)
    check = await get_json(jp_fetch, "repro", "restore", "name", name="fresh")
    assert check["target"] == str(installation.extra_envs_dir / "fresh")

    status, _, job = await restore_request(
        jp_fetch, {"source": {"file": spec_file}, "name": "fresh"}
    )
    assert status == 202, job
    done = await finished_job(jp_fetch, job["id"])

    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["prefix"] == str(installation.extra_envs_dir / "fresh")
    assert tree_state(shared_folder) == before
    listing = (await get_json(jp_fetch, "repro", "environments"))["environments"]
    assert {e["name"]: e["shared"] for e in listing}["fresh"] is False


async def test_locks_and_packs_of_a_shared_environment_write_nothing_there(
    jp_fetch, served_shared, shared_folder
):
    before = tree_state(shared_folder)
    response = await jp_fetch(
        "repro",
        "environments",
        "conda-course",
        "lock",
        params={"platform": host_platform(), "format": "conda-lock"},
    )
    assert response.code == 200
    assert b"pkgc" in response.body

    status, _, job = await answer(
        jp_fetch(
            "repro",
            "pack",
            method="POST",
            body=json.dumps({"environment": "conda-course", "format": "conda-pack"}),
        )
    )
    assert status == 202, job
    done = await finished_job(jp_fetch, job["id"])
    assert done["state"] == "succeeded", done["error"]
    download = await jp_fetch("repro", "jobs", job["id"], "download")
    assert download.body[:2] == b"\x1f\x8b"
    assert tree_state(shared_folder) == before
