"""Retake the README's screenshot, docs/editor-run.png: the editor at 100 % with a run in progress on the
default sandbox executor (some nodes done, one running, the rest queued).

    .venv/bin/python -m tests.browser.readme_screenshot [path]

It starts a real server (sandbox executor, its own database) and Debian's chromium, stores a small flow
built from the standard nodespecs, runs it, and shoots once the run is where the picture needs it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.support.server import ROOT, LiveServer

from .editor import CHROMIUM, CHROMIUM_ARGS

OUTPUT = ROOT / "docs" / "editor-run.png"
SIZE = {"width": 1440, "height": 860}


def node(node_id, name, spec, x, y, values=None, end=False):
    doc = {"id": node_id, "name": name, "spec_id": f"pyflow.{spec}", "ui": {"x": x, "y": y},
           "ports": [{"name": port, "value": value} for port, value in (values or {}).items()]}
    if end:
        doc["is_end"] = True
    return doc


# Three columns of nodes 220 px wide, links running left to right: 800 px, which fits the canvas of a
# 1440 px window at 100 %.
FLOW = {
    "id": "docs.sales-report",
    "name": "Sales report",
    "description": "Totals a week of sales and converts the total at the day's exchange rate",
    "nodes": [
        node("sales", "Daily sales", "control.constant", 0, 150, {"value": [120.5, 80, 95.25, 140, 60.75, 210, 99]}),
        node("rate", "Exchange rate", "control.constant", 0, 430, {"value": 0.92}),
        node("total", "Total", "math.sum", 290, 20),
        node("average", "Average", "math.mean", 290, 150, end=True),
        node("days", "Days", "list.length", 290, 280, end=True),
        node("fetch", "Fetch today's rate", "control.sleep", 290, 420, {"seconds": 120}),
        node("converted", "Total in EUR", "math.multiply", 580, 120, end=True),
        node("rounded", "Rate, rounded", "math.round", 580, 420, {"digits": 2}, end=True),
    ],
    "links": [
        {"source": "sales:out", "target": "total:values"},
        {"source": "sales:out", "target": "average:values"},
        {"source": "sales:out", "target": "days:items"},
        {"source": "rate:out", "target": "fetch:value"},
        {"source": "total:out", "target": "converted:a"},
        {"source": "fetch:out", "target": "converted:b"},
        {"source": "fetch:out", "target": "rounded:x"},
    ],
}
DONE = ("sales", "rate", "total", "average", "days")
RUNNING = "fetch"
QUEUED = ("converted", "rounded")


def main(output: Path = OUTPUT) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pyflow-screenshot-"))
    server = LiveServer(workdir, executor="sandbox").start()
    try:
        request = urllib.request.Request(f"{server.url}/api/flows/{FLOW['id']}", data=json.dumps(FLOW).encode(),
                                         method="PUT", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=SIZE)
            page.set_default_timeout(30_000)
            page.goto(f"{server.url}/#/flow/{FLOW['id']}")
            expect(page.locator("#canvas .node")).to_have_count(len(FLOW["nodes"]))
            # 100 %, centred on the flow.
            page.evaluate("() => { const c = window.pyflow.canvas; c.fitView(); c.zoomBy(1 / c.view.k); }")
            page.locator("#btn-run").click()
            nodes = {n["id"]: page.locator(f'#canvas .node[data-node="{n["id"]}"]') for n in FLOW["nodes"]}
            expect(nodes[RUNNING]).to_have_attribute("data-status", "running")
            for done in DONE:
                expect(nodes[done]).to_have_attribute("data-status", "success")
            for queued in QUEUED:
                expect(nodes[queued]).to_have_attribute("data-status", "queued")
            nodes["average"].locator(".node-title").click()  # the inspector shows its inputs and output
            expect(page.locator("#inspector .run-result")).to_be_visible()
            page.mouse.move(SIZE["width"] - 380, SIZE["height"] - 120)  # no hover effects in the picture
            for close in page.locator(".toast .toast-close").all():
                close.click()
            expect(page.locator(".toast")).to_have_count(0)
            assert page.locator(".status-warnings").is_hidden(), "the executor reports warnings"
            page.wait_for_timeout(300)
            page.screenshot(path=str(output))
            page.locator("#btn-cancel").click()
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
