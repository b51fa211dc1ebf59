"""The Environments panel over a rig conda installation: list, export, drift, strip status."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    api,
    change_theme,
    open_lab,
    open_notebook,
    open_panel,
    quote,
    read_json,
    save_notebook,
    shutdown_sessions,
    wait_for_list,
)
from tests.rig.channel import PYTHON_VERSION

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    """Each test opens a notebook, which starts a kernel: end them after each test."""
    yield
    shutdown_sessions(ui_lab.server)


def rows_by_name(page) -> dict[str, object]:
    rows = page.get_by_test_id("repro-env-item")
    return {rows.nth(i).get_attribute("data-env-name"): rows.nth(i) for i in range(rows.count())}


def test_panel_lists_the_rig_environments_and_filters_them(page, ui_lab, artifacts_dir):
    status, listed = api(ui_lab.server, "repro/environments")
    assert status == 200
    expected = {env["name"] for env in listed["environments"]}
    assert {"base", "work", "drifty", "tool"} <= expected

    open_lab(page, ui_lab.server)
    open_panel(page)
    wait_for_list(page)

    rows = rows_by_name(page)
    assert set(rows) == expected
    work = rows["work"]
    assert "conda" in work.locator(".jp-ReproEnv-kind").inner_text()
    assert work.locator(".jp-ReproEnv-python").inner_text() == f"Python {PYTHON_VERSION}"
    assert "conda-env-work-py" in work.inner_text()
    tool = rows["tool"]
    assert tool.locator(".jp-ReproEnv-python").inner_text() == "no Python"
    assert "no kernel" in tool.inner_text()
    assert page.get_by_test_id("repro-env-count").inner_text() == str(len(expected))
    page.screenshot(path=str(artifacts_dir / "ui-panel-environments.png"))

    page.get_by_test_id("repro-env-filter").fill("drif")
    visible = page.locator('[data-testid="repro-env-item"]:visible')
    visible.first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=repro-env-item]:not([hidden])').length"
        " === 1",
        timeout=TIMEOUT_MS,
    )
    assert visible.count() == 1
    assert visible.first.get_attribute("data-env-name") == "drifty"
    assert page.get_by_test_id("repro-env-count").inner_text() == f"1 of {len(expected)}"
    page.screenshot(path=str(artifacts_dir / "ui-panel-environments-filtered.png"))

    page.get_by_test_id("repro-env-filter").fill("")
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=repro-env-item]:not([hidden])').length"
        " === n",
        arg=len(expected),
        timeout=TIMEOUT_MS,
    )


def choose_export(page, mode: str, target: str) -> None:
    """Open the export dialog from the panel, pick mode and target, confirm."""
    panel = open_panel(page)
    button = panel.get_by_test_id("repro-export-button")
    # Enabled once the panel follows the open notebook.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=repro-export-button]').disabled",
        timeout=TIMEOUT_MS,
    )
    button.click()
    dialog = page.get_by_test_id("repro-export-dialog")
    dialog.wait_for(timeout=TIMEOUT_MS)
    dialog.get_by_test_id("repro-export-mode").select_option(mode)
    dialog.get_by_test_id("repro-export-target").select_option(target)
    page.get_by_test_id("repro-export-confirm").click()


def test_export_downloads_the_environment_spec(page, ui_lab, artifacts_dir, tmp_path):
    open_notebook(page, ui_lab.server, "export.ipynb")
    status, expected = api(ui_lab.server, "repro/environments/work/export?mode=no-builds")
    assert status == 200

    with page.expect_download(timeout=TIMEOUT_MS) as download_info:
        choose_export(page, "no-builds", "download")
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    page.screenshot(path=str(artifacts_dir / "ui-export-download.png"))

    assert download.suggested_filename == "environment.yml"
    content = saved.read_text()
    assert content == expected
    lines = content.splitlines()
    assert any(line.startswith("name:") for line in lines)
    assert "dependencies:" in lines
    assert any(re.fullmatch(r"\s+- pkga=1\.0", line) for line in lines), content


def test_export_saves_environment_yml_beside_the_notebook(page, ui_lab, artifacts_dir):
    target = ui_lab.root_dir / "beside" / "environment.yml"
    assert not target.exists()
    at_root = ui_lab.root_dir / "environment.yml"  # another test's, maybe: left alone
    before_at_root = at_root.read_text() if at_root.exists() else None
    open_notebook(page, ui_lab.server, "beside/beside.ipynb")
    status, expected = api(ui_lab.server, "repro/environments/work/export?mode=portable")
    assert status == 200

    choose_export(page, "portable", "file")

    # Saved, then opened in an editor tab.
    editor_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="environment.yml")
    editor_tab.first.wait_for(timeout=TIMEOUT_MS)
    assert target.is_file()
    assert target.read_text() == expected
    assert "dependencies:" in target.read_text()
    assert (at_root.read_text() if at_root.exists() else None) == before_at_root
    page.screenshot(path=str(artifacts_dir / "ui-export-beside.png"))


def test_export_embeds_the_spec_without_a_file_changed_dialog(page, ui_lab, artifacts_dir):
    path = ui_lab.root_dir / "embed.ipynb"
    assert "jupyter_repro" not in read_json(path)["metadata"]
    open_notebook(page, ui_lab.server, "embed.ipynb")

    choose_export(page, "portable", "metadata")

    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            return !!w.model.getMetadata('jupyter_repro') && !w.model.dirty;
        }""",
        timeout=TIMEOUT_MS,
    )
    assert page.locator(".jp-Dialog").count() == 0
    on_disk = read_json(path)["metadata"]
    environment = on_disk["jupyter_repro"]["environment"]
    assert environment, on_disk
    dumped = json.dumps(environment)
    assert "pkga" in dumped
    assert "python" in dumped
    # Saving again must not meet a "file changed on disk" conflict.
    page.evaluate("() => window.jupyterapp.shell.currentWidget.model.setMetadata('repro_test', 1)")
    assert save_notebook(page), "saving after the embed met a dialog"
    assert read_json(path)["metadata"]["repro_test"] == 1
    assert read_json(path)["metadata"]["jupyter_repro"]["environment"] == environment
    page.screenshot(path=str(artifacts_dir / "ui-export-embed.png"))


