"""Restore from an environment.yml in the browser: plan, progress, success and kernel, cancel.

The specs need a package of the gated HTTP channel: its download waits until the test
releases it, so the restore is seen in its download phase however fast the machine is.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    api,
    environment_yml,
    open_notebook,
    run_command,
    shutdown_sessions,
    wait_for_job,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

GATE_TIMEOUT_S = 90

# Every phase the phase line shows (`<phase> <done>/<total>`, from its data attributes),
# recorded in the page as it changes.
RECORD_PHASES = """() => {
    window.__reproPhases = [];
    const record = () => {
        const node = document.querySelector('[data-testid=repro-restore-phase]');
        const text = node && node.dataset.phase
            ? `${node.dataset.phase} ${node.dataset.done}/${node.dataset.total}` : null;
        const seen = window.__reproPhases;
        if (text && seen[seen.length - 1] !== text) {
            seen.push(text);
        }
    };
    new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, characterData: true
    });
}"""


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    yield
    shutdown_sessions(ui_lab.server)


SELECTED = """(name) => [...document.querySelectorAll('.jp-DirListing-item.jp-mod-selected')]
    .some(n => n.querySelector('.jp-DirListing-itemText')?.textContent.trim() === name)"""


def restore_from_file_menu(page, filename: str) -> None:
    """Right-click ``filename`` in the file browser and choose the restore item."""
    run_command(page, "filebrowser:activate")
    text = page.locator(".jp-DirListing-itemText", has_text=filename)
    item = page.locator(".jp-DirListing-item", has=text).first
    item.wait_for(timeout=TIMEOUT_MS)
    # Click until the file is selected (a click landing while the listing refreshes is lost).
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        item.click()
        try:
            page.wait_for_function(SELECTED, arg=filename, timeout=5000)
            break
        except PlaywrightTimeoutError:
            assert time.monotonic() < deadline, f"{filename} never got selected"
    item.click(button="right")
    menu_item = page.locator(".lm-Menu-item", has_text="Restore Environment from This File").first
    menu_item.wait_for(timeout=TIMEOUT_MS)
    # Through the keyboard: an item made active, then Enter, whatever the pointer did.
    menu_item.hover()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.lm-Menu-item.lm-mod-active')]
            .some(n => n.textContent.includes('Restore Environment from This File'))""",
        timeout=TIMEOUT_MS,
    )
    page.keyboard.press("Enter")


def plan_dialog(page):
    dialog = page.get_by_test_id("repro-restore-dialog")
    dialog.wait_for(timeout=TIMEOUT_MS)
    plan = dialog.get_by_test_id("repro-restore-plan")
    plan.wait_for(timeout=TIMEOUT_MS)
    return dialog, plan


def planned_packages(plan) -> set[str]:
    rows = plan.locator("tr[data-package]")
    return {rows.nth(i).get_attribute("data-package") for i in range(rows.count())}


def confirm_and_get_job(page) -> str:
    """Confirm the plan; the id of the job the page's POST repro/restore started."""
    with page.expect_response(
        lambda r: (
            r.url.split("?")[0].endswith("/repro/restore")
            and r.request.method == "POST"
            and r.status == 202
        ),
        timeout=TIMEOUT_MS,
    ) as started:
        page.get_by_test_id("repro-restore-confirm").click()
    return started.value.json()["id"]


def wait_for_installing(page) -> str:
    """Wait until the phase line shows the download or link count; return it.

    rattler links each package as soon as it is downloaded: while the gated package is
    held, the phase is `download` or `link` with a count.
    """
    page.wait_for_function(
        """() => {
            const node = document.querySelector('[data-testid=repro-restore-phase]');
            return node && ['download', 'link'].includes(node.dataset.phase)
                && Number(node.dataset.total) > 0;
        }""",
        timeout=TIMEOUT_MS,
    )
    phase = page.get_by_test_id("repro-restore-phase")
    # For people: "Installing 3 of 7 packages…", not "link 3/7".
    assert phase.inner_text().startswith(("Downloading ", "Installing ")), phase.inner_text()
    return f"{phase.get_attribute('data-phase')} {phase.get_attribute('data-done')}/" + str(
        phase.get_attribute("data-total")
    )


def wait_for_result(page, state: str) -> None:
    page.wait_for_function(
        "(s) => document.querySelector('[data-testid=repro-restore-result]')?.dataset.state"
        " === s && !document.querySelector('[data-testid=repro-restore-result]').hidden",
        arg=state,
        timeout=TIMEOUT_MS,
    )


