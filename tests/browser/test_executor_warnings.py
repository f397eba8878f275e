"""What the editor says about the server's executor (issue 3, item 3): with `--executor unsafe-process` node
code runs without isolation, and with `--executor none` no node runs at all. Either way the server warns
at start, and the editor shows the warning in full across the top (until dismissed, for the browser
session) and keeps a chip in the status line that carries it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

UNSAFE_WARNING = "node code runs with the server's own permissions"  # pyflow.executors.process.WARNING


def test_unsafe_process_warns_that_node_code_runs_without_isolation(editor_on, server_with):
    server = server_with("unsafe-process")
    assert f"WARNING: {UNSAFE_WARNING}" in server.log()  # said at start, too
    (warning,) = server.get_json("/api/health")["executor"]["warnings"]
    ui = editor_on("unsafe-process")
    page = ui.page

    banner = page.locator("#server-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_have_attribute("data-severity", "danger")
    expect(banner.locator(".server-banner-headline")).to_have_text("Node code runs without isolation")
    expect(banner.locator(".server-banner-text")).to_have_text(warning)  # the server's words, in full
    # Visible above the canvas, not squeezed into the status line: the whole text fits on screen.
    box = banner.bounding_box()
    canvas = page.locator("#canvas").bounding_box()
    assert box["y"] + box["height"] <= canvas["y"] + 1 and box["width"] > 1000, (box, canvas)
    text = banner.locator(".server-banner-text")
    assert text.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the warning is cut off"
    chip = page.locator("#statusbar .status-warnings")
    expect(chip).to_be_visible()
    expect(chip).to_have_text(re.compile("Node code runs without isolation"))
    expect(chip).to_have_attribute("title", re.compile(re.escape(warning)))
    ui.screenshot("banner")

    # Dismissed, it stays dismissed on reload (this browser session) while the chip keeps the warning;
    # the chip brings it back.
    banner.get_by_role("button", name="Dismiss this warning").click()
    expect(banner).to_be_hidden()
    expect(chip).to_be_visible()
    page.reload()
    expect(page.locator("body.ready")).to_have_count(1)
    expect(chip).to_be_visible()
    expect(banner).to_be_hidden()
    chip.click()
    expect(banner).to_be_visible()
    expect(banner.locator(".server-banner-text")).to_have_text(warning)


def test_executor_none_warns_and_every_node_fails_as_disabled(editor_on, server_with):
    server = server_with("none")
    (warning,) = server.get_json("/api/health")["executor"]["warnings"]
    assert "node execution is disabled" in warning
    assert f"WARNING: {warning}" in server.log()
    ui = editor_on("none")
    page = ui.page

    banner = page.locator("#server-banner")
    expect(banner).to_be_visible()
    expect(banner.locator(".server-banner-headline")).to_have_text(re.compile("Node execution is disabled"))
    expect(banner.locator(".server-banner-text")).to_have_text(warning)
    expect(page.locator("#statusbar .status-warnings")).to_have_attribute("title", re.compile(re.escape(warning)))

    # The editor still serves the repository: build a flow and run it; each node fails, saying why.
    ui.new_flow("No execution", "browser.none")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    upper = ui.drag_spec_to_canvas("uitest.text.upper", 560, 320)
    ui.set_value(add, "a", "2")
    ui.set_value(upper, "text", "hi")
    page.locator("#btn-run").click()
    expect(ui.node(add)).to_have_attribute("data-status", "fail")
    expect(ui.node(upper)).to_have_attribute("data-status", "fail")
    expect(ui.toast(re.compile("Run failed"))).to_be_visible()
    for node in (add, upper):
        ui.select_node(node)
        error = page.locator("#inspector .run-result .error-box .error-title")
        expect(error).to_have_text(f"ExecutionDisabled: {warning}")
    ui.screenshot("run")
