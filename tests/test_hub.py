"""End to end under a real JupyterHub: the extension in every single-user server, through the
proxy, with the hub's authentication and authorization (see tests/hub/rig.py for the rig).

The hub, its two system users and their servers are shared by the whole session (the
``hub`` fixture): each test uses environment names of its own.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_repro import __version__
from tests.hub.rig import (
    ADMIN,
    ALICE,
    BOB,
    CACHE_PACKAGES,
    GATED_PACKAGE,
    OPERATOR,
    SHARED_ENV_NAME,
    Hub,
    environment_yml,
    run_as,
)

pytestmark = pytest.mark.timeout(300)

JOB_TIMEOUT = 120.0
FINISHED = {"succeeded", "failed", "cancelled"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def server_scope(user: str) -> str:
    """The scope that lets a token use ``user``'s default server."""
    return f"access:servers!server={user}/"


@pytest.fixture(scope="module")
def alice(hub: Hub) -> str:
    """A token of repro-alice for her own server only; her server is running."""
    hub.start_server(ALICE)
    return hub.create_token(ALICE, [server_scope(ALICE)])


@pytest.fixture(scope="module")
def bob(hub: Hub) -> str:
    """A token of repro-bob for his own server only; his server is running."""
    hub.start_server(BOB)
    return hub.create_token(BOB, [server_scope(BOB)])


def ensure_running(hub: Hub, user: str) -> None:
    """Another test may have stopped the server: start it again if so."""
    hub.start_server(user)


def environments(hub: Hub, user: str, token: str) -> dict[Path, dict[str, Any]]:
    """``user``'s listing through the proxy, by prefix (names follow nb_conda_kernels: an
    environment in ``~/.conda/envs`` with no conda installation around is ``.conda-<name>``)."""
    response = hub.get(user, "repro/environments", token)
    assert response.status_code == 200, response.text
    return {Path(env["prefix"]): env for env in response.json()["environments"]}


def start_restore(hub: Hub, user: str, token: str, name: str, *deps: str) -> dict[str, Any]:
    body = {"source": {"content": environment_yml(hub.channel.url, *deps)}, "name": name}
    response = hub.post(user, "repro/restore", token, body)
    assert response.status_code == 202, (response.status_code, response.text)
    job: dict[str, Any] = response.json()
    # The job's URL is the single-user server's, under the proxy's /user/<name>/.
    assert response.headers["Location"] == f"/user/{user}/repro/jobs/{job['id']}"
    return job


def wait_for_job(hub: Hub, user: str, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        response = hub.get(user, f"repro/jobs/{job_id}", token)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] in FINISHED:
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} after {JOB_TIMEOUT} s"
        time.sleep(0.1)


def restore(hub: Hub, user: str, token: str, name: str, *deps: str) -> tuple[dict, float]:
    """Restore ``deps`` as ``name`` on ``user``'s server; the finished job and its seconds."""
    started = time.monotonic()
    job = start_restore(hub, user, token, name, *deps)
    final = wait_for_job(hub, user, token, job["id"])
    return final, time.monotonic() - started


