"""The drift badge follows the open notebook (its kernel, the environment on disk), a new
notebook is never "Environment missing", and the git filter's status-bar item."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    api,
    open_lab,
    open_notebook,
    open_panel,
    quote,
    shutdown_sessions,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

BADGE = "[data-testid=repro-drift-badge]"
DISK_DEADLINE_S = 5.0
"""How soon the badge must show a package installed into (or removed from) the environment."""


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    """Each test opens a notebook, which starts a kernel: end them after each test."""
    yield
    shutdown_sessions(ui_lab.server)


def badge_status(page) -> str:
    return page.evaluate(f"() => document.querySelector('{BADGE}')?.dataset.driftStatus ?? ''")


def wait_for_badge(page, status: str, timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_function(
        f"(s) => document.querySelector('{BADGE}')?.dataset.driftStatus === s",
        arg=status,
        timeout=timeout,
    )


def record_badge_states(page) -> None:
    """Keep every status the badge shows in `window.__reproBadgeStates`."""
    page.evaluate(
        f"""() => {{
            window.__reproBadgeStates = [];
            const badge = document.querySelector('{BADGE}');
            const note = () => window.__reproBadgeStates.push(badge.dataset.driftStatus);
            note();
            new MutationObserver(note).observe(badge, {{ attributes: true }});
        }}"""
    )


def embed(server, path: str) -> None:
    status, body = api(
        server,
        f"repro/notebooks/{quote(path)}/environment",
        method="POST",
        body={"target": "metadata", "mode": "portable"},
    )
    assert status == 200, body


def test_the_badge_follows_a_kernel_change_without_refresh(page, ui_lab, artifacts_dir):
    write_notebook(ui_lab.root_dir / "switch.ipynb", "conda-env-work-py", "Python [work]")
    embed(ui_lab.server, "switch.ipynb")
    open_notebook(page, ui_lab.server, "switch.ipynb")
    panel = open_panel(page)
    wait_for_badge(page, "in_sync")
    page.screenshot(path=str(artifacts_dir / "ui-drift-kernel-before.png"))

    # The user picks another environment's kernel; nothing is saved, nothing refreshed.
    page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.sessionContext
              .changeKernel({ name: 'conda-env-drifty-py' })"""
    )

    wait_for_badge(page, "drifted")
    active = panel.get_by_test_id("repro-active-notebook")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-active-notebook]')"
        "?.textContent.includes('drifty')",
        timeout=TIMEOUT_MS,
    )
    assert "drifty" in active.inner_text()
    details = panel.get_by_test_id("repro-drift-details")
    details.locator("summary").click()
    assert "pkgb" in details.inner_text()  # requested in drifty, not in the work spec
    page.screenshot(path=str(artifacts_dir / "ui-drift-kernel-after.png"))

    # And back: in sync again.
    page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.sessionContext
              .changeKernel({ name: 'conda-env-work-py' })"""
    )
    wait_for_badge(page, "in_sync")


def test_the_badge_follows_packages_installed_on_disk(page, ui_lab, artifacts_dir):
    installation = ui_lab.installation
    prefix = installation.create_env("watched", ("python", "ipykernel"))
    deadline = time.monotonic() + 30
    while "conda-env-watched-py" not in json.dumps(api(ui_lab.server, "api/kernelspecs")[1]):
        assert time.monotonic() < deadline, "the new environment's kernel is not listed"
        time.sleep(0.2)
    write_notebook(ui_lab.root_dir / "watched.ipynb", "conda-env-watched-py", "Python [watched]")
    embed(ui_lab.server, "watched.ipynb")
    open_notebook(page, ui_lab.server, "watched.ipynb")
    open_panel(page)
    wait_for_badge(page, "in_sync")

    installation.add_packages(prefix, ["pkgc"])
    installed = time.monotonic()
    wait_for_badge(page, "drifted", timeout=DISK_DEADLINE_S * 1000)
    seen_after = time.monotonic() - installed
    page.screenshot(path=str(artifacts_dir / "ui-drift-disk-installed.png"))
    details = page.get_by_test_id("repro-drift-details")
    details.locator("summary").click()
    assert "pkgc" in details.inner_text()

    installation.remove_packages(prefix, ["pkgc"])
    removed = time.monotonic()
    wait_for_badge(page, "in_sync", timeout=DISK_DEADLINE_S * 1000)
    seen_after_removal = time.monotonic() - removed
    page.screenshot(path=str(artifacts_dir / "ui-drift-disk-removed.png"))
    print(
        f"drift seen {seen_after:.1f} s after the install, "
        f"{seen_after_removal:.1f} s after the removal"
    )
    assert seen_after < DISK_DEADLINE_S
    assert seen_after_removal < DISK_DEADLINE_S


def test_a_new_untitled_notebook_is_never_environment_missing(page, ui_lab, artifacts_dir):
    folder = ui_lab.root_dir / "fresh"
    folder.mkdir()
    # A spec beside it without a name: the file on disk (no kernelspec) would be judged
    # "missing_environment" against it.
    (folder / "environment.yml").write_text("dependencies:\n  - python\n  - ipykernel\n")
    open_lab(page, ui_lab.server)
    open_panel(page)
    record_badge_states(page)

    page.evaluate(
        """() => { void window.jupyterapp.commands.execute('notebook:create-new',
                     { cwd: 'fresh', kernelName: 'conda-env-work-py' }); }"""
    )
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            return !!w && !!w.context && w.context.path.startsWith('fresh/')
                && w.context.isReady && w.sessionContext.isReady
                && !!w.sessionContext.session?.kernel;
        }""",
        timeout=TIMEOUT_MS,
    )
    path = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    page.wait_for_function(
        f"() => ['in_sync', 'drifted'].includes(document.querySelector('{BADGE}')"
        "?.dataset.driftStatus)",
        timeout=TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "ui-drift-untitled.png"))

    states = page.evaluate("() => window.__reproBadgeStates")
    assert "missing_environment" not in states, states
    assert "Environment missing" not in page.get_by_test_id("repro-panel").inner_text()
    # The scenario is real: the file as saved names no kernel, and judged as saved it would
    # be missing its environment.
    on_disk = json.loads((ui_lab.root_dir / path).read_text())
    assert "kernelspec" not in on_disk["metadata"]
    status, saved = api(ui_lab.server, f"repro/notebooks/{quote(path)}/drift")
    assert status == 200
    assert saved["status"] == "missing_environment"


