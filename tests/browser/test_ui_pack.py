"""Download capsule (offline) from the export dialog: the server packs the open notebook, its
lock and every package for the platform chosen (a job, its progress in the dialog), and the
browser downloads the capsule, which holds what the manifest says and restores."""

from __future__ import annotations

import pytest

from jupyter_repro.specs.capsule import extract_capsule, read_manifest
from tests.browser.test_ui_lock import choose_platforms, open_export_dialog
from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    open_notebook,
    shutdown_sessions,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    yield
    shutdown_sessions(ui_lab.server)


def test_download_capsule_packs_the_notebook_and_the_browser_saves_it(
    page, ui_lab, artifacts_dir, tmp_path
):
    path = ui_lab.root_dir / "packme.ipynb"
    write_notebook(path, "conda-env-work-py", "Python [conda env:work]")
    open_notebook(page, ui_lab.server, "packme.ipynb")

    dialog = open_export_dialog(page)
    dialog.get_by_test_id("repro-export-capsule").check()
    choose_platforms(dialog, {"linux-64"})
    with page.expect_download(timeout=TIMEOUT_MS) as downloading:
        page.get_by_test_id("repro-export-confirm").click()
        progress = page.get_by_test_id("repro-pack-progress")
        progress.wait_for(timeout=TIMEOUT_MS)
    download = downloading.value
    assert download.suggested_filename.endswith(".capsule.tar.zst")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-pack-progress]')"
        "?.dataset.state === 'done'",
        timeout=TIMEOUT_MS,
    )
    text = progress.inner_text()
    assert "The download has started." in text, text
    page.screenshot(path=str(artifacts_dir / "ui-pack-done.png"))
    page.get_by_test_id("repro-pack-close").click()

    manifest = read_manifest(saved)
    assert manifest.platforms == ("linux-64",)
    assert manifest.notebooks == ("notebooks/packme.ipynb",)
    assert {c.platform for c in manifest.conda} == {"linux-64"}
    assert manifest.conda, "no conda archive was packed"
    # Every member is there and matches the manifest (and the manifest the lock).
    extracted = extract_capsule(saved, tmp_path / "unpacked")
    assert extracted.notebooks[0].read_bytes() == path.read_bytes()
    # Nothing was written into the server root.
    assert not list(ui_lab.root_dir.glob("*.capsule.tar.zst"))
