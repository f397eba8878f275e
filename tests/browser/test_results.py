"""Results at a glance: end nodes show their output on the canvas, the toast names it, the Results tab
lists every end node's output with a copy button; literal values show beside their ports and nodes are
wide enough for their port names."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .editor import Editor
from .test_editor import build_double_flow


def test_end_results_on_the_canvas_in_the_toast_and_in_the_results_tab(editor: Editor):
    ui = editor
    page = ui.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    add, double = build_double_flow(ui, "Glance", "browser.glance")
    ui.set_value(add, "a", "20")
    expect(ui.node(add).locator('.port-in[data-port="a"] .port-value')).to_have_text("20")
    expect(ui.node(add).locator('.port-in[data-port="b"] .port-value')).to_have_text("3")
    ui.click_action("run")
    expect(ui.toast(re.compile(r"Run succeeded.*Double = 46"))).to_be_visible()
    expect(ui.node(double).locator(".node-output")).to_have_text("46")
    shown = ui.node(double).locator(".node-output").bounding_box()
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.className", [shown["x"] + 4, shown["y"] + 4]) == "node-output"
    expect(ui.node(add).locator(".node-output")).to_have_count(0)  # not an end node
    ui.screenshot("end-result")

    page.locator('.tab[data-tab="results"]').click()
    row = page.locator("#results .result-row", has_text="Double")
    expect(row.locator(".result-value")).to_have_text("46")
    row.locator("button", has_text="Copy").click()
    expect(ui.toast("Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == "46"
    ui.screenshot("results-tab")


def test_nodes_are_wide_enough_for_their_port_names(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Wide", "browser.wide")
    node = ui.drag_spec_to_canvas("uitest.text.format", 300, 200)
    cut = ui.node(node).evaluate(
        "el => [...el.querySelectorAll('.port-name')].filter(n => n.scrollWidth > n.clientWidth).map(n => n.textContent)")
    assert cut == []
    ui.screenshot("wide-node")
