"""Subflows, maps and branches in the editor: Make subflow as one undoable command, drilling into a
subflow node with a breadcrumb and the run's inner statuses, the [ ] marker and item count of a mapped
input, and a branch not taken drawn dimmed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .editor import Editor


def three_in_a_row(ui: Editor) -> tuple[str, str, str]:
    """Add numbers (a=2, b=3) → Double → Double (end)."""
    ui.new_flow("Three in a row", "browser.three")
    add = ui.drag_spec_to_canvas("uitest.num.add", 200, 220)
    first = ui.drag_spec_to_canvas("uitest.num.double", 480, 220)
    second = ui.drag_spec_to_canvas("uitest.num.double", 760, 220)
    ui.link(add, "out", first, "x")
    ui.link(first, "out", second, "x")
    ui.set_value(add, "a", "2")
    ui.set_value(add, "b", "3")
    ui.mark_end(second)
    return add, first, second


def test_make_subflow_undo_redo_run_and_drill_down(editor: Editor, server):
    ui = editor
    page = ui.page
    add, first, second = three_in_a_row(ui)
    ui.save()

    ui.node(first).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Make subflow").click()
    expect(page.locator("#canvas .node.subflow")).to_have_count(1)
    expect(ui.nodes()).to_have_count(3)
    expect(ui.connectors()).to_have_count(2)
    sub = page.locator("#canvas .node.subflow").get_attribute("data-node")
    expect(ui.node(sub).locator(".subflow-badge")).to_be_visible()
    inner = server.get_json("/api/flows/browser.three.sub")
    assert {n["spec_id"] for n in inner["nodes"]} == {"uitest.num.double", "pyflow.flow.input", "pyflow.flow.output"}

    page.keyboard.press("Control+z")  # one command: the three nodes and two links come back as they were
    expect(page.locator("#canvas .node.subflow")).to_have_count(0)
    assert sorted(ui.node_ids()) == sorted([add, first, second])
    expect(ui.connectors()).to_have_count(2)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#canvas .node.subflow")).to_have_count(1)
    ui.save()
    stored = server.get_json("/api/flows/browser.three")
    assert any(n["spec_id"] == "flow:browser.three.sub" for n in stored["nodes"])

    page.locator("#btn-run").click()
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    expect(ui.node(second)).to_have_attribute("data-status", "success")
    expect(ui.node(sub)).to_have_attribute("data-status", "success")
    ui.screenshot("subflow-ran")

    ui.node(sub).locator(".node-title").dblclick()
    crumb = page.locator("#canvas .breadcrumb")
    expect(crumb).to_be_visible()
    expect(crumb.locator(".breadcrumb-here")).to_have_text(re.compile("part"))
    expect(page.locator("#flow-name")).to_have_text(re.compile("part"))
    expect(ui.node(first)).to_have_attribute("data-status", "success")  # the inner node, from the outer run
    ui.screenshot("drilled-down")
    crumb.locator(".breadcrumb-link").click()
    expect(page.locator("#flow-name")).to_have_text("Three in a row")
    expect(crumb).to_be_hidden()
    expect(ui.node(sub)).to_have_attribute("data-status", "success")


def test_mapped_input_marker_item_count_and_a_branch_not_taken(editor: Editor):
    ui = editor
    page = ui.page
    ui.open_app("#/flow/pyflow.samples.map_and_branch")
    expect(page.locator("#flow-name")).to_have_text("Map and branch")
    each = ui.node("each")
    expect(each).to_have_class(re.compile(r"\bsubflow\b"))
    # Port labels show from the zoom at which port handles do (the flow opens fitted, a little further out).
    page.evaluate("() => window.pyflow.canvas.fitView(['each'])")
    expect(each.locator('.port-in.mapped[data-port="x"] .map-marker')).to_be_visible()
    expect(each.locator('.port-in.mapped[data-port="x"] .map-marker')).to_have_text("[ ]")
    page.evaluate("() => window.pyflow.canvas.fitView()")
    page.locator("#btn-run").click()
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    expect(ui.node("down")).to_have_attribute("data-status", "untaken")
    expect(ui.node("down").locator(".node-badge")).to_have_text("not taken")
    expect(ui.node("up")).to_have_attribute("data-status", "success")
    expect(each).to_have_attribute("data-items", "6/6")
    assert float(ui.node("down").evaluate("el => getComputedStyle(el).opacity")) < 0.5
    ui.select_node("each")
    items = page.locator("#inspector .map-items")
    expect(items).to_contain_text("6 of 6 items succeeded")
    expect(items.locator(".item-row")).to_have_count(6)
    ui.select_node("down")
    expect(page.locator("#inspector .run-reason")).to_have_text("Skipped: branch not taken.")
    ui.screenshot("map-and-branch")


def test_a_mapped_node_counts_its_items_while_it_runs_and_lists_failures(editor: Editor, server):
    """Twenty slow items: the badge counts them as they finish; a failed item shows in the inspector
    with its error, and with map_errors skip the run still succeeds."""
    import requests
    slow = {"id": "browser.mapped", "name": "Mapped", "links": [], "nodes": [
        {"id": "wait", "spec_id": "uitest.slow.wait", "map": ["seconds"], "ui": {"x": 100, "y": 100},
         "ports": [{"name": "seconds", "value": [0.2] * 20}]},
        {"id": "check", "spec_id": "uitest.num.checked", "map": ["x"], "map_errors": "skip", "ui": {"x": 100, "y": 300},
         "ports": [{"name": "x", "value": [1, -2, 3]}]}]}
    answer = requests.put(f"{server.url}/api/flows/browser.mapped", json=slow, headers=server.headers())
    assert answer.status_code in (200, 201), answer.text
    ui = editor
    page = ui.page
    ui.open_app("#/flow/browser.mapped")
    page.locator("#btn-run").click()
    expect(ui.node("wait").locator(".node-badge")).to_have_text(re.compile(r"^([1-9]|1[0-9])/20$"))
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    expect(ui.node("wait")).to_have_attribute("data-items", "20/20")
    ui.select_node("check")
    items = page.locator("#inspector .map-items")
    expect(items).to_contain_text("2 of 3 items succeeded, 1 did not")
    expect(items.locator(".item-row").first).to_contain_text("ValueError: -2 is negative")


def test_mapping_an_input_from_the_node_menu_is_an_undoable_edit(editor: Editor, server):
    ui = editor
    page = ui.page
    ui.new_flow("Map me", "browser.mapme")
    double = ui.drag_spec_to_canvas("uitest.num.double", 300, 220)
    ui.node(double).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Map over “x”").click()
    marker = ui.node(double).locator('.port-in.mapped[data-port="x"] .map-marker')
    expect(marker).to_have_text("[ ]")
    page.keyboard.press("Control+z")
    expect(marker).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(marker).to_have_count(1)
    ui.save()
    stored = server.get_json("/api/flows/browser.mapme")
    assert stored["nodes"][0]["map"] == ["x"]
    ui.node(double).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Stop mapping “x”").click()
    expect(marker).to_have_count(0)
