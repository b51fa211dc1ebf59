"""The Environments panel as a place to work: sorted list, filters, keyboard, details, actions.

Over the rig installation of ``ui_lab`` (base, work, drifty, tool) plus ``panel-pip``, made
here: python, ipykernel and pkga from the rig channel, and a pip-installed distribution.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.test_ui_environments import CONTRAST_JS
from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    api,
    change_theme,
    open_lab,
    open_panel,
    shutdown_sessions,
    wait_for_list,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PIP_ENV = "panel-pip"
PIP_PACKAGE = ("tinypip", "0.3.1")

SHOWN_ROWS = "() => [...document.querySelectorAll('[data-testid=repro-env-item]:not([hidden])')]"
SHOWN_NAMES = SHOWN_ROWS + ".map(r => r.dataset.envName)"
# What has the keyboard focus: a row's environment name, else the element's test id.
FOCUSED = "() => { const d = document.activeElement?.dataset; return d?.envName ?? d?.testid; }"


@pytest.fixture(scope="module")
def pip_env(ui_lab) -> str:
    """An environment with a kernel, conda packages and a pip package, listed by the server."""
    installation = ui_lab.installation
    if PIP_ENV not in installation.envs:
        prefix = installation.create_env(PIP_ENV, ["python", "ipykernel", "pkga"])
        installation.add_pip_package(prefix, *PIP_PACKAGE)
    deadline = time.monotonic() + 30
    while True:
        status, listed = api(ui_lab.server, "repro/environments")
        assert status == 200, listed
        if PIP_ENV in {env["name"] for env in listed["environments"]}:
            return PIP_ENV
        assert time.monotonic() < deadline, f"{PIP_ENV} never listed: {listed}"
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    yield
    shutdown_sessions(ui_lab.server)


def listing(server) -> list[dict]:
    status, listed = api(server, "repro/environments")
    assert status == 200, listed
    return listed["environments"]


def expected_order(environments: list[dict]) -> list[str]:
    """Base first, then by name, case ignored (the rig's names hold no numbers)."""
    return [
        env["name"]
        for env in sorted(environments, key=lambda e: (not e["is_base"], e["name"].lower()))
    ]


def shown_names(page) -> list[str]:
    return page.evaluate(SHOWN_NAMES)


def wait_for_shown(page, names: list[str]) -> None:
    page.wait_for_function(
        f"(names) => JSON.stringify(({SHOWN_NAMES})()) === JSON.stringify(names)",
        arg=names,
        timeout=TIMEOUT_MS,
    )


def open_list(page, server, *, tall: bool = False):
    """Lab with the panel shown and listed, once the launcher has taken the focus it takes.

    A fresh workspace opens a launcher after the app is restored, and activating it moves the
    keyboard focus into the main area: a test that checks the focus must start after that.
    ``tall``: a window tall enough for screenshots to show the details with their packages.
    """
    if tall:
        page.set_viewport_size({"width": 1400, "height": 1300})
    open_lab(page, server)
    page.locator(".jp-Launcher").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    panel = open_panel(page)
    wait_for_list(page)
    return panel


def wait_for_packages(page, name: str):
    """The details view of ``name`` with its packages loaded."""
    details = page.get_by_test_id("repro-env-details")
    details.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.wait_for_function(
        """(name) => {
            const view = document.querySelector('[data-testid=repro-env-details]');
            return view && view.dataset.envName === name
                && view.getAttribute('aria-busy') === 'false'
                && !!view.querySelector('[data-testid=repro-env-package]');
        }""",
        arg=name,
        timeout=TIMEOUT_MS,
    )
    return details


def shown_packages(details) -> list[str]:
    return details.evaluate(
        """(view) => [...view.querySelectorAll('[data-testid=repro-env-package]:not([hidden])')]
            .map(r => `${r.dataset.packageSource}:${r.dataset.packageName}`)"""
    )


def test_details_view_lists_the_packages_opened_by_click(page, ui_lab, pip_env, artifacts_dir):
    status, expected = api(ui_lab.server, f"repro/environments/{pip_env}")
    assert status == 200, expected
    conda = {p["name"]: p for p in expected["conda_packages"]}
    assert {"python", "ipykernel", "pkga"} <= set(conda)
    assert {p["name"]: p["version"] for p in expected["pip_packages"]} == dict([PIP_PACKAGE])

    panel = open_list(page, ui_lab.server, tall=True)
    panel.locator(f'[data-testid=repro-env-item][data-env-name="{pip_env}"]').click()
    details = wait_for_packages(page, pip_env)
    assert page.get_by_test_id("repro-env-list").is_hidden()

    assert details.get_by_test_id("repro-env-details-title").inner_text() == pip_env
    assert details.get_by_test_id("repro-env-details-prefix").inner_text() == expected["prefix"]
    assert details.get_by_test_id("repro-env-details-kind").inner_text() == expected["kind"]
    assert (
        details.get_by_test_id("repro-env-details-python").inner_text()
        == expected["python_version"]
    )
    kernels = details.get_by_test_id("repro-env-details-kernels").inner_text().split()
    assert kernels == expected["kernels"]
    channels = list(dict.fromkeys(p["channel"] for p in expected["conda_packages"] if p["channel"]))
    assert channels, expected
    assert details.get_by_test_id("repro-env-details-channels").inner_text() == ", ".join(channels)

    rows = shown_packages(details)
    assert rows == [f"conda:{p['name']}" for p in expected["conda_packages"]] + [
        f"pip:{p['name']}" for p in expected["pip_packages"]
    ]
    pkga = details.locator('[data-testid=repro-env-package][data-package-name="pkga"]')
    assert conda["pkga"]["version"] in pkga.inner_text()
    tinypip = details.locator('[data-testid=repro-env-package][data-package-name="tinypip"]')
    assert PIP_PACKAGE[1] in tinypip.inner_text()
    total = len(rows)
    assert details.get_by_test_id("repro-env-package-count").inner_text() == str(total)
    page.screenshot(path=str(artifacts_dir / "ui-panel-details.png"))

    search = details.get_by_test_id("repro-env-package-search")
    search.fill("pkga")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-env-package-count]')"
        ".textContent.includes(' of ')",
        timeout=TIMEOUT_MS,
    )
    assert shown_packages(details) == ["conda:pkga"]
    assert details.get_by_test_id("repro-env-package-count").inner_text() == f"1 of {total}"
    page.screenshot(path=str(artifacts_dir / "ui-panel-details-search.png"))
    search.fill("pypi")
    assert shown_packages(details) == ["pip:tinypip"]
    search.fill("no-such-package-anywhere")
    assert shown_packages(details) == []
    assert details.get_by_test_id("repro-env-packages-no-matches").is_visible()

    # Copy the prefix: what the page puts on the clipboard.
    page.evaluate(
        """() => { window.__reproCopied = [];
            document.addEventListener('copy', e => window.__reproCopied.push(
                e.clipboardData.getData('text/plain'))); }"""
    )
    details.get_by_test_id("repro-env-copy-prefix").click()
    assert page.evaluate("() => window.__reproCopied") == [expected["prefix"]]
    assert details.get_by_test_id("repro-env-details-message").inner_text() == (
        "Prefix copied to the clipboard."
    )

    details.get_by_test_id("repro-env-details-back").click()
    page.get_by_test_id("repro-env-list").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert details.is_hidden()
    assert page.evaluate(FOCUSED) == pip_env


