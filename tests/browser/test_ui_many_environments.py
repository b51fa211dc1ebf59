"""500 environments: the time from opening the Environments panel to its list rendered.

Measured in the browser and written to test-artifacts/panel-500-envs.json. The target
(500 ms) is reported, not asserted: only a generous bound is, so a loaded machine does not
fail the run.
"""

from __future__ import annotations

import json
import statistics

import pytest

from tests.browser.conftest import running_rig_lab
from tests.browser.ui_helpers import PANEL_TAB, TIMEOUT_MS, api, open_lab
from tests.rig.installation import CondaInstallation

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ENV_COUNT = 500
TARGET_MS = 500
BOUND_MS = 5000
OPENINGS = 3

# Installed before the click: the time of the tab's pointerdown, then the first moment the
# list holds every row (DOM), and the end of the frame that shows it (paint).
MEASURE = r"""(count) => {
    window.__reproOpen = new Promise((resolve) => {
        const tab = document.querySelector(TAB);
        let clicked = null;
        tab.addEventListener('pointerdown', () => { clicked = performance.now(); },
                             { capture: true, once: true });
        const check = () => {
            const list = document.querySelector('[data-testid=repro-env-list]');
            if (clicked === null || !list || list.dataset.rendered !== 'true') return false;
            if (list.querySelectorAll('[data-testid=repro-env-item]').length < count) return false;
            if (list.offsetParent === null) return false;
            const dom = performance.now() - clicked;
            const fetches = performance.getEntriesByType('resource')
                .filter(e => /\/repro\/environments(\?|$)/.test(e.name));
            const last = fetches[fetches.length - 1];
            requestAnimationFrame(() => setTimeout(() => resolve({
                dom_ms: dom,
                painted_ms: performance.now() - clicked,
                list_build_ms: Number(list.dataset.renderMs),
                fetched_after_click: !!last && last.startTime >= clicked,
                fetch_ms: last ? last.duration : null,
            }), 0));
            return true;
        };
        const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
        observer.observe(document.body, { subtree: true, childList: true, attributes: true });
    });
}""".replace("TAB", json.dumps(PANEL_TAB))


@pytest.fixture(scope="module")
def many_envs_lab(tmp_path_factory, artifacts_dir, rig_channel, rig_package_cache):
    base = tmp_path_factory.mktemp("lab-500")
    installation = CondaInstallation.create(base / "conda-home", rig_channel, rig_package_cache)
    # One solve, concurrent installs (as benchmarks/kernels.py does): a few seconds.
    installation.create_envs([f"env{i:03d}" for i in range(ENV_COUNT)], ["python", "ipykernel"])
    root_dir = base / "root"
    root_dir.mkdir()
    with running_rig_lab(
        base, root_dir, installation, artifacts_dir / "jupyter-lab-500-envs.log", timeout=120
    ) as server:
        yield server


def open_and_time(page, server, rows: int) -> dict:
    """Load lab (panel closed), click the panel's tab, time until the 500 rows are shown."""
    open_lab(page, server)
    tab = page.locator(PANEL_TAB)
    tab.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert not page.get_by_test_id("repro-panel").is_visible()
    page.evaluate(MEASURE, rows)
    tab.click()
    return page.evaluate("() => window.__reproOpen")


def test_panel_with_500_environments_renders_its_list_in_time(
    browser, many_envs_lab, artifacts_dir
):
    status, listed = api(many_envs_lab, "repro/environments")
    assert status == 200
    # The 500, base and the server's own environment.
    total = len(listed["environments"])
    assert total >= ENV_COUNT + 1
    # A fresh page per opening: the first opening of a loaded page, as a user meets it.
    timings = []
    for i in range(OPENINGS):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            timings.append(open_and_time(page, many_envs_lab, total))
            if i == OPENINGS - 1:
                rows = page.get_by_test_id("repro-env-item")
                assert rows.count() == total
                assert page.get_by_test_id("repro-env-count").inner_text() == str(total)
                page.screenshot(path=str(artifacts_dir / "ui-panel-500-envs.png"))
                # Still usable: the filter narrows the list to the 10 env490-env499.
                page.get_by_test_id("repro-env-filter").fill("env49")
                page.wait_for_function(
                    "() => document.querySelectorAll("
                    "'[data-testid=repro-env-item]:not([hidden])').length === 10",
                    timeout=TIMEOUT_MS,
                )
                assert page.get_by_test_id("repro-env-count").inner_text() == f"10 of {total}"
                page.screenshot(path=str(artifacts_dir / "ui-panel-500-envs-filtered.png"))
        finally:
            context.close()
        assert not errors, errors

    painted = [t["painted_ms"] for t in timings]
    report = {
        "environments": ENV_COUNT,
        "openings": timings,
        "median_dom_ms": statistics.median(t["dom_ms"] for t in timings),
        "median_painted_ms": statistics.median(painted),
        "median_list_build_ms": statistics.median(t["list_build_ms"] for t in timings),
        "median_fetch_ms": statistics.median(t["fetch_ms"] or 0 for t in timings),
        "target_ms": TARGET_MS,
        "rows": total,
        "measured": "pointerdown on the panel's tab -> every row in the DOM / painted; "
        "first opening of each freshly loaded page (status and environments fetched)",
    }
    (artifacts_dir / "panel-500-envs.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        "\n500 environments: panel open -> list painted, median"
        f" {report['median_painted_ms']:.0f} ms"
        f" (DOM {report['median_dom_ms']:.0f} ms, list build"
        f" {report['median_list_build_ms']:.1f} ms, GET repro/environments"
        f" {report['median_fetch_ms']:.0f} ms; target {TARGET_MS} ms)"
    )
    assert max(painted) < BOUND_MS, report
