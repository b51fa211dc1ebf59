"""Per-user limits: ReproApp.max_user_environments and ReproApp.min_free_space.

Real restores of rig environments through a real Jupyter server, the command line and the
service; free space read from the file system (os.statvfs) or a small tmpfs.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from jupyter_repro.app import ReproApp
from jupyter_repro.cli import main
from jupyter_repro.restore.errors import NotEnoughSpace, TooManyEnvironments
from jupyter_repro.restore.limits import InvalidSize, format_size, free_space, parse_size
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.server_helpers import answer
from tests.shared_folders import make_shared_envs, small_tmpfs, tree_state

pytestmark = pytest.mark.timeout(240)

GiB = 1024**3
TiB = 1024**4


# -- sizes and settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (4096, 4096),
        ("4096", 4096),
        ("100B", 100),
        ("5G", 5 * GiB),
        ("5GB", 5 * GiB),
        ("5GiB", 5 * GiB),
        ("5 g", 5 * GiB),
        ("500M", 500 * 1024**2),
        ("1.5T", int(1.5 * TiB)),
        ("64k", 64 * 1024),
        (" 2G ", 2 * GiB),
    ],
)
def test_sizes_in_bytes_or_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["5X", "5XB", "", "G", "5GG", "-1", -1, "1e3", "five", "5G5", "5 G B", "0x10", True]
)
def test_what_is_not_a_size(text):
    with pytest.raises(InvalidSize):
        parse_size(text)


def test_sizes_are_shown_in_binary_units():
    assert format_size(100) == "100 bytes"
    assert format_size(5 * GiB) == "5.0 GiB"
    assert format_size(1536 * 1024) == "1.5 MiB"
    assert format_size(3 * TiB) == "3.0 TiB"


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("min_free_space", "5X", "'5X' is not a size"),
        ("min_free_space", "-5G", "not a size"),
        ("min_free_space", -1, "negative"),
        ("max_user_environments", -1, "negative"),
        ("shared_envs_dirs", ["srv/envs"], "not an absolute folder"),
        ("shared_envs_dirs", [""], "not an absolute folder"),
    ],
)
def test_invalid_settings_stop_the_extension_naming_the_setting(setting, value, words):
    config = Config()
    config.ReproApp[setting] = value
    with pytest.raises(TraitError, match=f"ReproApp\\.{setting}: .*{words}"):
        ReproApp(config=config)


def test_valid_settings_reach_the_restore_options():
    config = Config()
    config.ReproApp.min_free_space = "5G"
    config.ReproApp.max_user_environments = 3
    config.ReproApp.shared_envs_dirs = ["/srv/conda/envs", "~/shared"]
    app = ReproApp(config=config)
    assert app.restore_limits() == {
        "shared_envs_dirs": (Path("/srv/conda/envs"), Path(os.path.expanduser("~/shared"))),
        "max_user_environments": 3,
        "min_free_space": 5 * GiB,
    }
    assert ReproApp().restore_limits() == {
        "shared_envs_dirs": (),
        "max_user_environments": 0,
        "min_free_space": 0,
    }


# -- through a real Jupyter server ------------------------------------------------------------


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory()


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


@pytest.fixture
def limits(request) -> dict[str, Any]:
    """ReproApp settings of the test's server (parametrize indirectly)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(limits):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_repro": True},
            "allow_unauthenticated_access": False,
        },
        "ReproApp": limits,
    }


@pytest.fixture
def spec_file(jp_root_dir: Path, rig_channel: RigChannel) -> str:
    (jp_root_dir / "environment.yml").write_text(
        f"channels:\n  - {rig_channel.url}\ndependencies:\n  - python\n  - pkgc\n"
    )
    return "environment.yml"


def restore_request(jp_fetch, body: dict[str, Any]):
    return answer(jp_fetch("repro", "restore", method="POST", body=json.dumps(body)))


async def restored(jp_fetch, spec_file: str, name: str) -> dict[str, Any]:
    """Restore `name` as a job and wait for it; the finished job."""
    status, _, job = await restore_request(jp_fetch, {"source": {"file": spec_file}, "name": name})
    assert status == 202, job
    for _ in range(1200):
        job = json.loads((await jp_fetch("repro", "jobs", job["id"])).body)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError("the restore did not finish")


