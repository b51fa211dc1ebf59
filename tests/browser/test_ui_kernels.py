"""Kernels in a real JupyterLab: notebooks naming the base environment the old way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.ui_helpers import (
    TIMEOUT_MS,
    open_lab,
    shutdown_sessions,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SYS_PREFIX_JS = """async () => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    let out = '';
    const future = kernel.requestExecute({ code: 'import sys; print(sys.prefix)' });
    future.onIOPub = msg => {
        if (msg.header.msg_type === 'stream') { out += msg.content.text; }
    };
    await future.done;
    return out.trim();
}"""


@pytest.fixture(autouse=True)
def no_kernels_left(ui_lab):
    yield
    shutdown_sessions(ui_lab.server)


def test_a_conda_root_py_notebook_opens_on_the_base_kernel_without_a_prompt(
    page, ui_lab, artifacts_dir
):
    write_notebook(ui_lab.root_dir / "legacy-root.ipynb", "conda-root-py", "Python [conda root]")
    open_lab(page, ui_lab.server)

    page.evaluate(
        "() => { void window.jupyterapp.commands.execute('docmanager:open',"
        " { path: 'legacy-root.ipynb' }); }"
    )
    # Either a kernel runs, or JupyterLab asks which one (the failure this test is about).
    page.wait_for_function(
        """() => {
            if (document.querySelector('.jp-Dialog')) { return true; }
            const w = window.jupyterapp.shell.currentWidget;
            return !!w && !!w.context && w.context.path === 'legacy-root.ipynb'
                && w.sessionContext.isReady && !!w.sessionContext.session?.kernel;
        }""",
        timeout=TIMEOUT_MS,
    )
    page.screenshot(path=str(artifacts_dir / "ui-kernel-conda-root-py.png"))
    assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").inner_text()

    kernel = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name"
    )
    assert kernel == "conda-base-py"
    prefix = page.evaluate(SYS_PREFIX_JS)
    assert Path(prefix).resolve() == ui_lab.installation.root_prefix.resolve()
    # The notebook now names the kernel that runs (saved as such on the next save).
    metadata_name = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.model.getMetadata('kernelspec').name"
    )
    assert metadata_name == "conda-base-py"
    assert page.locator(".jp-Dialog").count() == 0
