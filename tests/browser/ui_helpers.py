"""Helpers of the UI browser tests: a gated HTTP channel, notebooks, REST calls, the app."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

TIMEOUT_MS = 60_000
"""Default Playwright wait: generous, the machine running the tests may be loaded."""
PANEL_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jupyter-repro-environments"]'


# --------------------------------------------------------------------------------------------
# a channel served over HTTP whose package downloads wait for the test
# --------------------------------------------------------------------------------------------


# `tests.rig.served.ServedChannel` (its `gate(name)` holds a package's download).


# --------------------------------------------------------------------------------------------
# files of the server root
# --------------------------------------------------------------------------------------------


def write_notebook(path: Path, kernel: str, display_name: str, *, with_output: bool = True) -> None:
    """A small nbformat-4 notebook on ``kernel``, with a code cell that has an output."""
    outputs = (
        [{"output_type": "stream", "name": "stdout", "text": ["hello from the rig\n"]}]
        if with_output
        else []
    )
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1 if with_output else None,
                "id": "c0ffee00",
                "metadata": {},
                "outputs": outputs,
                "source": ["print('hello from the rig')"],
            }
        ],
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": display_name, "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1) + "\n")


def environment_yml(name: str, channels: list[str], dependencies: list[str]) -> str:
    lines = [f"name: {name}", "channels:", *(f"  - {c}" for c in channels), "dependencies:"]
    lines += [f"  - {d}" for d in dependencies]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the server's REST API, from the test process
# --------------------------------------------------------------------------------------------


def api(server: Any, path: str, *, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """Call ``{base}{path}`` with the server's token; (status, JSON or text body)."""
    url = server.url + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {server.token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, ctype = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, raw, ctype = error.code, error.read(), error.headers.get("Content-Type", "")
    text = raw.decode()
    if ctype and "json" in ctype:
        return status, json.loads(text)
    return status, text


def quote(path: str) -> str:
    return urllib.parse.quote(path, safe="")


def wait_for_job(server: Any, job_id: str, until: set[str], timeout: float = 120) -> dict:
    """Poll GET repro/jobs/{id} until its state is one of ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        status, job = api(server, f"repro/jobs/{job_id}")
        assert status == 200, job
        if job["state"] in until:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------


_workspaces = itertools.count()


def open_lab(page: Any, server: Any, tree: str | None = None) -> None:
    """Load JupyterLab in a workspace of its own (nothing restored from another test).

    ``tree``: a file to open. Waits until the app is restored and exposed as ``jupyterapp``.
    """
    path = f"lab/workspaces/ui-{next(_workspaces)}"
    if tree is not None:
        path += f"/tree/{tree}"
    page.goto(server.lab_url(path), timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
        "'jupyter-repro:open-panel')",
        timeout=TIMEOUT_MS,
    )
    page.evaluate("() => window.jupyterapp.restored")


def run_command(page: Any, command: str, args: dict | None = None) -> Any:
    return page.evaluate(
        "([id, args]) => window.jupyterapp.commands.execute(id, args)", [command, args or {}]
    )


def open_notebook(page: Any, server: Any, path: str) -> Any:
    """Open ``path`` in lab; wait until its notebook panel is current, loaded, with a session.

    Through the document manager, not a lab/tree/<path> URL: that URL also makes the file
    browser select the notebook whenever it has listed the folder, which would race with a
    test's own clicks in the file browser.
    """
    open_lab(page, server)
    page.evaluate(
        "(path) => { void window.jupyterapp.commands.execute('docmanager:open', {path}); }",
        path,
    )
    page.wait_for_function(
        """(path) => {
            const w = window.jupyterapp.shell.currentWidget;
            return !!w && !!w.context && w.context.path === path && w.context.isReady
                && w.sessionContext.isReady;
        }""",
        arg=path,
        timeout=TIMEOUT_MS,
    )
    return page.locator(".jp-NotebookPanel:visible")


def open_panel(page: Any) -> Any:
    run_command(page, "jupyter-repro:open-panel")
    panel = page.get_by_test_id("repro-panel")
    panel.wait_for(state="visible", timeout=TIMEOUT_MS)
    return panel


def change_theme(page: Any, dark: bool) -> None:
    """Switch the theme and wait until it applies and its splash screen is gone.

    JupyterLab removes its splash screen 200 ms after it fades (at start-up, and after a theme
    change); showing it again within that time makes it remove the node twice (an uncaught
    error in the page). So: no change while a splash is up, and none returns before it is gone.
    """
    splash = page.locator("#jupyterlab-splash")
    splash.wait_for(state="detached", timeout=TIMEOUT_MS)
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    run_command(page, "apputils:change-theme", {"theme": name})
    flag = "false" if dark else "true"
    page.locator(f"body[data-jp-theme-light='{flag}']").wait_for(
        state="attached", timeout=TIMEOUT_MS
    )
    splash.wait_for(state="detached", timeout=TIMEOUT_MS)


def wait_for_list(page: Any) -> Any:
    env_list = page.get_by_test_id("repro-env-list")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=repro-env-list]')?.dataset.rendered === 'true'",
        timeout=TIMEOUT_MS,
    )
    return env_list


def save_notebook(page: Any) -> bool:
    """Save the current notebook; wait until saved or a dialog (a conflict) shows up.

    Returns whether the save completed without any dialog.
    """
    page.evaluate(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            window.__reproSaved = false;
            w.context.save().then(() => { window.__reproSaved = true; }, () => {});
        }"""
    )
    page.wait_for_function(
        "() => window.__reproSaved || !!document.querySelector('.jp-Dialog')",
        timeout=TIMEOUT_MS,
    )
    return page.evaluate("() => window.__reproSaved") and page.locator(".jp-Dialog").count() == 0


def shutdown_sessions(server: Any) -> None:
    """End every kernel session the server has (tests leave none running)."""
    status, sessions = api(server, "api/sessions")
    if status != 200:
        return
    for session in sessions:
        api(server, f"api/sessions/{session['id']}", method="DELETE")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
