"""Lock for platforms from the export dialog: embedded in the open notebook, or a lock file.

The rig channel has linux-64 and noarch packages only: linux-64 (this machine's platform,
locked as installed) always locks; win-64 is solved from the channel and may be left out,
which the dialog must then name with the server's reason.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    open_notebook,
    open_panel,
    read_json,
    save_notebook,
    shutdown_sessions,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DEFAULT_PLATFORMS = {"linux-64", "osx-64", "osx-arm64", "win-64"}
"""The `lockPlatforms` setting's default: checked when no platform was reported yet."""

# Every text the lock dialog's progress line shows, recorded in the page as it changes.
RECORD_PROGRESS = """() => {
    window.__reproLockProgress = [];
    const record = () => {
        const node = document.querySelector('[data-testid=repro-lock-progress]');
        const seen = window.__reproLockProgress;
        if (node && seen[seen.length - 1] !== node.textContent) {
            seen.push(node.textContent);
        }
    };
    new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, characterData: true
    });
}"""

RESULT_SHOWN = """() => {
    const node = document.querySelector('[data-testid=repro-lock-result]');
    return !!node && !node.hidden && !!node.dataset.state;
}"""


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    """Each test opens a notebook, which starts a kernel: end them after each test."""
    yield
    shutdown_sessions(ui_lab.server)


def checked_platforms(dialog) -> set[str]:
    boxes = dialog.locator("input[data-testid^='repro-lock-platform-']")
    return {
        boxes.nth(i).get_attribute("value")
        for i in range(boxes.count())
        if boxes.nth(i).is_checked()
    }


def choose_platforms(dialog, wanted: set[str]) -> None:
    boxes = dialog.locator("input[data-testid^='repro-lock-platform-']")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        box.set_checked(box.get_attribute("value") in wanted)
    assert checked_platforms(dialog) == wanted


def open_export_dialog(page):
    """The export dialog, from the Environments panel's export button."""
    panel = open_panel(page)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=repro-export-button]').disabled",
        timeout=TIMEOUT_MS,
    )
    panel.get_by_test_id("repro-export-button").click()
    dialog = page.get_by_test_id("repro-export-dialog")
    dialog.wait_for(timeout=TIMEOUT_MS)
    return dialog