@pytest.mark.parametrize("limits", [{"max_user_environments": 2}], indirect=True)
async def test_the_environment_limit_refuses_restores_until_one_is_deleted(
    jp_fetch, installation, spec_file, tmp_path, limits
):
    one = installation.create_env("one", ["pkgc"])

    assert (await restored(jp_fetch, spec_file, "two"))["state"] == "succeeded"

    before = tree_state(installation.home)
    for dry_run in (True, False):
        status, _, body = await restore_request(
            jp_fetch, {"source": {"file": spec_file}, "name": "three", "dry_run": dry_run}
        )
        assert status == 403, body
        assert body["reason"] == "too many environments"
        message = body["message"]
        assert "you have 2 environments" in message
        assert "ReproApp.max_user_environments = 2" in message
        assert "delete one" in message
        assert "one, two" in message  # which ones are the user's
    # A prefix restore is an environment too.
    status, _, body = await restore_request(
        jp_fetch,
        {"source": {"file": spec_file}, "prefix": str(installation.extra_envs_dir / "p")},
    )
    assert status == 403, body
    assert tree_state(installation.home) == before

    installation.remove_env(one)
    assert (await restored(jp_fetch, spec_file, "three"))["state"] == "succeeded"


@pytest.fixture
def shared_envs(installation: CondaInstallation, tmp_path: Path) -> Path:
    folder = tmp_path / "srv" / "envs"
    make_shared_envs(installation, folder, ["course", "lab"], tmp_path / "pkgs", ["pkgc"])
    return folder


class TestSharedEnvironmentsDoNotCount:
    @pytest.fixture
    def limits(self, shared_envs: Path) -> dict[str, Any]:
        return {"max_user_environments": 1, "shared_envs_dirs": [str(shared_envs)]}

    async def test_only_the_users_own_environments_count(self, jp_fetch, spec_file):
        # Two shared environments are listed, but they are the administrator's.
        listing = json.loads((await jp_fetch("repro", "environments")).body)["environments"]
        assert sum(e["shared"] for e in listing) == 2

        assert (await restored(jp_fetch, spec_file, "mine"))["state"] == "succeeded"
        status, _, body = await restore_request(
            jp_fetch, {"source": {"file": spec_file}, "name": "another"}
        )
        assert status == 403, body
        assert "you have 1 environments" in body["message"]


