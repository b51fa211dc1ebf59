"""The Environments panel in a single-user server of a real JupyterHub, logged in through the
hub's login page in Debian's chromium (the hub: tests/hub/rig.py)."""

from __future__ import annotations

import pytest

from jupyter_repro import __version__
from tests.hub.rig import ALICE, SHARED_ENV_NAME, Hub

pytestmark = pytest.mark.browser

PANEL_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jupyter-repro-environments"]'
TIMEOUT_MS = 90_000
"""Generous: logging in may spawn the user's server (a few seconds)."""


def log_in_and_open_the_panel(page, hub: Hub, user: str):
    page.goto(f"{hub.url}hub/login", timeout=TIMEOUT_MS)
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    # The hub spawns the server if needed, then OAuth brings the browser to JupyterLab.
    page.wait_for_url(f"{hub.url}user/{user}/lab**", timeout=TIMEOUT_MS)
    tab = page.locator(PANEL_TAB)
    tab.wait_for(state="visible", timeout=TIMEOUT_MS)
    panel = page.get_by_test_id("repro-panel")
    if not panel.is_visible():
        tab.click()
    panel.wait_for(state="visible", timeout=TIMEOUT_MS)
    return panel


def listed_names(hub: Hub, user: str) -> set[str]:
    token = hub.create_token(user, [f"access:servers!server={user}/"])
    response = hub.get(user, "repro/environments", token)
    assert response.status_code == 200, response.text
    return {env["name"] for env in response.json()["environments"]}


def rows_by_name(panel) -> dict[str, object]:
    rows = panel.get_by_test_id("repro-env-item")
    rows.first.wait_for(timeout=TIMEOUT_MS)
    return {rows.nth(i).get_attribute("data-env-name"): rows.nth(i) for i in range(rows.count())}


def test_log_in_through_the_hub_and_open_the_panel(page, hub: Hub, artifacts_dir):
    panel = log_in_and_open_the_panel(page, hub, ALICE)

    version = panel.get_by_test_id("repro-server-version")
    version.wait_for(timeout=TIMEOUT_MS)
    assert version.inner_text().strip() == __version__
    assert panel.get_by_test_id("repro-frontend-version").inner_text().strip() == __version__
    assert panel.get_by_test_id("repro-status-error").count() == 0
    assert page.url.startswith(f"{hub.url}user/{ALICE}/lab")
    # The panel lists what the server lists through the proxy, with the hub's cookie auth.
    assert set(rows_by_name(panel)) == listed_names(hub, ALICE)
    page.screenshot(path=str(artifacts_dir / "hub-panel.png"))


def test_the_panel_marks_shared_environments(page, hub: Hub, artifacts_dir):
    panel = log_in_and_open_the_panel(page, hub, ALICE)

    rows = rows_by_name(panel)
    assert SHARED_ENV_NAME in rows, sorted(rows)
    badge = rows[SHARED_ENV_NAME].get_by_test_id("repro-env-shared-badge")  # type: ignore[attr-defined]
    badge.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "hub-panel-shared.png"))