def test_drift_badge_turns_drifted_after_a_package_is_added(page, ui_lab, artifacts_dir):
    status, written = api(
        ui_lab.server,
        f"repro/notebooks/{quote('drift.ipynb')}/environment",
        method="POST",
        body={"target": "metadata", "mode": "portable"},
    )
    assert status == 200, written
    open_notebook(page, ui_lab.server, "drift.ipynb")
    panel = open_panel(page)
    badge = panel.get_by_test_id("repro-drift-badge")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-drift-badge]')"
        "?.dataset.driftStatus === 'in_sync'",
        timeout=TIMEOUT_MS,
    )
    assert badge.inner_text() == "In sync"
    page.screenshot(path=str(artifacts_dir / "ui-drift-in-sync.png"))

    ui_lab.installation.add_packages(ui_lab.installation.envs["drifty"], ["pkgc"])
    panel.get_by_test_id("repro-refresh").click()

    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-drift-badge]')"
        "?.dataset.driftStatus === 'drifted'",
        timeout=TIMEOUT_MS,
    )
    assert badge.inner_text() == "Drifted"
    details = panel.get_by_test_id("repro-drift-details")
    details.locator("summary").click()
    added = details.locator(".jp-ReproDrift-list.jp-mod-added")
    added.wait_for(timeout=TIMEOUT_MS)
    assert "pkgc" in added.inner_text()
    page.screenshot(path=str(artifacts_dir / "ui-drift-drifted.png"))


def test_strip_status_item_toggles_keep_output(page, ui_lab, artifacts_dir):
    path = ui_lab.root_dir / "strip.ipynb"
    open_notebook(page, ui_lab.server, "strip.ipynb")
    item = page.get_by_test_id("repro-strip-status")
    item.wait_for(timeout=TIMEOUT_MS)

    def wait_for_state(value: str) -> None:
        page.wait_for_function(
            "(v) => document.querySelector('[data-testid=repro-strip-status]')"
            "?.dataset.stripsOnSave === v",
            arg=value,
            timeout=TIMEOUT_MS,
        )

    wait_for_state("true")
    item.click()
    wait_for_state("false")
    page.screenshot(path=str(artifacts_dir / "ui-strip-status-kept.png"))
    assert save_notebook(page)
    saved = read_json(path)
    assert saved["metadata"]["keep_output"] is True
    assert saved["cells"][0]["outputs"], "outputs kept on save"

    item.click()
    wait_for_state("true")
    assert save_notebook(page)
    saved = read_json(path)
    assert not saved["metadata"].get("keep_output")
    assert saved["cells"][0]["outputs"] == [], "outputs stripped on save"
    page.screenshot(path=str(artifacts_dir / "ui-strip-status-stripped.png"))


# WCAG's contrast ratio between two "rgb(...)"/"rgba(...)" colours, computed in the page.
CONTRAST_JS = """
([selector]) => {
  const parse = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = rgb => {
    const [r, g, b] = rgb.map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (!/rgba\\(.*,\\s*0\\)$/.test(c) && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  return [...document.querySelectorAll(selector)].slice(0, 20).map(el => {
    const fg = luminance(parse(getComputedStyle(el).color));
    const bg = luminance(parse(background(el)));
    return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  });
}
"""


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_panel_is_readable_and_labelled_in_light_and_dark_themes(
    page, ui_lab, artifacts_dir, dark
):
    open_lab(page, ui_lab.server)
    try:
        if dark:
            change_theme(page, dark=True)
        flag = "false" if dark else "true"
        page.locator(f"body[data-jp-theme-light='{flag}']").wait_for(
            state="attached", timeout=TIMEOUT_MS
        )
        open_panel(page)
        wait_for_list(page)
        selectors = (
            "[data-testid=repro-env-item]",
            "[data-testid=repro-panel] h2, [data-testid=repro-panel] h3",
            "[data-testid=repro-export-button]",
            "[data-testid=repro-drift-badge]",
        )
        ratios = [r for s in selectors for r in page.evaluate(CONTRAST_JS, [s])]
        assert ratios, "nothing to measure: the panel's elements were not found"
        # WCAG AA asks 4.5 for body text; badges and headings are short, large or bold.
        assert min(ratios) >= 3.0, ratios
        # Every control of the panel has a name a screen reader can say and takes the focus.
        controls = page.evaluate(
            """() => [...document.querySelectorAll(
                 '[data-testid=repro-panel] button, [data-testid=repro-panel] input,'
                 + ' [data-testid=repro-panel] select')].map(el => ({
                   name: (el.getAttribute('aria-label') || el.textContent
                          || el.getAttribute('placeholder') || '').trim(),
                   focusable: el.tabIndex >= 0}))"""
        )
        assert len(controls) >= 3, controls
        assert all(c["name"] and c["focusable"] for c in controls), controls
        name = "dark" if dark else "light"
        page.screenshot(path=str(artifacts_dir / f"ui-panel-theme-{name}.png"))
    finally:
        if dark:
            # The theme is a user setting of the shared server: leave it light for the others.
            change_theme(page, dark=False)
