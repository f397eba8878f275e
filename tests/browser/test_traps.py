"""Traps a new user fell into (issue 17): each test shows the trap in a real browser against the real
server, with a screenshot of the state it checks under the test output directory."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .editor import Editor


def test_shift_drag_marquee_selects_no_page_text_and_leaves_drag_and_undo_working(editor: Editor):
    """A shift-drag from the canvas over the sidebar selects nodes, never the page's text; afterwards the
    selected nodes still drag together and one undo puts them back."""
    ui = editor
    page = ui.page
    ui.new_flow("Marquee", "browser.marquee")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    double = ui.drag_spec_to_canvas("uitest.num.double", 420, 260)
    ui.page.keyboard.press("Escape")
    page.locator(".flows-panel .panel-title").click()  # a caret in the page's text, where shift-clicks extend from
    canvas = page.locator("#canvas").bounding_box()
    left, top = canvas["x"], canvas["y"]
    page.keyboard.down("Shift")
    page.mouse.move(left + canvas["width"] - 20, top + canvas["height"] - 20)
    page.mouse.down()
    page.mouse.move(left + 300, top + 250, steps=5)
    page.mouse.move(20, 20, steps=8)  # out over the sidebar and the toolbar, as a hurried hand does
    page.mouse.up()
    page.keyboard.up("Shift")
    assert page.evaluate("() => String(window.getSelection())") == ""
    assert sorted(page.evaluate("() => [...window.pyflow.canvas.selection]")) == sorted([add, double])
    ui.screenshot("marquee")

    before = {node: ui.node_position(node) for node in (add, double)}
    title = ui.node(add).locator(".node-title").bounding_box()
    page.mouse.move(title["x"] + 10, title["y"] + 5)
    page.mouse.down()
    page.mouse.move(title["x"] + 70, title["y"] + 45, steps=8)
    page.mouse.up()
    for node in (add, double):
        assert ui.node_position(node) != before[node], node
    expect(page.locator("#btn-undo")).to_have_attribute("title", re.compile("Undo Move 2 nodes"))
    page.keyboard.press("Control+z")
    for node in (add, double):
        assert ui.node_position(node) == before[node]
