"""Restore names in the browser: a taken name is never a dead end and never takes a kernel.

The plan dialog opens with a free suggested name, checks what the user types against the
server (free, taken, invalid) and shows where the environment goes; restoring the spec of an
environment that exists offers to use it instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.test_ui_restore import (
    confirm_and_get_job,
    plan_dialog,
    restore_from_file_menu,
    wait_for_result,
)
from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    api,
    environment_yml,
    open_lab,
    open_notebook,
    run_command,
    shutdown_sessions,
    wait_for_job,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    yield
    shutdown_sessions(ui_lab.server)


def kernel_prefixes(server) -> dict[str, str]:
    status, specs = api(server, "api/kernelspecs")
    assert status == 200
    return {
        name: spec["spec"]["metadata"].get("conda_env_path")
        for name, spec in specs["kernelspecs"].items()
    }


def name_status(dialog, state: str) -> str:
    """Wait until the name's status shows `state` (free, taken); its text."""
    status = dialog.get_by_test_id("repro-restore-name-status")
    status.page.wait_for_function(
        "(s) => document.querySelector('[data-testid=repro-restore-name-status]')"
        "?.dataset.state === s",
        arg=state,
        timeout=TIMEOUT_MS,
    )
    return status.inner_text()


def test_a_taken_name_opens_with_a_free_one_checked_as_you_type(page, ui_lab, artifacts_dir):
    before = kernel_prefixes(ui_lab.server)
    work_prefix = before["conda-env-work-py"]
    (ui_lab.root_dir / "environment-work.yml").write_text(
        environment_yml("work", [ui_lab.rig_channel_url], ["python", "ipykernel", "pkga"])
    )

    open_lab(page, ui_lab.server)
    restore_from_file_menu(page, "environment-work.yml")
    # The environment exists: use it, or restore a copy (no notebook open: only the copy).
    existing = page.get_by_test_id("repro-restore-existing")
    existing.wait_for(timeout=TIMEOUT_MS)
    assert work_prefix in existing.inner_text()
    page.locator(".jp-Dialog-button", has_text="Restore a copy").click()

    dialog, _plan = plan_dialog(page)
    name = dialog.get_by_test_id("repro-restore-name")
    assert name.input_value() == "work-2"
    assert work_prefix in dialog.get_by_test_id("repro-restore-conflict").inner_text()
    assert "Free" in name_status(dialog, "free")
    page.screenshot(path=str(artifacts_dir / "ui-restore-name-suggested.png"))

    name.fill("drifty")
    assert "Taken by the environment at" in name_status(dialog, "taken")
    assert name.get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(artifacts_dir / "ui-restore-name-taken.png"))
    name.fill("a b")
    assert "Not a valid name" in name_status(dialog, "taken")
    name.fill("work-copy")
    assert "work-copy" in name_status(dialog, "free")
    target = Path(dialog.get_by_test_id("repro-restore-target").inner_text().strip())
    assert target.name == "work-copy"
    page.screenshot(path=str(artifacts_dir / "ui-restore-name-free.png"))

    job_id = confirm_and_get_job(page)
    wait_for_result(page, "succeeded")
    job = wait_for_job(ui_lab.server, job_id, {"succeeded", "failed", "cancelled"})

    assert job["state"] == "succeeded", job
    after = kernel_prefixes(ui_lab.server)
    assert after["conda-env-work-py"] == work_prefix  # the original keeps its kernel
    assert after["conda-env-work-copy-py"] == str(target)
    assert {k: v for k, v in after.items() if k in before} == before


def test_restoring_a_notebook_whose_environment_exists_offers_to_use_it(
    page, ui_lab, artifacts_dir
):
    path = "uses-drifty.ipynb"
    write_notebook(ui_lab.root_dir / path, "conda-env-work-py", "Python [conda env:work]")
    notebook = json.loads((ui_lab.root_dir / path).read_text())
    notebook["metadata"]["jupyter_repro"] = {
        "environment": {
            "name": "drifty",
            "channels": [ui_lab.rig_channel_url],
            "dependencies": ["python", "ipykernel"],
        }
    }
    (ui_lab.root_dir / path).write_text(json.dumps(notebook, indent=1) + "\n")

    open_notebook(page, ui_lab.server, path)
    page.evaluate(
        "() => { void window.jupyterapp.commands.execute('jupyter-repro:restore-environment'); }"
    )
    existing = page.get_by_test_id("repro-restore-existing")
    existing.wait_for(timeout=TIMEOUT_MS)
    assert "conda-env-drifty-py" in existing.inner_text()
    page.screenshot(path=str(artifacts_dir / "ui-restore-existing.png"))
    page.locator(".jp-Dialog-button", has_text="Use drifty").click()

    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.name"
        " === 'conda-env-drifty-py'",
        timeout=TIMEOUT_MS,
    )
    assert page.get_by_test_id("repro-restore-dialog").count() == 0
    _status, sessions = api(ui_lab.server, "api/sessions")
    assert any(s["path"] == path and s["kernel"]["name"] == "conda-env-drifty-py" for s in sessions)
    run_command(page, "docmanager:save")


def test_a_notebook_whose_kernel_is_missing_offers_its_restore_and_then_runs(
    page, ui_lab, artifacts_dir
):
    """A colleague's notebook: its kernel is not installed here, its spec is embedded."""
    path = "colleague.ipynb"
    kernel = "conda-env-colleague-py"
    write_notebook(ui_lab.root_dir / path, kernel, "Python [conda env:colleague]")
    notebook = json.loads((ui_lab.root_dir / path).read_text())
    notebook["metadata"]["jupyter_repro"] = {
        "environment": {
            "name": "colleague",
            "channels": [ui_lab.rig_channel_url],
            "dependencies": ["python", "ipykernel", "pkgc"],
        }
    }
    (ui_lab.root_dir / path).write_text(json.dumps(notebook, indent=1) + "\n")
    assert kernel not in kernel_prefixes(ui_lab.server)

    open_lab(page, ui_lab.server)
    page.evaluate(
        "(path) => { void window.jupyterapp.commands.execute('docmanager:open', {path}); }",
        path,
    )
    offer = page.get_by_test_id("repro-missing-kernel")
    offer.wait_for(timeout=TIMEOUT_MS)
    assert kernel in offer.inner_text()
    # The offer, not JupyterLab's list of every kernel.
    assert page.locator(".jp-Dialog", has_text="Select Kernel").count() == 0
    page.screenshot(path=str(artifacts_dir / "ui-missing-kernel-offer.png"))
    page.locator(".jp-Dialog-button", has_text="Restore environment").click()

    dialog, _plan = plan_dialog(page)
    assert dialog.get_by_test_id("repro-restore-name").input_value() == "colleague"
    job_id = confirm_and_get_job(page)
    job = wait_for_job(ui_lab.server, job_id, {"succeeded", "failed", "cancelled"})
    assert job["state"] == "succeeded", job

    page.wait_for_function(
        "(k) => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.name === k",
        arg=kernel,
        timeout=TIMEOUT_MS,
    )
    prefix = job["result"]["prefix"]
    output = page.evaluate(
        """async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.ready;
            const future = panel.sessionContext.session.kernel.requestExecute(
                {code: 'import sys; print(sys.prefix)'});
            let text = '';
            future.onIOPub = (msg) => {
                if (msg.header.msg_type === 'stream') { text += msg.content.text; }
            };
            await future.done;
            return text.trim();
        }"""
    )
    assert output == prefix
    page.screenshot(path=str(artifacts_dir / "ui-missing-kernel-restored.png"))