def test_the_git_item_shows_and_installs_the_filter(page, ui_lab, artifacts_dir):
    repo = ui_lab.root_dir / "gitrepo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    write_notebook(repo / "tracked.ipynb", "conda-env-work-py", "Python [work]")
    open_notebook(page, ui_lab.server, "gitrepo/tracked.ipynb")
    item = page.get_by_test_id("repro-git-status")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-git-status]')"
        "?.dataset.gitState === 'not-installed'",
        timeout=TIMEOUT_MS,
    )
    assert item.inner_text() == "Git filter: off"
    assert "not installed" in item.get_attribute("title")
    page.screenshot(path=str(artifacts_dir / "ui-git-not-installed.png"))

    item.click()
    confirm = page.get_by_test_id("repro-git-install-confirm")
    confirm.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "ui-git-install-dialog.png"))
    confirm.click()

    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-git-status]')"
        "?.dataset.gitState === 'installed'",
        timeout=TIMEOUT_MS,
    )
    assert item.inner_text() == "Git filter: on"
    attributes = (repo / ".git" / "info" / "attributes").read_text()
    assert "*.ipynb filter=jupyter-repro diff=jupyter-repro" in attributes
    status, answer = api(ui_lab.server, f"repro/notebooks/{quote('gitrepo/tracked.ipynb')}/git")
    assert status == 200, answer
    assert answer["installed"] is True, answer
    page.screenshot(path=str(artifacts_dir / "ui-git-installed.png"))


def test_the_git_item_is_hidden_outside_a_repository(page, ui_lab):
    write_notebook(ui_lab.root_dir / "nogit.ipynb", "conda-env-work-py", "Python [work]")
    open_notebook(page, ui_lab.server, "nogit.ipynb")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-git-status]')"
        "?.dataset.gitState === 'none'",
        timeout=TIMEOUT_MS,
    )
    assert not page.get_by_test_id("repro-git-status").is_visible()