def lock_query(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.unquote(parts.path), urllib.parse.parse_qsl(parts.query)


def test_lock_for_linux_and_windows_is_embedded_in_the_open_notebook(page, ui_lab, artifacts_dir):
    path = ui_lab.root_dir / "lock.ipynb"
    write_notebook(path, "conda-env-work-py", "Python [conda env:work]")
    open_notebook(page, ui_lab.server, "lock.ipynb")

    dialog = open_export_dialog(page)
    # The spec choice first, as before; the lock is a choice of its own.
    assert dialog.get_by_test_id("repro-export-spec").is_checked()
    assert not dialog.get_by_test_id("repro-lock-options").is_visible()
    dialog.get_by_test_id("repro-export-lock").check()
    dialog.get_by_test_id("repro-lock-options").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert not dialog.get_by_test_id("repro-export-mode").is_visible()
    # No platform reported yet (nothing embedded): the setting's defaults.
    assert checked_platforms(dialog) == DEFAULT_PLATFORMS
    choose_platforms(dialog, {"linux-64", "win-64"})
    target = dialog.get_by_test_id("repro-lock-target")
    target.select_option("metadata")
    assert target.input_value() == "metadata"
    confirm = page.get_by_test_id("repro-export-confirm")
    assert confirm.inner_text().strip() == "Lock"
    page.screenshot(path=str(artifacts_dir / "ui-lock-choice.png"))

    page.evaluate(RECORD_PROGRESS)
    with page.expect_response(
        lambda r: "/repro/notebooks/" in r.url and "/lock?" in r.url, timeout=TIMEOUT_MS
    ) as answered:
        confirm.click()
    response = answered.value
    assert response.status == 200, response.text()
    route, query = lock_query(response.url)
    assert route.endswith("/repro/notebooks/lock.ipynb/lock")
    assert query == [("platform", "linux-64"), ("platform", "win-64"), ("format", "metadata")]
    answer = response.json()
    summary = answer["summary"]

    page.wait_for_function(RESULT_SHOWN, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.model.dirty", timeout=TIMEOUT_MS
    )
    result = page.get_by_test_id("repro-lock-result")
    page.screenshot(path=str(artifacts_dir / "ui-lock-result.png"))
    assert result.get_attribute("data-state") == "done", result.inner_text()
    assert "Locking for 2 platforms…" in page.evaluate("() => window.__reproLockProgress")
    assert page.get_by_test_id("repro-lock-progress").inner_text().startswith("Locked in ")
    assert "Embedded in lock.ipynb and saved." in result.inner_text()

    # The notebook file, as the open notebook saved it: the server's value, with the lock.
    on_disk = read_json(path)["metadata"]["jupyter_repro"]

    def without_fingerprints(value: dict) -> dict:
        # The save hook strips outputs on save and records their fingerprints beside the lock.
        return {k: v for k, v in value.items() if k != "fingerprints"}

    assert without_fingerprints(on_disk) == without_fingerprints(answer["metadata"])
    locked = set(on_disk["lock"]["platforms"])
    assert locked == set(summary["platforms"])
    assert result.get_attribute("data-locked").split() == summary["platforms"]
    assert "pkga" in json.dumps(on_disk["lock"]["platforms"]["linux-64"])
    skipped = result.get_by_test_id("repro-lock-skipped")
    if "win-64" in locked:
        assert locked == {"linux-64", "win-64"}
        assert summary["skipped"] == {}
        assert skipped.count() == 0
        assert "win-64" in result.locator(".jp-ReproLock-locked").inner_text()
    else:
        # The rig channel has no win-64 python: left out, and said why.
        assert locked == {"linux-64"}
        assert set(summary["skipped"]) == {"win-64"}
        reason = summary["skipped"]["win-64"]
        assert reason.strip()
        assert skipped.count() == 1
        assert skipped.first.get_attribute("data-platform") == "win-64"
        assert skipped.first.inner_text() == f"win-64: {reason}"
        assert result.locator(".jp-ReproLock-locked").inner_text() == (
            f"Locked for linux-64 ({summary['packages']['linux-64']} packages)."
        )

    page.get_by_test_id("repro-lock-close").click()
    page.get_by_test_id("repro-lock-dialog").wait_for(state="detached", timeout=TIMEOUT_MS)
    # The file never changed under the open notebook: saving again meets no conflict.
    page.evaluate("() => window.jupyterapp.shell.currentWidget.model.setMetadata('repro_test', 2)")
    assert save_notebook(page), "saving after the lock met a dialog"
    again = read_json(path)["metadata"]
    assert again["repro_test"] == 2
    assert again["jupyter_repro"] == on_disk

    # The platform the server reported is checked first next time.
    dialog = open_export_dialog(page)
    dialog.get_by_test_id("repro-export-lock").check()
    assert checked_platforms(dialog) == DEFAULT_PLATFORMS | {on_disk["exported"]["platform"]}
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=TIMEOUT_MS)


