"""Quick-add: a search at the pointer (double-click, Ctrl+click or Tab on the canvas) that adds the chosen
nodespec there; a link dropped on empty canvas opens it filtered to nodespecs that can take the link and
wires the new node; while a link is dragged, the ports it could go to are highlighted and others dimmed."""

from __future__ import annotations

from playwright.sync_api import expect

from .editor import Editor


def canvas_point(ui: Editor, x: float, y: float) -> tuple[float, float]:
    box = ui.page.locator("#canvas").bounding_box()
    return box["x"] + x, box["y"] + y


def test_double_click_ctrl_click_and_tab_open_a_search_that_adds_at_the_point(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Quick", "browser.quick")
    x, y = canvas_point(ui, 320, 220)
    page.mouse.dblclick(x, y)
    search = page.locator(".quick-add input")
    expect(search).to_be_focused()
    search.fill("uitest double")
    ui.screenshot("quick-add")
    page.keyboard.press("Enter")
    expect(page.locator(".quick-add")).to_have_count(0)
    (node,) = ui.node_ids()
    assert page.evaluate(f"() => window.pyflow.model.node('{node}').spec_id") == "uitest.num.double"
    world = page.evaluate(f"([x, y]) => window.pyflow.canvas.worldAt(x, y)", [x, y])
    left, top = ui.node_position(node)
    assert abs(left - world["x"]) < 240 and abs(top - world["y"]) < 80

    page.keyboard.down("Control")
    page.mouse.click(*canvas_point(ui, 600, 420))
    page.keyboard.up("Control")
    expect(page.locator(".quick-add input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".quick-add")).to_have_count(0)
    page.locator("#canvas").focus()
    page.keyboard.press("Tab")
    expect(page.locator(".quick-add input")).to_be_focused()
    page.keyboard.press("Escape")


def test_a_link_dropped_on_empty_canvas_offers_what_can_take_it_and_wires_it(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Quick link", "browser.quick.link")
    upper = ui.drag_spec_to_canvas("uitest.text.upper", 200, 200)
    double = ui.drag_spec_to_canvas("uitest.num.double", 520, 380)
    fmt = ui.drag_spec_to_canvas("uitest.text.format", 520, 120)

    start = ui.endpoint(upper, "out", "output").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + 60, start["y"] + 60, steps=6)
    expect(ui.endpoint(double, "x", "input")).to_have_class(__import__("re").compile(r"\blink-dim\b"))
    expect(ui.endpoint(fmt, "template_text", "input")).to_have_class(__import__("re").compile(r"\blink-ok\b"))
    ui.screenshot("link-highlight")
    drop = canvas_point(ui, 300, 480)
    page.mouse.move(*drop, steps=8)
    page.mouse.up()

    popup = page.locator(".quick-add")
    expect(popup).to_be_visible()
    expect(popup.locator('[data-spec="uitest.text.upper"]')).to_have_count(1)
    expect(popup.locator('[data-spec="uitest.num.double"]')).to_have_count(0)  # an Int input cannot take a String
    ui.screenshot("link-quick-add")
    popup.locator('[data-spec="uitest.text.upper"]').click()
    expect(ui.nodes()).to_have_count(4)
    expect(ui.connectors()).to_have_count(1)
    links = page.evaluate("() => [...window.pyflow.model.links.values()].map(l => [l.source, l.target])")
    (source, target), = links
    assert source == f"{upper}:out" and target.endswith(":text") and not target.startswith(upper)
    expect(page.locator("#canvas .jtk-endpoint.link-dim")).to_have_count(0)