def test_list_is_sorted_and_operated_by_keyboard_only(page, ui_lab, pip_env, artifacts_dir):
    order = expected_order(listing(ui_lab.server))
    assert order[0] == "base"
    open_list(page, ui_lab.server, tall=True)
    assert shown_names(page) == order

    # From the filter box, Tab reaches the kind and kernel filters, then the list: one tab
    # stop, on its first row.
    page.get_by_test_id("repro-env-filter").focus()
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "repro-env-kind-filter"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "repro-env-kernel-filter"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == order[0]
    assert page.evaluate("() => document.activeElement.getAttribute('role')") == "option"

    page.keyboard.press("End")
    assert page.evaluate(FOCUSED) == order[-1]
    page.keyboard.press("Home")
    target = order.index(pip_env)
    for _ in range(target):
        page.keyboard.press("ArrowDown")
    assert page.evaluate(FOCUSED) == pip_env
    assert page.evaluate("() => document.activeElement.getAttribute('aria-selected')") == "true"
    page.screenshot(path=str(artifacts_dir / "ui-panel-keyboard-focus.png"))

    page.keyboard.press("Enter")
    details = wait_for_packages(page, pip_env)
    assert page.evaluate(FOCUSED) == "repro-env-details-title"
    # Tab through the view to its package search, type, and leave with Escape twice: the
    # first clears the search, the second goes back to the row.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED) == "repro-env-package-search":
            break
    assert page.evaluate(FOCUSED) == "repro-env-package-search"
    page.keyboard.type("pkga")
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'[data-testid=repro-env-package]:not([hidden])').length === 1",
        timeout=TIMEOUT_MS,
    )
    assert shown_packages(details) == ["conda:pkga"]
    page.screenshot(path=str(artifacts_dir / "ui-panel-details-keyboard.png"))
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-env-package-search]').value === ''",
        timeout=TIMEOUT_MS,
    )
    assert details.is_visible()
    page.keyboard.press("Escape")
    page.get_by_test_id("repro-env-list").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert details.is_hidden()
    assert page.evaluate(FOCUSED) == pip_env

    # Space opens the details as well.
    page.keyboard.press("ArrowUp")
    above = order[target - 1]
    assert page.evaluate(FOCUSED) == above
    page.keyboard.press(" ")
    wait_for_packages(page, above)