def tree_snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and mtime (ns)."""
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        found[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


# --------------------------------------------------------------------------------------------
# routes, tokens and the hub's rules
# --------------------------------------------------------------------------------------------


def test_routes_answer_through_the_proxy_with_a_token_for_that_server(hub: Hub, alice: str):
    status = hub.get(ALICE, "repro/status", alice)
    assert status.status_code == 200, status.text
    assert status.json()["version"] == __version__

    environments = hub.get(ALICE, "repro/environments", alice)
    assert environments.status_code == 200, environments.text
    listed = environments.json()["environments"]
    # The server's own environment (the single-user venv) is there, as on one machine.
    assert any(env["is_server_env"] for env in listed), listed

    kernelspecs = hub.get(ALICE, "api/kernelspecs", alice)
    assert kernelspecs.status_code == 200


def test_other_users_tokens_and_tokens_without_access_get_403(hub: Hub, alice: str, bob: str):
    bob_default = hub.create_token(BOB)  # all of bob's own permissions
    alice_without_access = hub.create_token(ALICE, [f"read:users:name!user={ALICE}"])
    plan = {
        "source": {"content": environment_yml(hub.channel.url, "pkgc")},
        "name": "not-for-you",
        "dry_run": True,
    }

    for token in (bob, bob_default, alice_without_access):
        for path in ("repro/status", "repro/environments", f"repro/environments/{ALICE}"):
            response = hub.get(ALICE, path, token)
            assert response.status_code == 403, (path, response.status_code, response.text)
            assert "environments" not in response.text
        assert hub.post(ALICE, "repro/restore", token, plan).status_code == 403

    # No credentials at all: the API answers 403, the UI sends the browser to the hub's login.
    anonymous = requests.get(hub.user_url(ALICE, "repro/environments"), timeout=30)
    assert anonymous.status_code == 403
    page = requests.get(hub.user_url(ALICE, "lab"), timeout=30)
    assert page.url.startswith(f"{hub.url}hub/login"), page.url

    # bob's token still works on bob's own server.
    assert hub.get(BOB, "repro/status", bob).status_code == 200


def test_the_hub_refuses_a_browser_session_of_another_user(hub: Hub, alice: str, bob: str):
    session = hub.login(BOB)

    # bob's own server: the hub's OAuth lets him in.
    own = session.get(hub.user_url(BOB, "repro/status"), timeout=30)
    assert own.status_code == 403  # no server cookie yet: the API never redirects to a login
    assert session.get(hub.user_url(BOB, "lab"), timeout=30).status_code == 200
    assert session.get(hub.user_url(BOB, "repro/status"), timeout=30).status_code == 200

    # alice's server: the hub's OAuth step refuses bob (403 at the hub), and the hub does
    # not even say that alice's server exists.
    other = session.get(hub.user_url(ALICE, "lab"), timeout=30)
    assert other.status_code == 403
    assert other.url.startswith(f"{hub.url}hub/api/oauth2/authorize"), other.url
    assert session.get(hub.user_url(ALICE, "repro/status"), timeout=30).status_code == 403
    assert session.get(f"{hub.url}hub/user/{ALICE}/lab", timeout=30).status_code == 404


def test_a_cookie_authenticated_post_without_the_xsrf_token_is_refused(hub: Hub, alice: str):
    session = hub.login(ALICE)
    assert session.get(hub.user_url(ALICE, "lab"), timeout=30).status_code == 200
    body: dict[str, Any] = {
        "source": {"content": environment_yml(hub.channel.url, "pkgc")},
        "name": "xsrf-check",
        "dry_run": True,
    }
    url = hub.user_url(ALICE, "repro/restore")

    refused = session.post(url, json=body, timeout=30, allow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert "_xsrf" in refused.json()["message"]

    xsrf = session.cookies.get("_xsrf", path=f"/user/{ALICE}/")
    assert xsrf
    accepted = session.post(
        url, json=body, headers={"X-XSRFToken": xsrf}, timeout=30, allow_redirects=False
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["target"] == f"/home/{ALICE}/.conda/envs/xsrf-check"


def test_an_admin_and_an_operator_get_what_the_hub_grants(hub: Hub, alice: str):
    # JupyterHub's admin role holds access:servers: an admin may use every server.
    admin = hub.create_token(ADMIN)
    assert hub.get(ALICE, "repro/status", admin).status_code == 200
    assert hub.get(ALICE, "repro/environments", admin).status_code == 200

    # An operator role with admin:servers and admin:users (start, stop, read servers) but
    # no access:servers: the hub shows alice's server to them, her server refuses them.
    operator = hub.create_token(OPERATOR)
    model = hub.api("GET", f"users/{ALICE}", token=operator)
    assert model.status_code == 200
    assert model.json()["servers"][""]["ready"] is True
    for path in ("repro/status", "repro/environments"):
        assert hub.get(ALICE, path, operator).status_code == 403


def test_sharing_grants_the_shared_server_and_no_more(hub: Hub, alice: str, bob: str):
    alice_hub = hub.create_token(ALICE)  # her own permissions: shares!user, read:users:name
    granted = hub.api("POST", f"shares/{ALICE}/", token=alice_hub, json={"user": BOB})
    assert granted.status_code == 200, granted.text
    assert granted.json()["scopes"] == [server_scope(ALICE)]
    try:
        # Tokens made after the share carry it (the single-user server caches each token's
        # answer from the hub for HubAuth.cache_max_age, 5 minutes by default).
        bob_shared = hub.create_token(BOB, [server_scope(ALICE)])
        bob_default = hub.create_token(BOB)
        for token in (bob_shared, bob_default):
            assert hub.get(ALICE, "repro/status", token).status_code == 200
            assert hub.get(ALICE, "repro/environments", token).status_code == 200
        # ...and no more: not alice's hub account, not her server's life, not her shares.
        assert hub.api("DELETE", f"users/{ALICE}/server", token=bob_default).status_code in (
            403,
            404,
        )
        assert hub.api("GET", f"shares/{ALICE}", token=bob_default).status_code in (403, 404)
        assert hub.api("GET", "users", token=bob_default).status_code == 403
        assert hub.server(ALICE) is not None
    finally:
        revoked = hub.api("DELETE", f"shares/{ALICE}/", token=alice_hub)
        assert revoked.status_code == 204

    # Revoked: the hub gives bob no new token for her server, and a fresh one of his is refused.
    refused = hub.api(
        "POST", f"users/{BOB}/tokens", json={"scopes": [server_scope(ALICE)], "expires_in": 60}
    )
    assert refused.status_code == 400, refused.text
    assert "not held" in refused.json()["message"]
    assert hub.get(ALICE, "repro/status", hub.create_token(BOB)).status_code == 403


# --------------------------------------------------------------------------------------------
# restores through the proxy
# --------------------------------------------------------------------------------------------


def test_a_restore_job_runs_through_the_proxy_as_the_user(hub: Hub, alice: str, bob: str):
    ensure_running(hub, ALICE)
    job, seconds = restore(hub, ALICE, alice, "hub-made", "pkgc")

    assert job["state"] == "succeeded", job["error"]
    prefix = Path(job["result"]["prefix"])
    home = hub.users[ALICE].home
    assert prefix == home / ".conda" / "envs" / "hub-made"
    assert (prefix / "conda-meta").is_dir()
    assert {p.lstat().st_uid for p in prefix.rglob("*")} == {hub.users[ALICE].uid}

    listed = environments(hub, ALICE, alice)
    assert prefix in listed, sorted(map(str, listed))
    assert listed[prefix]["shared"] is False
    assert listed[prefix]["writable"] is True
    one = hub.get(ALICE, f"repro/environments/{listed[prefix]['name']}", alice)
    assert one.status_code == 200, one.text
    assert Path(one.json()["prefix"]) == prefix
    # bob's server lists his environments, not alice's; her job is not his to read.
    assert prefix not in environments(hub, BOB, bob)
    assert hub.get(ALICE, f"repro/jobs/{job['id']}", bob).status_code == 403
    print(f"restore through the proxy: {seconds:.2f} s")


def test_a_server_stopped_during_a_restore_leaves_nothing_listed(hub: Hub, bob: str):
    ensure_running(hub, BOB)
    gate = hub.channel.hold(GATED_PACKAGE)
    target = hub.users[BOB].home / ".conda" / "envs" / "interrupted"
    try:
        job = start_restore(hub, BOB, bob, "interrupted", GATED_PACKAGE, "pkga")
        assert gate.requested.wait(timeout=60), "the restore never asked for the held package"
        running = hub.get(BOB, f"repro/jobs/{job['id']}", bob).json()
        assert running["state"] == "running"

        # The operator (admin:servers) stops bob's server through the hub's API.
        operator = hub.create_token(OPERATOR)
        stop = hub.api("DELETE", f"users/{BOB}/server", token=operator)
        assert stop.status_code in (202, 204), stop.text
        deadline = time.monotonic() + 60
        while hub.server(BOB) is not None:
            assert time.monotonic() < deadline, "bob's server did not stop"
            time.sleep(0.1)
        stopped_after = time.monotonic()
        hub.start_server(BOB)
        restarted = time.monotonic() - stopped_after

        assert target not in environments(hub, BOB, bob)
        assert not os.path.lexists(target)
        # The next restore of that name is not refused by anything the first one left.
        plan = hub.post(
            BOB,
            "repro/restore",
            bob,
            {
                "source": {"content": environment_yml(hub.channel.url, "pkga")},
                "name": "interrupted",
                "dry_run": True,
            },
        )
        assert plan.status_code == 200, plan.text
        assert plan.json()["conflict"] is None
        print(f"restart after the stop: {restarted:.2f} s")
    finally:
        gate.release()


# --------------------------------------------------------------------------------------------
# shared environments (ReproApp.shared_envs_dirs)
# --------------------------------------------------------------------------------------------


def test_shared_environments_are_listed_as_shared_and_never_written(hub: Hub, alice: str):
    ensure_running(hub, ALICE)
    shared_prefix = hub.shared_envs_dir / SHARED_ENV_NAME
    before = tree_snapshot(hub.shared_envs_dir)

    listed = environments(hub, ALICE, alice)
    assert shared_prefix in listed, sorted(map(str, listed))
    entry = listed[shared_prefix]
    assert entry["name"] == SHARED_ENV_NAME
    assert entry["shared"] is True
    assert entry["writable"] is False
    one = hub.get(ALICE, f"repro/environments/{SHARED_ENV_NAME}", alice)
    assert one.status_code == 200, one.text
    assert one.json()["shared"] is True

    spec = environment_yml(hub.channel.url, "pkgb")
    # A prefix inside the shared folder is refused, dry run or not.
    for dry_run in (True, False):
        into_shared = hub.post(
            ALICE,
            "repro/restore",
            alice,
            {
                "source": {"content": spec},
                "prefix": str(hub.shared_envs_dir / "mine"),
                "dry_run": dry_run,
            },
        )
        assert 400 <= into_shared.status_code < 500, into_shared.text
        assert into_shared.json()["message"]
    # The shared environment's name is taken, as any existing environment's.
    taken = hub.post(
        ALICE, "repro/restore", alice, {"source": {"content": spec}, "name": SHARED_ENV_NAME}
    )
    assert taken.status_code == 409, taken.text
    plan = hub.post(
        ALICE,
        "repro/restore",
        alice,
        {"source": {"content": spec}, "name": SHARED_ENV_NAME, "dry_run": True},
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["conflict"] is not None
    assert plan.json()["suggested_name"] != SHARED_ENV_NAME

    assert tree_snapshot(hub.shared_envs_dir) == before
    assert not (hub.users[ALICE].home / ".conda" / "envs" / SHARED_ENV_NAME).exists()


# --------------------------------------------------------------------------------------------
# one package cache for everybody (ReproApp.package_cache_dir)
# --------------------------------------------------------------------------------------------

# Run as each user with the single-user venv's Python: which of these paths could that user
# change? In another user's environment: any path it may write. In the shared cache: any
# path it may write that is not its own, except sticky folders (where it may add entries
# but not remove or replace those of others).
_WRITABLE_CHECK = r"""
import json, os, stat, sys
args = json.loads(sys.argv[1])
me = os.getuid()
found, unreadable = [], []
def visit(root, strict):
    for folder, dirs, files in os.walk(root, onerror=lambda e: unreadable.append(e.filename)):
        for path in [folder] + [os.path.join(folder, n) for n in dirs + files]:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not os.access(path, os.W_OK):
                continue
            if strict:
                found.append(path)
            elif st.st_uid != me and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
                found.append(path)
