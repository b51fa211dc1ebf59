"""The Environments panel in a real JupyterLab, in a real browser."""

from __future__ import annotations

import json

import pytest

from jupyter_repro import __version__

pytestmark = pytest.mark.browser

PANEL_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jupyter-repro-environments"]'
TIMEOUT_MS = 60_000


def open_environments_panel(page, lab_server):
    page.goto(lab_server.lab_url(), timeout=TIMEOUT_MS)
    tab = page.locator(PANEL_TAB)
    tab.wait_for(state="visible", timeout=TIMEOUT_MS)
    panel = page.get_by_test_id("repro-panel")
    if not panel.is_visible():
        tab.click()
    panel.wait_for(state="visible", timeout=TIMEOUT_MS)
    return panel


def test_panel_shows_the_server_version_and_engine(page, lab_server, artifacts_dir):
    panel = open_environments_panel(page, lab_server)

    server_version = panel.get_by_test_id("repro-server-version")
    server_version.wait_for(timeout=TIMEOUT_MS)
    assert server_version.inner_text().strip() == __version__
    assert panel.get_by_test_id("repro-frontend-version").inner_text().strip() == __version__
    assert panel.get_by_test_id("repro-engine").inner_text().strip().startswith("rattler ")
    assert panel.get_by_test_id("repro-version-mismatch").count() == 0
    assert panel.get_by_test_id("repro-status-error").count() == 0
    page.screenshot(path=str(artifacts_dir / "environments-panel.png"))


def test_panel_warns_when_frontend_and_server_versions_differ(page, lab_server, artifacts_dir):
    other_version = "99.0.0"

    def answer_with_other_version(route):
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                {
                    "version": other_version,
                    "engine": {"name": "rattler", "version": "0.28.0", "embedded": True},
                    "clis": {"conda": None, "mamba": None, "micromamba": None},
                }
            ),
        )

    page.route("**/repro/status*", answer_with_other_version)
    panel = open_environments_panel(page, lab_server)

    warning = panel.get_by_test_id("repro-version-mismatch")
    warning.wait_for(timeout=TIMEOUT_MS)
    assert other_version in warning.inner_text()
    assert __version__ in warning.inner_text()
    assert panel.get_by_test_id("repro-server-version").inner_text().strip() == other_version
    page.screenshot(path=str(artifacts_dir / "environments-panel-version-mismatch.png"))


def test_panel_shows_the_server_error_and_recovers_on_retry(page, lab_server, artifacts_dir):
    failing = {"on": True}

    def fail_then_pass(route):
        if failing["on"]:
            route.fulfill(
                status=500,
                content_type="application/json",
                body=json.dumps({"message": "engine exploded for the test", "reason": None}),
            )
        else:
            route.continue_()

    page.route("**/repro/status*", fail_then_pass)
    panel = open_environments_panel(page, lab_server)

    error = panel.get_by_test_id("repro-status-error")
    error.wait_for(timeout=TIMEOUT_MS)
    assert "engine exploded for the test" in error.inner_text()
    page.screenshot(path=str(artifacts_dir / "environments-panel-error.png"))

    failing["on"] = False
    panel.get_by_test_id("repro-retry").click()
    panel.get_by_test_id("repro-server-version").wait_for(timeout=TIMEOUT_MS)
    assert panel.get_by_test_id("repro-server-version").inner_text().strip() == __version__
    assert panel.get_by_test_id("repro-status-error").count() == 0
