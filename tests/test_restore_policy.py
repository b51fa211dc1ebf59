"""The restore's policies hold for every way a spec can name a source: channels, `chan::pkg`,
bracket keys, package URLs, explicit lists; pip sections cannot read the server's
environment. Real solves against two local channels: the allowed rig channel and another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_repro.restore.errors import RefusedSpec
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.export import export_explicit
from tests.rig import CondaInstallation, RigChannel
from tests.rig.channel import build_channel, generic_package
from tests.test_restore import Recorder, _service, _write_wheel

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """A channel the server does not allow, with a package of a name the rig also has."""
    return build_channel(
        tmp_path_factory.mktemp("elsewhere"), [generic_package("pkgb", "9.9", build="evil_0")]
    )


def _spec(channel: RigChannel, *dependencies: str, pip: tuple[str, ...] = ()) -> str:
    lines = ["channels:", f"  - {channel.url}", "dependencies:"]
    lines += [f"  - {json.dumps(d)}" for d in dependencies]
    if pip:
        lines += ["  - pip:", *(f"      - {json.dumps(p)}" for p in pip)]
    return "\n".join(lines) + "\n"


def _package_url(channel: RigChannel) -> str:
    return f"{channel.url.rstrip('/')}/noarch/pkgb-9.9-evil_0.conda"


def _bypasses(rig: RigChannel, elsewhere: RigChannel) -> dict[str, str]:
    return {
        "url key": f"pkgb[url={_package_url(elsewhere)}]",
        "package URL as the spec": _package_url(elsewhere),
        "channel key": f"pkgb[channel={elsewhere.url}]",
        "channel prefix": f"{elsewhere.url}::pkgb",
        "url climbing out of the allowed channel": (
            f"pkgb[url={rig.url.rstrip('/')}/../{Path(elsewhere.url).name}/noarch/"
            "pkgb-9.9-evil_0.conda]"
        ),
        "subdir climbing out": "pkgb[subdir=../../elsewhere]",
    }


@pytest.mark.parametrize(
    "way",
    [
        "url key",
        "package URL as the spec",
        "channel key",
        "channel prefix",
        "url climbing out of the allowed channel",
        "subdir climbing out",
    ],
)
async def test_every_way_to_name_another_source_is_refused(
    way: str,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    elsewhere: RigChannel,
):
    dependency = _bypasses(rig_channel, elsewhere)[way]
    service = _service(conda_installation, rig_environ, allowed_channels=(rig_channel.url,))
    source = load_source(content=_spec(rig_channel, "pkga", dependency))

    with pytest.raises(RefusedSpec) as refused:
        await service.plan(source, name="bypass")
    with pytest.raises(RefusedSpec):
        await service.restore(source, name="bypass")

    assert "allowed" in str(refused.value) or "subdir" in str(refused.value)
    assert not (conda_installation.extra_envs_dir / "bypass").exists()


async def test_without_a_policy_a_url_key_really_installs_from_elsewhere(
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    elsewhere: RigChannel,
):
    """What the policy guards against is real: rattler fetches a `[url=...]` package."""
    service = _service(conda_installation, rig_environ)
    spec = _spec(rig_channel, f"pkgb[url={_package_url(elsewhere)}]")

    plan = await service.plan(load_source(content=spec), name="open")

    assert [(p.name, p.version, p.build) for p in plan.packages] == [("pkgb", "9.9", "evil_0")]


async def test_a_url_key_inside_an_allowed_channel_is_accepted(
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    url = f"{rig_channel.url.rstrip('/')}/noarch/pkgb-1.0-0.conda"
    service = _service(conda_installation, rig_environ, allowed_channels=(rig_channel.url,))

    source = load_source(content=_spec(rig_channel, f"pkgb[url={url}]"))
    result = await service.restore(source, name="inside")

    assert conda_installation.installed(result.prefix) == {"pkgb": "1.0"}


async def test_an_explicit_list_from_another_channel_is_refused(
    conda_installation_factory,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    elsewhere: RigChannel,
):
    donor = conda_installation_factory(channel=elsewhere, root_specs=["pkgb"])
    listing = export_explicit(donor.root_prefix)
    here = conda_installation_factory()
    service = _service(here, rig_environ, allowed_channels=(rig_channel.url,))

    with pytest.raises(RefusedSpec, match="not allowed"):
        await service.restore(load_source(content=listing), name="explicit")

    assert not (here.extra_envs_dir / "explicit").exists()


# -- pip ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "pkga===${REPRO_SECRET}",
        "pkga==1.0 ; python_version > '${REPRO_SECRET}'",
        "--index-url https://${REPRO_SECRET}@example.org/simple",
    ],
)
async def test_pip_entries_with_variables_are_refused_and_never_expanded(
    entry: str,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    monkeypatch: pytest.MonkeyPatch,
):
    secret = "s3cr3t-value-of-the-server"
    environ = {**rig_environ, "REPRO_SECRET": secret}
    monkeypatch.setenv("REPRO_SECRET", secret)
    service = _service(conda_installation, environ, allow_pip_urls=True)
    progress = Recorder()
    source = load_source(content=_spec(rig_channel, "python", pip=(entry,)))

    with pytest.raises(RefusedSpec, match="not expanded") as refused:
        await service.restore(source, name="expand", progress=progress)

    assert secret not in str(refused.value)
    assert all(secret not in line for line in progress.lines)
    assert not (conda_installation.extra_envs_dir / "expand").exists()


async def test_pip_runs_without_the_servers_secrets(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    monkeypatch: pytest.MonkeyPatch,
):
    """The pip process (run for real) gets what pip needs and none of the server's secrets."""
    from jupyter_repro.restore import service as restore_module

    wheels = tmp_path / "wheels"
    _write_wheel(wheels, "reprowheel", "1.0")
    environ = {
        **rig_environ,
        "JUPYTERHUB_API_TOKEN": "hub-token-value",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    given: list[dict[str, str]] = []
    real_run = restore_module.run_process

    async def run_and_record(argv, *, env, on_line):
        given.append(dict(env))
        return await real_run(argv, env=env, on_line=on_line)

    monkeypatch.setattr(restore_module, "run_process", run_and_record)
    service = _service(
        conda_installation, environ, pip_find_links=(str(wheels),), pip_no_index=True
    )
    spec = _spec(rig_channel, "python", pip=("reprowheel==1.0",))

    result = await service.restore(load_source(content=spec), name="scrubbed")

    assert result.pip == 1
    (env,) = given
    assert "JUPYTERHUB_API_TOKEN" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["PIP_DISABLE_PIP_VERSION_CHECK"] == "1"
    assert env["PATH"] == environ["PATH"]
    assert env["PYTHONNOUSERSITE"] == "1"
