"""Export of the open flow (with the nodespecs it uses) or of the selected nodes, to a file or the
clipboard; paste of a flow's JSON; new and pasted nodes placed clear of the nodes already there."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from .editor import Editor
from .test_editor import build_double_flow


def boxes_overlap(a, b) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_export_the_flow_to_a_file_and_the_selection_to_the_clipboard_then_paste_it(editor: Editor):
    ui = editor
    page = ui.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    add, double = build_double_flow(ui, "Flow to export", "browser.export.flow")
    canvas = page.locator("#canvas").bounding_box()
    page.mouse.click(canvas["x"] + 60, canvas["y"] + canvas["height"] - 60, button="right")
    with page.expect_download() as download:
        page.locator(".context-menu .menu-item", has_text="Export flow to a file").click()
    bundle = json.loads(open(download.value.path()).read())
    assert download.value.suggested_filename == "browser.export.flow.json"
    (flow,) = bundle["flow"].values()
    assert sorted(n["id"] for n in flow["nodes"]) == sorted([add, double]) and len(flow["links"]) == 1
    assert set(bundle["nodespec"]) == {"uitest.num.add", "uitest.num.double"}
    assert bundle["nodespec"]["uitest.num.add"]["func"].startswith("def func")

    ui.select_node(double)
    ui.node(double).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Copy selection as JSON").click()
    expect(ui.toast("Copied the selection as JSON")).to_be_visible()
    copied = json.loads(page.evaluate("() => navigator.clipboard.readText()"))
    (selection,) = copied["flow"].values()
    assert [n["id"] for n in selection["nodes"]] == [double] and selection["links"] == []

    ui.save()
    ui.new_flow("Pasted", "browser.pasted")
    ui.drag_spec_to_canvas("uitest.text.upper", canvas["width"] / 2, canvas["height"] / 2)
    page.locator("#canvas").focus()
    page.keyboard.press("Control+v")
    expect(ui.nodes()).to_have_count(2)
    specs = page.evaluate("() => [...window.pyflow.model.nodes.values()].map(n => n.spec_id).sort()")
    assert specs == ["uitest.num.double", "uitest.text.upper"]
    first, second = ui.nodes().nth(0).bounding_box(), ui.nodes().nth(1).bounding_box()
    assert not boxes_overlap(first, second)
    ui.screenshot("pasted")


def test_nodes_dropped_on_the_same_spot_do_not_overlap(editor: Editor):
    ui = editor
    ui.new_flow("Stacked", "browser.stacked")
    for _ in range(3):
        ui.drag_spec_to_canvas("uitest.num.add", 300, 240)
    boxes = [ui.nodes().nth(i).bounding_box() for i in range(3)]
    assert not any(boxes_overlap(boxes[i], boxes[j]) for i in range(3) for j in range(i + 1, 3))
    ui.screenshot("stacked")