def test_lock_command_writes_conda_lock_beside_and_shows_server_errors(page, ui_lab, artifacts_dir):
    path = ui_lab.root_dir / "locked" / "file.ipynb"
    write_notebook(path, "conda-env-work-py", "Python [conda env:work]")
    beside = path.parent / "conda-lock.yml"
    open_notebook(page, ui_lab.server, "locked/file.ipynb")

    # The palette command opens the export dialog on the lock choice.
    page.evaluate("() => { void window.jupyterapp.commands.execute('jupyter-repro:lock'); }")
    dialog = page.get_by_test_id("repro-export-dialog")
    dialog.wait_for(timeout=TIMEOUT_MS)
    assert dialog.get_by_test_id("repro-export-lock").is_checked()
    dialog.get_by_test_id("repro-lock-options").wait_for(state="visible", timeout=TIMEOUT_MS)
    choose_platforms(dialog, {"linux-64"})
    dialog.get_by_test_id("repro-lock-target").select_option("conda-lock")
    with page.expect_response(
        lambda r: (
            r.url.split("?")[0].endswith("/repro/notebooks/locked/file.ipynb/lock")
            and r.request.method == "POST"
        ),
        timeout=TIMEOUT_MS,
    ) as answered:
        page.get_by_test_id("repro-export-confirm").click()
    response = answered.value
    assert response.status == 200, response.text()
    assert json.loads(response.request.post_data) == {
        "platforms": ["linux-64"],
        "target": "file",
        "format": "conda-lock",
    }
    page.wait_for_function(RESULT_SHOWN, timeout=TIMEOUT_MS)
    result = page.get_by_test_id("repro-lock-result")
    assert result.get_attribute("data-state") == "done", result.inner_text()
    assert result.get_attribute("data-locked") == "linux-64"
    assert "Wrote locked/conda-lock.yml." in result.inner_text()
    assert beside.is_file()
    text = beside.read_text()
    assert "platform: linux-64" in text
    assert "win-64" not in text
    # Nothing embedded: the notebook is as it was.
    assert "jupyter_repro" not in read_json(path)["metadata"]
    page.get_by_test_id("repro-lock-close").click()
    page.get_by_test_id("repro-lock-dialog").wait_for(state="detached", timeout=TIMEOUT_MS)

    # Only win-64: the rig channel has no win-64 python, so nothing can be locked and the
    # server's message (422, JSON "message") shows; a channel that had one would lock it.
    page.evaluate("() => { void window.jupyterapp.commands.execute('jupyter-repro:lock'); }")
    dialog.wait_for(timeout=TIMEOUT_MS)
    choose_platforms(dialog, {"win-64"})
    dialog.get_by_test_id("repro-lock-target").select_option("metadata")
    with page.expect_response(lambda r: "/lock?" in r.url, timeout=TIMEOUT_MS) as answered:
        page.get_by_test_id("repro-export-confirm").click()
    answer = answered.value
    page.wait_for_function(RESULT_SHOWN, timeout=TIMEOUT_MS)
    progress = page.get_by_test_id("repro-lock-progress").inner_text()
    page.screenshot(path=str(artifacts_dir / "ui-lock-win-only.png"))
    if answer.status == 200:
        assert answer.json()["summary"]["platforms"] == ["win-64"]
        assert result.get_attribute("data-state") == "done"
        assert result.get_attribute("data-locked") == "win-64"
        assert page.get_by_test_id("repro-lock-error").count() == 0
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.model.dirty", timeout=TIMEOUT_MS
        )
        locked = read_json(path)["metadata"]["jupyter_repro"]["lock"]["platforms"]
        assert set(locked) == {"win-64"}
    else:
        assert answer.status == 422, answer.text()
        message = answer.json()["message"]
        assert message.startswith(
            "cannot lock this environment for any platform asked for (win-64: cannot be solved"
        ), message
        assert result.get_attribute("data-state") == "failed"
        assert result.get_attribute("data-locked") == ""
        error = page.get_by_test_id("repro-lock-error")
        assert error.inner_text() == f"Could not lock the environment: {message}"
        assert error.get_attribute("role") == "alert"
        assert progress == "The lock failed."
        # Nothing embedded, nothing saved.
        assert "jupyter_repro" not in read_json(path)["metadata"]
    page.get_by_test_id("repro-lock-close").click()
    page.get_by_test_id("repro-lock-dialog").wait_for(state="detached", timeout=TIMEOUT_MS)
