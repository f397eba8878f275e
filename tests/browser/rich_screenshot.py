"""Retake the README's screenshot of rich values, docs/rich-values.png: the sample flow "Table and plot"
(pyflow.samples.table_and_plot) run, its plot's thumbnail on the node and the summary table in the
inspector.

    .venv/bin/python -m tests.browser.rich_screenshot [path] [executor]

Its nodes import pandas and matplotlib. Until the sandbox has third-party package environments, take it
with the unsafe-process executor (the venv's interpreter, which has them): the default here.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.support.server import ROOT, LiveServer

from .editor import CHROMIUM, CHROMIUM_ARGS

OUTPUT = ROOT / "docs" / "rich-values.png"
SIZE = {"width": 1440, "height": 860}
FLOW = "pyflow.samples.table_and_plot"
NODES = ("data", "table", "summary", "plot")


def main(output: Path = OUTPUT, executor: str = "unsafe-process") -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pyflow-screenshot-"))
    server = LiveServer(workdir, executor=executor).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=SIZE)
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/#/flow/{FLOW}")
            expect(page.locator("#canvas .node")).to_have_count(len(NODES))
            page.evaluate("() => { const c = window.pyflow.canvas; c.fitView(); c.zoomBy(1 / c.view.k); }")
            page.locator("#btn-run").click()
            nodes = {n: page.locator(f'#canvas .node[data-node="{n}"]') for n in NODES}
            for name in NODES:
                expect(nodes[name]).to_have_attribute("data-status", "success")
            thumbnail = nodes["plot"].locator(".node-thumbnail")
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
            nodes["summary"].locator(".node-title").click()
            expect(page.locator("#inspector table.artifact-table")).to_be_visible()
            if page.locator(".server-banner-close").is_visible():  # unsafe-process: the status line still says so
                page.locator(".server-banner-close").click()
            page.mouse.move(SIZE["width"] - 380, SIZE["height"] - 120)
            for close in page.locator(".toast .toast-close").all():
                close.click()
            expect(page.locator(".toast")).to_have_count(0)
            page.wait_for_timeout(300)
            page.screenshot(path=str(output))
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT, *(sys.argv[2:3] or ["unsafe-process"]))