@pytest.mark.parametrize("limits", [{"max_user_environments": 1}], indirect=True)
async def test_two_restores_at_once_cannot_pass_the_limit_together(
    jp_fetch, installation, spec_file
):
    answers = await asyncio.gather(
        *(
            restore_request(jp_fetch, {"source": {"file": spec_file}, "name": name})
            for name in ("first", "second")
        )
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [202, 403], answers
    job = next(body for status, _, body in answers if status == 202)
    for _ in range(1200):
        job = json.loads((await jp_fetch("repro", "jobs", job["id"])).body)
        if job["state"] != "running" and job["state"] != "queued":
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "succeeded", job["error"]
    made = {p.name for p in installation.extra_envs_dir.iterdir()}
    made |= {p.name for p in installation.envs_dir.iterdir()}
    assert len(made & {"first", "second"}) == 1


def _beyond_free_space(path: Path) -> str:
    """A size far above what the file system of `path` has free now (statvfs)."""
    st = os.statvfs(path)
    return f"{(st.f_bavail * st.f_frsize + TiB) // GiB}G"


class TestFreeSpace:
    @pytest.fixture
    def limits(self, installation: CondaInstallation) -> dict[str, Any]:
        return {"min_free_space": _beyond_free_space(installation.extra_envs_dir)}

    async def test_too_little_free_space_refuses_the_restore_before_anything_is_created(
        self, jp_fetch, installation, spec_file, limits
    ):
        before = tree_state(installation.home)
        wanted = format_size(parse_size(limits["min_free_space"]))
        for body in (
            {"name": "big"},
            {"name": "big", "dry_run": True},
            {"prefix": str(installation.extra_envs_dir / "big")},
        ):
            status, _, answered = await restore_request(
                jp_fetch, {"source": {"file": spec_file}, **body}
            )
            assert status == 403, answered
            assert answered["reason"] == "not enough space"
            message = answered["message"]
            assert "ReproApp.min_free_space" in message
            assert f"at least {wanted} free" in message
            assert "free some space" in message
        assert tree_state(installation.home) == before


@pytest.mark.parametrize("limits", [{"min_free_space": "1K"}], indirect=True)
async def test_enough_free_space_lets_the_restore_run(jp_fetch, spec_file, limits):
    assert (await restored(jp_fetch, spec_file, "fits"))["state"] == "succeeded"


# -- a small file system of its own -------------------------------------------------------


async def test_free_space_is_that_of_the_envs_dir_file_system(
    conda_installation: CondaInstallation, rig_channel, tmp_path
):
    inst = conda_installation
    with small_tmpfs(tmp_path / "small", "16M") as small:
        envs = small / "envs"
        inst.condarc.write_text(f"envs_dirs:\n  - {envs}\nchannels:\n  - {rig_channel.url}\n")
        source = load_source(
            content=f"channels:\n  - {rig_channel.url}\ndependencies:\n  - python\n  - pkgc\n"
        )
        assert 15 * 1024**2 < free_space(envs) <= 16 * 1024**2

        tight = RestoreService(
            RestoreOptions(min_free_space=parse_size("32M")), environ=inst.environ(), home=inst.home
        )
        with pytest.raises(NotEnoughSpace) as raised:
            await tight.restore(source, name="tight")
        assert "16.0 MiB free on the file system of" in str(raised.value)
        assert str(small) in str(raised.value)
        assert not envs.exists()

        roomy = RestoreService(
            RestoreOptions(min_free_space=parse_size("8M")), environ=inst.environ(), home=inst.home
        )
        result = await roomy.restore(source, name="roomy")
        assert result.prefix == envs / "roomy"
        assert "pkgc" in inst.installed(result.prefix)


async def test_the_service_counts_restores_being_built_and_queued(
    conda_installation: CondaInstallation, rig_channel
):
    inst = conda_installation
    service = RestoreService(
        RestoreOptions(max_user_environments=2), environ=inst.environ(), home=inst.home
    )
    source = load_source(content=f"channels:\n  - {rig_channel.url}\ndependencies:\n  - pkgc\n")
    inst.create_env("one", ["pkgc"])
    queued = inst.extra_envs_dir / "queued"
    service.reserved_targets = lambda: [queued]

    with pytest.raises(TooManyEnvironments):
        service.resolve_target(name="third", prefix=None, source=source)
    # The queued restore itself, checked again when it starts, is not counted twice.
    target, _ = service.resolve_target(name="queued", prefix=None, source=source)
    assert target == queued
    service.reserved_targets = tuple
    assert service.resolve_target(name="third", prefix=None, source=source)[1] == "third"


async def test_prefixes_nested_in_an_envs_dir_count_towards_the_limit(
    conda_installation: CondaInstallation, rig_channel
):
    """A prefix inside an envs dir (allowed by default) is an environment of the user's like
    any other: restoring them one by one cannot pass the limit."""
    inst = conda_installation
    service = RestoreService(
        RestoreOptions(max_user_environments=2, allowed_prefix_roots=()),
        environ=inst.environ(),
        home=inst.home,
    )
    source = load_source(content=f"channels:\n  - {rig_channel.url}\ndependencies:\n  - pkgc\n")
    group = inst.extra_envs_dir / "group"
    await service.restore(source, prefix=group / "a")
    await service.restore(source, prefix=group / "b")

    with pytest.raises(TooManyEnvironments, match="you have 2 environments"):
        await service.restore(source, prefix=group / "c")
    assert not (group / "c").exists()


# -- the command line reads the server's configuration ------------------------------------


def write_server_config(inst: CondaInstallation, settings: dict[str, Any]) -> None:
    folder = Path(inst.environ()["JUPYTER_CONFIG_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jupyter_server_config.json").write_text(json.dumps({"ReproApp": settings}))


def write_spec(folder: Path, channel: RigChannel) -> Path:
    path = folder / "environment.yml"
    path.write_text(f"channels:\n  - {channel.url}\ndependencies:\n  - pkgc\n")
    return path


def test_the_command_line_honours_the_environment_limit(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    inst = conda_installation
    inst.create_env("one", ["pkgc"])
    write_server_config(inst, {"max_user_environments": 1})
    spec = write_spec(tmp_path, rig_channel)

    status = main(["restore", str(spec), "--name", "two", "--yes"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "ReproApp.max_user_environments = 1" in err
    assert not (inst.extra_envs_dir / "two").exists()


def test_the_command_line_refuses_a_shared_prefix_and_lists_shared_envs(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    inst = conda_installation
    folder = tmp_path / "srv" / "envs"
    make_shared_envs(inst, folder, ["course"], tmp_path / "pkgs", ["pkgc"])
    write_server_config(inst, {"shared_envs_dirs": [str(folder)]})
    spec = write_spec(tmp_path, rig_channel)

    assert main(["envs", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)["environments"]
    by_prefix = {e["prefix"]: e["shared"] for e in listing}
    assert by_prefix[str((folder / "course").resolve())] is True
    assert by_prefix[str(inst.root_prefix)] is False

    status = main(["restore", str(spec), "--prefix", str(folder / "mine"), "--yes"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "administrator's shared folder" in err
    assert not (folder / "mine").exists()

    status = main(["restore", str(spec), "--name", "course", "--dry-run"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "course-2" in out + err  # a dry run shows the conflict and a free name


def test_the_command_line_stops_on_an_invalid_setting(
    rig_environ, conda_installation: CondaInstallation, rig_channel, tmp_path, capsys
):
    write_server_config(conda_installation, {"min_free_space": "5X"})
    spec = write_spec(tmp_path, rig_channel)

    status = main(["restore", str(spec), "--name", "x", "--yes"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "ReproApp.min_free_space" in err
    assert "'5X' is not a size" in err
