"""Groups (Ctrl+G: a named, coloured frame that moves its nodes, kept in the flow) and the minimap (shown
when the flow is larger than the view; a press on it moves the view)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .editor import Editor


def test_ctrl_g_groups_the_selection_in_a_frame_that_moves_its_nodes_and_is_saved(editor: Editor, server):
    ui = editor
    page = ui.page
    ui.new_flow("Grouped", "browser.grouped")
    first = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    second = ui.drag_spec_to_canvas("uitest.num.double", 480, 300)
    other = ui.drag_spec_to_canvas("uitest.text.upper", 300, 520)
    ui.select_node(first)
    ui.node(second).locator(".node-title").click(modifiers=["Shift"])
    page.keyboard.press("Control+g")
    frame = page.locator("#canvas .group-frame")
    expect(frame).to_have_count(1)
    expect(frame.locator(".group-label")).to_have_text("Group 1")
    assert frame.evaluate("el => getComputedStyle(el).borderTopColor") == "rgb(37, 99, 235)"  # the group's colour
    box = frame.bounding_box()
    for node in (first, second):
        inner = ui.node(node).bounding_box()
        assert box["x"] < inner["x"] and inner["x"] + inner["width"] < box["x"] + box["width"]
        assert box["y"] < inner["y"] and inner["y"] + inner["height"] < box["y"] + box["height"]
    ui.screenshot("group")

    before = {node: ui.node_position(node) for node in (first, second, other)}
    label = frame.locator(".group-label").bounding_box()
    page.mouse.move(label["x"] + 10, label["y"] + 5)
    page.mouse.down()
    page.mouse.move(label["x"] + 70, label["y"] + 45, steps=8)
    page.mouse.up()
    for node in (first, second):
        assert ui.node_position(node) != before[node]
    assert ui.node_position(other) == before[other]
    moved = frame.bounding_box()
    assert moved["x"] > box["x"] + 30  # the frame followed its nodes

    ui.save()
    stored = server.get_json("/api/flows/browser.grouped")
    assert [sorted(g["nodes"]) for g in stored["groups"]] == [sorted([first, second])]
    page.reload()
    expect(page.locator("body.ready")).to_have_count(1)
    expect(page.locator("#canvas .group-frame .group-label")).to_have_text("Group 1")


def test_the_minimap_shows_a_flow_larger_than_the_view_and_moves_the_view(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Minimap", "browser.minimap")
    node = ui.drag_spec_to_canvas("uitest.num.add", 200, 200)
    expect(page.locator("#canvas .minimap")).to_be_hidden()
    page.evaluate(f"() => window.pyflow.history.execute({{label: 'far', apply: (m) => m.placeNodes([{{id: '{node}', x: 4000, y: 3000}}]), revert: () => {{}}}})")
    ui.drag_spec_to_canvas("uitest.num.double", 300, 300)
    minimap = page.locator("#canvas .minimap")
    expect(minimap).to_be_visible()
    ui.screenshot("minimap")
    before = page.evaluate("() => ({...window.pyflow.canvas.view})")
    box = minimap.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 8, box["y"] + box["height"] - 8)
    after = page.evaluate("() => ({...window.pyflow.canvas.view})")
    assert (after["x"], after["y"]) != (before["x"], before["y"])
    # culling follows the view at the next animation frame: waited for, not read at once
    expect(page.locator(f'#canvas .node[data-node="{node}"]')).not_to_have_class(re.compile(r"(^|\s)culled(\s|$)"))