def test_filters_by_kind_and_kernel_and_says_no_matches(page, ui_lab, pip_env, artifacts_dir):
    environments = listing(ui_lab.server)
    order = expected_order(environments)
    kernels = {env["name"]: env["kernels"] for env in environments}
    kinds = {env["name"]: env["kind"] for env in environments}
    without_kernel = [name for name in order if not kernels[name]]
    assert "tool" in without_kernel
    panel = open_list(page, ui_lab.server)
    count = page.get_by_test_id("repro-env-count")
    no_matches = page.get_by_test_id("repro-env-no-matches")
    assert no_matches.is_hidden()

    panel.get_by_test_id("repro-env-kernel-filter").select_option("no-kernel")
    wait_for_shown(page, without_kernel)
    assert count.inner_text() == f"{len(without_kernel)} of {len(order)}"
    page.screenshot(path=str(artifacts_dir / "ui-panel-filter-no-kernel.png"))

    # By kind, whatever kinds this machine has (the server's own environment may be a venv).
    panel.get_by_test_id("repro-env-kernel-filter").select_option("any")
    for kind in sorted({env["kind"] for env in environments}):
        panel.get_by_test_id("repro-env-kind-filter").select_option(kind)
        wait_for_shown(page, [n for n in order if kinds[n] == kind])
    panel.get_by_test_id("repro-env-kernel-filter").select_option("no-kernel")

    # No pixi environment on this machine: nothing matches.
    assert "pixi" not in kinds.values()
    panel.get_by_test_id("repro-env-kind-filter").select_option("pixi")
    wait_for_shown(page, [])
    no_matches.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert "No environments match the filters." in no_matches.inner_text()
    assert count.inner_text() == f"0 of {len(order)}"
    page.screenshot(path=str(artifacts_dir / "ui-panel-no-matches.png"))

    page.get_by_test_id("repro-env-clear-filters").click()
    wait_for_shown(page, order)
    assert no_matches.is_hidden()
    assert panel.get_by_test_id("repro-env-kernel-filter").input_value() == "any"

    # The text filter alone, too.
    page.get_by_test_id("repro-env-filter").fill("zzz-no-such-env")
    no_matches.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert shown_names(page) == []
    page.get_by_test_id("repro-env-filter").fill("")
    wait_for_shown(page, order)


def test_export_downloads_an_environment_no_notebook_uses(page, ui_lab, artifacts_dir, tmp_path):
    status, expected = api(ui_lab.server, "repro/environments/tool/export?mode=no-builds")
    assert status == 200, expected
    panel = open_list(page, ui_lab.server, tall=True)
    assert page.get_by_test_id("repro-active-environment").inner_text() == ""
    panel.locator('[data-testid=repro-env-item][data-env-name="tool"]').click()
    details = wait_for_packages(page, "tool")
    details.get_by_test_id("repro-env-export-mode").select_option("no-builds")

    with page.expect_download(timeout=TIMEOUT_MS) as download_info:
        details.get_by_test_id("repro-env-export").click()
    download = download_info.value
    assert download.suggested_filename == "environment-tool.yml"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_text() == expected
    assert "pkgc" in expected
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-env-details-message]')"
        ".textContent === 'Downloaded environment-tool.yml.'",
        timeout=TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "ui-panel-export-other-environment.png"))