for root in args["strict"]:
    visit(root, True)
for root in args["cache"]:
    visit(root, False)
print(json.dumps({"writable": sorted(set(found)), "unreadable": unreadable}))
"""


@pytest.fixture(scope="module")
def cached_restores(hub: Hub, alice: str, bob: str) -> dict[str, Any]:
    """alice, then bob, restore the same spec (packages nobody else restores)."""
    ensure_running(hub, ALICE)
    ensure_running(hub, BOB)
    done = {}
    for user, token in ((ALICE, alice), (BOB, bob)):
        job, seconds = restore(hub, user, token, "cached", CACHE_PACKAGES[0])
        done[user] = {"job": job, "seconds": seconds}
    return done


def test_two_users_restoring_one_spec_download_each_package_once(
    hub: Hub, cached_restores: dict[str, Any]
):
    for user in (ALICE, BOB):
        job = cached_restores[user]["job"]
        assert job["state"] == "succeeded", (user, job["error"], job["log"][-10:])
    downloads = {name: hub.channel.downloads(name) for name in CACHE_PACKAGES}
    for name, counts in downloads.items():
        assert counts, downloads
        assert all(n == 1 for n in counts.values()), downloads
    # The shared cache holds them (not each user's ~/.cache/rattler), however it lays them out.
    cached = {p.name for p in hub.package_cache.rglob("*")}
    for name in CACHE_PACKAGES:
        assert any(entry.startswith(f"{name}-1.0-") for entry in cached), sorted(cached)
        for user in (ALICE, BOB):
            own_cache = hub.users[user].home / ".cache" / "rattler" / "cache" / "pkgs"
            assert not list(own_cache.glob(f"{name}-*")), (user, sorted(own_cache.iterdir()))
    print(
        "restore of one spec: first user {:.2f} s, second user {:.2f} s".format(
            cached_restores[ALICE]["seconds"], cached_restores[BOB]["seconds"]
        )
    )


def test_no_cache_or_environment_file_is_writable_by_another_user(
    hub: Hub, cached_restores: dict[str, Any]
):
    for user in (ALICE, BOB):
        assert cached_restores[user]["job"]["state"] == "succeeded"
    envs = {user: hub.users[user].home / ".conda" / "envs" / "cached" for user in (ALICE, BOB)}
    python = str(hub.venv / "bin" / "python")
    problems = {}
    for user, other in ((ALICE, BOB), (BOB, ALICE)):
        args = {"strict": [str(envs[other])], "cache": [str(hub.package_cache)]}
        result = run_as(hub.users[user], [python, "-c", _WRITABLE_CHECK, json.dumps(args)])
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        if report["writable"]:
            problems[user] = report["writable"][:20]
    assert not problems, f"paths another user may change: {problems}"

    # Every file of an environment is its user's; nothing anywhere is world-writable
    # except sticky folders (the cache's top).
    for user, prefix in envs.items():
        owners = {p.lstat().st_uid for p in prefix.rglob("*")}
        assert owners == {hub.users[user].uid}, (user, owners)
    for root in (hub.package_cache, *envs.values()):
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            if path.is_symlink() or not st.st_mode & 0o002:
                continue
            assert path.is_dir(), f"{path} is world-writable"
            assert st.st_mode & 0o1000, f"{path} is world-writable and not sticky"