def test_restore_from_file_shows_progress_and_offers_the_new_kernel(page, ui_lab, artifacts_dir):
    name = "restored-ui"
    (ui_lab.root_dir / "environment.yml").write_text(
        environment_yml(
            name,
            [ui_lab.rig_channel_url, ui_lab.gated.url],
            ["python", "ipykernel", "pkgc", "gatedok"],
        )
    )
    gate = ui_lab.gated.gate("gatedok")
    kernel = f"conda-env-{name}-py"
    status, specs = api(ui_lab.server, "api/kernelspecs")
    assert kernel not in specs["kernelspecs"]

    open_notebook(page, ui_lab.server, "restore.ipynb")
    page.evaluate(RECORD_PHASES)
    restore_from_file_menu(page, "environment.yml")

    dialog, plan = plan_dialog(page)
    assert {"python", "ipykernel", "pkgc", "pkga", "gatedok"} <= planned_packages(plan)
    target = Path(dialog.get_by_test_id("repro-restore-target").inner_text().strip())
    assert target.name == name
    assert ui_lab.gated.url in plan.inner_text()
    page.screenshot(path=str(artifacts_dir / "ui-restore-plan.png"))

    job_id = confirm_and_get_job(page)
    progress = page.get_by_test_id("repro-restore-progress")
    progress.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert gate.requested.wait(GATE_TIMEOUT_S), "the restore never fetched the gated package"
    held_phase = wait_for_installing(page)
    assert page.get_by_test_id("repro-restore-bar").is_visible()
    assert page.get_by_test_id("repro-restore-cancel").is_visible()
    assert page.get_by_test_id("repro-restore-log").inner_text().strip()
    page.screenshot(path=str(artifacts_dir / "ui-restore-progress.png"))
    gate.release()

    wait_for_result(page, "succeeded")
    assert name in page.get_by_test_id("repro-restore-result").inner_text()
    assert re.fullmatch(
        r"Done in \d+(\.\d)? (ms|s)\.|Done in \d+ min \d+ s\.",
        page.get_by_test_id("repro-restore-phase").inner_text(),
    )
    phases = page.evaluate("() => window.__reproPhases")
    assert held_phase in phases, phases
    assert phases[-1] != held_phase, phases
    assert any(p.startswith("register") for p in phases), phases
    job = wait_for_job(ui_lab.server, job_id, {"succeeded", "failed", "cancelled"})
    assert job["state"] == "succeeded", job
    assert (target / "conda-meta").is_dir()
    assert (target / "conda-meta" / "history").is_file()
    # The panel shows the job's log as the server keeps it.
    shown_log = page.get_by_test_id("repro-restore-log").inner_text().strip()
    assert shown_log == "\n".join(job["log"]).strip()
    page.screenshot(path=str(artifacts_dir / "ui-restore-succeeded.png"))

    # The new kernel in the kernel picker (Kernel > Change Kernel…).
    status, specs = api(ui_lab.server, "api/kernelspecs")
    assert status == 200
    assert kernel in specs["kernelspecs"]
    display_name = specs["kernelspecs"][kernel]["spec"]["display_name"]
    assert name in display_name
    page.evaluate("() => { void window.jupyterapp.commands.execute('kernelmenu:change'); }")
    picker = page.locator(".jp-Dialog")
    picker.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "(n) => (document.querySelector('.jp-Dialog')?.textContent || '').includes(n)",
        arg=display_name,
        timeout=TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "ui-restore-kernel-picker.png"))
    page.keyboard.press("Escape")
    picker.wait_for(state="detached", timeout=TIMEOUT_MS)

    # The offer to switch the notebook's kernel to it, and the kernel runs.
    switch = page.get_by_test_id("repro-switch-kernel")
    switch.wait_for(state="visible", timeout=TIMEOUT_MS)
    switch.click()
    page.wait_for_function(
        """(k) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
            return !!kernel && kernel.name === k && kernel.status === 'idle';
        }""",
        arg=kernel,
        timeout=TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "ui-restore-switched-kernel.png"))


def test_cancelling_a_restore_leaves_nothing(page, ui_lab, artifacts_dir):
    name = "cancelled-ui"
    (ui_lab.root_dir / "environment-cancel.yml").write_text(
        environment_yml(
            name, [ui_lab.rig_channel_url, ui_lab.gated.url], ["python", "ipykernel", "gatedcancel"]
        )
    )
    gate = ui_lab.gated.gate("gatedcancel")
    open_notebook(page, ui_lab.server, "restore.ipynb")
    restore_from_file_menu(page, "environment-cancel.yml")
    dialog, _ = plan_dialog(page)
    target = Path(dialog.get_by_test_id("repro-restore-target").inner_text().strip())
    assert target.name == name

    try:
        job_id = confirm_and_get_job(page)
        assert gate.requested.wait(GATE_TIMEOUT_S), "the restore never fetched the package"
        wait_for_installing(page)
        assert os.path.lexists(target), "the restore has not claimed its target yet"
        page.screenshot(path=str(artifacts_dir / "ui-restore-before-cancel.png"))
        page.get_by_test_id("repro-restore-cancel").click()

        wait_for_result(page, "cancelled")
        job = wait_for_job(ui_lab.server, job_id, {"succeeded", "failed", "cancelled"})
    finally:
        gate.release()
    assert job["state"] == "cancelled", job
    assert "cancelled" in page.get_by_test_id("repro-restore-result").inner_text()
    assert not page.get_by_test_id("repro-restore-cancel").is_visible()
    assert not os.path.lexists(target)
    assert target not in ui_lab.installation.registered()
    status, specs = api(ui_lab.server, "api/kernelspecs")
    assert f"conda-env-{name}-py" not in specs["kernelspecs"]
    status, listed = api(ui_lab.server, "repro/environments")
    assert status == 200
    assert name not in {env["name"] for env in listed["environments"]}
    page.screenshot(path=str(artifacts_dir / "ui-restore-cancelled.png"))