RUN_IN_CONSOLE = """async () => {
    const widget = window.jupyterapp.shell.currentWidget;
    const kernel = widget.sessionContext.session.kernel;
    const future = kernel.requestExecute({ code: 'import sys; print(sys.prefix)' });
    let out = '';
    future.onIOPub = msg => {
        if (msg.header.msg_type === 'stream') out += msg.content.text;
    };
    await future.done;
    return out.trim();
}"""


def test_new_console_runs_on_the_environments_kernel(page, ui_lab, artifacts_dir):
    prefix = str(ui_lab.installation.envs["work"])
    panel = open_list(page, ui_lab.server)
    panel.locator('[data-testid=repro-env-item][data-env-name="work"]').click()
    details = wait_for_packages(page, "work")
    assert details.get_by_test_id("repro-env-no-kernel").is_hidden()
    details.get_by_test_id("repro-env-open-console").click()

    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            return !!w && w.node.classList.contains('jp-ConsolePanel')
                && w.sessionContext.session?.kernel?.name === 'conda-env-work-py'
                && w.sessionContext.session.kernel.status === 'idle';
        }""",
        timeout=TIMEOUT_MS,
    )
    assert page.evaluate(RUN_IN_CONSOLE) == prefix
    status, sessions = api(ui_lab.server, "api/sessions")
    assert status == 200
    assert ("console", "conda-env-work-py") in [(s["type"], s["kernel"]["name"]) for s in sessions]
    page.screenshot(path=str(artifacts_dir / "ui-panel-console.png"))


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_details_view_is_readable_and_labelled(page, ui_lab, pip_env, artifacts_dir, dark):
    page.set_viewport_size({"width": 1400, "height": 1300})
    open_lab(page, ui_lab.server)
    try:
        if dark:
            change_theme(page, dark=True)
        flag = "false" if dark else "true"
        page.locator(f"body[data-jp-theme-light='{flag}']").wait_for(
            state="attached", timeout=TIMEOUT_MS
        )
        panel = open_panel(page)
        wait_for_list(page)
        panel.locator(f'[data-testid=repro-env-item][data-env-name="{pip_env}"]').click()
        wait_for_packages(page, pip_env)
        selectors = (
            "[data-testid=repro-env-details] h3, [data-testid=repro-env-details] h5",
            "[data-testid=repro-env-details] dt, [data-testid=repro-env-details] dd",
            "[data-testid=repro-env-details] button",
            "[data-testid=repro-env-package] td, [data-testid=repro-env-details] th",
        )
        ratios = [r for s in selectors for r in page.evaluate(CONTRAST_JS, [s])]
        assert len(ratios) >= 10, ratios
        assert min(ratios) >= 3.0, ratios
        controls = page.evaluate(
            """() => [...document.querySelectorAll(
                 '[data-testid=repro-panel] button, [data-testid=repro-panel] input,'
                 + ' [data-testid=repro-panel] select')].map(el => ({
                   id: el.dataset.testid,
                   name: (el.getAttribute('aria-label') || el.textContent
                          || el.getAttribute('placeholder') || '').trim(),
                   focusable: el.tabIndex >= 0}))"""
        )
        ids = {c["id"] for c in controls}
        assert {
            "repro-env-kind-filter",
            "repro-env-kernel-filter",
            "repro-env-details-back",
            "repro-env-export",
            "repro-env-export-mode",
            "repro-env-open-notebook",
            "repro-env-open-console",
            "repro-env-copy-prefix",
            "repro-env-package-search",
        } <= ids, ids
        assert all(c["name"] and c["focusable"] for c in controls), controls
        name = "dark" if dark else "light"
        page.screenshot(path=str(artifacts_dir / f"ui-panel-details-theme-{name}.png"))
    finally:
        if dark:
            # The theme is a user setting of the shared server: leave it light for the others.
            change_theme(page, dark=False)
