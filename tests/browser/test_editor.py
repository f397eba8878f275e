"""The flow editor in a real browser against the real server: build, save, reload, run, cancel, undo,
refuse bad links, write and test a nodespec, export and import the repository."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from .editor import Editor


def build_double_flow(ui: Editor, name: str, flow_id: str, a: str = "2", b: str = "3") -> tuple[str, str]:
    """Add numbers (a=2, b=3) → Double (end node): the flow most tests start from. A test that must see
    its nodes run rather than come from the result cache (tests share one server) picks its own values."""
    ui.new_flow(name, flow_id)
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 220)
    double = ui.drag_spec_to_canvas("uitest.num.double", 600, 320)
    ui.link(add, "out", double, "x")
    ui.set_value(add, "a", a)
    ui.set_value(add, "b", b)
    ui.mark_end(double)
    return add, double


def test_build_save_reload_and_run(editor: Editor, server):
    ui = editor
    page = ui.page
    add, double = build_double_flow(ui, "Double the sum", "browser.double", a="4", b="6")
    expect(page.locator("#dirty-indicator")).to_be_visible()
    ui.screenshot("built")

    ui.save()
    expect(ui.toast("Saved “Double the sum”")).to_be_visible()
    stored = server.get_json("/api/flows/browser.double")
    assert {n["id"] for n in stored["nodes"]} == {add, double}
    assert stored["links"] == [{"source": f"{add}:out", "target": f"{double}:x"}]

    # Reload the page: the flow is listed, opens again with its nodes, link and values.
    page.reload()
    expect(page.locator("body.ready")).to_have_count(1)
    page.locator('.flow-item[data-flow="browser.double"]').click()
    expect(page).to_have_url(re.compile(r"#/flow/browser\.double$"))
    expect(ui.nodes()).to_have_count(2)
    expect(ui.connectors()).to_have_count(1)
    ui.select_node(add)
    expect(page.locator('#inspector [data-field="port:a"]')).to_have_value("4")
    expect(page.locator('#inspector [data-field="port:b"]')).to_have_value("6")
    expect(ui.node(double)).to_have_class(re.compile(r"\bis-end\b"))
    ui.screenshot("reloaded")

    # Run: each node goes green with its duration, and the inspector shows inputs, outputs and stdout.
    page.locator("#btn-run").click()
    expect(ui.node(add)).to_have_attribute("data-status", "success")
    expect(ui.node(double)).to_have_attribute("data-status", "success")
    expect(ui.node(double).locator(".node-badge")).to_have_text(re.compile(r"success · .*(ms|s)"))
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/run/[0-9a-f]+$"))
    ui.select_node(double)
    result = page.locator("#inspector .run-result")
    expect(result.locator(".status-pill")).to_have_text("success")
    expect(result.locator(".json-tree").first).to_contain_text("x: 10")
    expect(result.locator(".json-tree").nth(1)).to_contain_text("out: 20")
    expect(result.locator(".stdout")).to_contain_text("doubling 10")
    ui.screenshot("ran")

    # The run history lists the run; opening it from a fresh page paints its statuses again.
    run_url = page.url
    page.locator('.tab[data-tab="runs"]').click()
    expect(page.locator("#run-history .run-item")).to_have_count(1)
    expect(page.locator("#run-history .run-item .status-pill")).to_have_text("succeeded")
    page.goto(f"{ui.url}/")
    page.goto(run_url)
    expect(ui.node(double)).to_have_attribute("data-status", "success")
    expect(page.locator("#flow-name")).to_have_text("Double the sum")


def test_failed_node_shows_error_and_traceback(editor: Editor):
    """An exception raised in a node's own code (in a helper its function calls) shows its type, message
    and the traceback lines of the node's code: file "<node SPEC_ID>", line numbers, source lines, and
    none of the runner's frames. Other nodes still run."""
    ui = editor
    page = ui.page
    ui.new_flow("Failing", "browser.failing")
    checked = ui.drag_spec_to_canvas("uitest.num.checked", 250, 200)
    upper = ui.drag_spec_to_canvas("uitest.text.upper", 600, 200)
    ui.set_value(checked, "x", "-3")
    ui.set_value(upper, "text", "fine")
    page.keyboard.press("Control+Enter")
    expect(ui.node(checked)).to_have_attribute("data-status", "fail")
    expect(ui.node(upper)).to_have_attribute("data-status", "success")
    ui.select_node(checked)
    error = page.locator("#inspector .run-result .error-box")
    expect(error.locator(".error-title")).to_have_text("ValueError: -3 is negative")
    traceback = error.locator("pre.traceback")
    expect(traceback).to_contain_text('File "<node uitest.num.checked>", line 7, in func')
    lines = [line.strip() for line in traceback.inner_text().splitlines() if line.strip()]
    frames = [line for line in lines if line.startswith("File ")]
    assert frames == ['File "<node uitest.num.checked>", line 7, in func',
                      'File "<node uitest.num.checked>", line 3, in check_positive'], lines
    assert lines.index("return check_positive(x) * 2") == lines.index(frames[0]) + 1, lines
    assert lines.index("raise ValueError(f'{x} is negative')") == lines.index(frames[1]) + 1, lines
    ui.screenshot("failed")


def test_cancel_a_long_run(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Slow", "browser.slow")
    wait = ui.drag_spec_to_canvas("uitest.slow.wait", 300, 220)
    after = ui.drag_spec_to_canvas("uitest.num.double", 650, 220)
    ui.set_value(after, "x", "1")
    ui.mark_end(wait)
    page.locator("#btn-run").click()
    expect(ui.node(wait)).to_have_attribute("data-status", "running")
    expect(page.locator("#btn-cancel")).to_be_enabled()
    ui.screenshot("running")
    page.locator("#btn-cancel").click()
    expect(ui.toast(re.compile("Run cancelled"))).to_be_visible(timeout=20_000)
    expect(ui.node(wait)).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#btn-cancel")).to_be_disabled()
    expect(page.locator("#btn-run")).to_be_enabled()
    ui.screenshot("cancelled")


def test_refuses_invalid_links_with_a_reason(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Bad links", "browser.badlinks")
    first = ui.drag_spec_to_canvas("uitest.num.add", 200, 160)
    second = ui.drag_spec_to_canvas("uitest.num.add", 560, 160)
    text = ui.drag_spec_to_canvas("uitest.text.upper", 200, 420)
    ui.link(first, "out", second, "a")

    ui.drag_link(ui.endpoint(first, "a", "input"), ui.endpoint(second, "b", "input"))
    expect(ui.toast("Both ends are inputs")).to_be_visible()
    ui.drag_link(ui.endpoint(text, "out", "output"), ui.endpoint(second, "a", "input"))
    expect(ui.toast(re.compile("already has a link"))).to_be_visible()
    ui.drag_link(ui.endpoint(second, "out", "output"), ui.endpoint(first, "b", "input"))
    expect(ui.toast(re.compile("would close a cycle"))).to_be_visible()
    ui.drag_link(ui.endpoint(text, "out", "output"), ui.endpoint(second, "b", "input"))
    expect(ui.toast(re.compile("Incompatible types: output “out” is String.*is Int"))).to_be_visible()
    expect(ui.connectors()).to_have_count(1)
    ui.screenshot("refused")

    # Drawn backwards (from an input to an output) a link is checked the same way, and made when valid.
    ui.drag_link(ui.endpoint(first, "b", "input"), ui.endpoint(text, "out", "output"))
    expect(page.locator(".status-message")).to_have_text(re.compile("Incompatible types: output “out” is String"))
    ui.drag_link(ui.endpoint(second, "b", "input"), ui.endpoint(first, "out", "output"))
    expect(ui.connectors()).to_have_count(2)


def test_undo_and_redo_every_edit(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Undo", "browser.undo")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    double = ui.drag_spec_to_canvas("uitest.num.double", 600, 260)
    ui.link(add, "out", double, "x")
    ui.set_value(add, "a", "7")

    # Move a node by dragging its title.
    before = ui.node_position(add)
    title = ui.node(add).locator(".node-title").bounding_box()
    page.mouse.move(title["x"] + 10, title["y"] + 5)
    page.mouse.down()
    page.mouse.move(title["x"] + 60, title["y"] + 85, steps=8)
    page.mouse.up()
    moved = ui.node_position(add)
    assert moved != before

    # Delete the link (select it, press Delete) and then the second node (context menu).
    ui.connectors().first.locator("path").last.click(force=True)
    page.keyboard.press("Delete")
    expect(ui.connectors()).to_have_count(0)
    ui.node(double).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Delete node").click()
    expect(ui.nodes()).to_have_count(1)

    canvas = page.locator("#canvas")
    canvas.focus()
    page.keyboard.press("Control+z")  # node back
    expect(ui.nodes()).to_have_count(2)
    page.keyboard.press("Control+z")  # link back
    expect(ui.connectors()).to_have_count(1)
    page.keyboard.press("Control+z")  # move undone
    assert ui.node_position(add) == before
    page.keyboard.press("Control+z")  # value undone
    ui.select_node(add)
    expect(page.locator('#inspector [data-field="port:a"]')).to_have_value("")
    canvas.focus()
    page.keyboard.press("Control+z")  # link undone
    expect(ui.connectors()).to_have_count(0)
    page.keyboard.press("Control+Shift+z")  # link redone
    expect(ui.connectors()).to_have_count(1)
    page.keyboard.press("Control+Shift+z")  # value redone
    ui.select_node(add)
    expect(page.locator('#inspector [data-field="port:a"]')).to_have_value("7")
    canvas.focus()
    page.keyboard.press("Control+Shift+z")  # move redone
    assert ui.node_position(add) == moved

    # Copy and paste the selection: two nodes and the link between them.
    page.keyboard.press("Control+a")
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(ui.nodes()).to_have_count(4)
    expect(ui.connectors()).to_have_count(2)
    page.keyboard.press("Control+z")
    expect(ui.nodes()).to_have_count(2)
    ui.screenshot("after-undo")


def test_create_and_test_a_nodespec(editor: Editor, server):
    ui = editor
    page = ui.page
    dialog = ui.new_spec("uitest.text.shout", "Shout")

    # A syntax error comes back from the server and is shown under the code.
    code = dialog.locator(".cm-content")
    ui.type_code(dialog, "def func(text: str, times: int = 2) -> str:\n    return (text.upper() + '!') * times\n    )\n")
    dialog.locator('[data-action="save"]').click()
    expect(dialog.locator('.field-error[data-for="/func"]')).to_contain_text("syntax error")

    code.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("def func(text: str, times: int = 2) -> str:\n    print('shouting', text)\n    return (text.upper() + '!') * times\n")
    dialog.locator('[data-action="infer"]').click()
    rows = dialog.locator(".ports-block").first.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".port-name")).to_have_value("text")
    expect(rows.nth(0).locator(".port-type")).to_have_value("String")
    expect(rows.nth(1).locator(".port-default")).to_have_value("2")

    # A bad port name is reported next to that cell.
    rows.nth(1).locator(".port-name").fill("2bad")
    dialog.locator('[data-action="save"]').click()
    expect(rows.nth(1).locator(".cell-error").first).not_to_be_empty()
    rows.nth(1).locator(".port-name").fill("times")

    # Test the draft with inputs, then save it.
    dialog.locator('.test-inputs input[name="text"]').fill("hey")
    dialog.locator('[data-action="test"]').click()
    result = dialog.locator(".test-result")
    expect(result.locator(".status-pill")).to_have_text("success")
    expect(result).to_contain_text('"HEY!HEY!"')
    expect(result.locator(".stdout")).to_contain_text("shouting hey")
    ui.screenshot("nodespec-tested")
    dialog.locator('[data-action="save"]').click()
    expect(ui.toast("Saved nodespec uitest.text.shout")).to_be_visible()
    stored = server.get_json("/api/nodespecs/uitest.text.shout")
    assert [p["name"] for p in stored["port"]["input"]] == ["text", "times"]

    # A failing test shows the error and traceback.
    code.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("def func(text: str, times: int = 2) -> str:\n    raise ValueError('no shouting')\n")
    dialog.locator('[data-action="test"]').click()
    expect(result.locator(".error-box")).to_contain_text("ValueError: no shouting")
    dialog.locator(".spec-editor-head .icon-button").click()
    ui.dialog().locator("button", has_text="Discard").click()
    expect(dialog).to_have_count(0)
    expect(page.locator('.palette-item[data-spec="uitest.text.shout"]')).to_have_count(1)


def test_export_then_import(editor: Editor, server, output_dir):
    ui = editor
    page = ui.page
    build_double_flow(ui, "Exported", "browser.exported")
    ui.save()

    with page.expect_download() as download_info:
        ui.click_action("export")
    download = download_info.value
    assert re.fullmatch(r"pyflow-repository-.*\.json", download.suggested_filename)
    path = output_dir / f"{ui.test_name}-export.json"
    download.save_as(path)
    bundle = json.loads(path.read_text())
    assert "browser.exported" in bundle["flow"]
    assert "uitest.num.add" in bundle["nodespec"]

    # Delete the flow, then bring it back by importing the file (merge).
    page.locator('.flow-item[data-flow="browser.exported"] .flow-item-delete').click()
    ui.dialog().locator(".btn-primary").click()
    expect(page.locator('.flow-item[data-flow="browser.exported"]')).to_have_count(0)
    page.locator("#import-file").set_input_files(str(path))
    ui.dialog().locator('[data-value="merge"]').click()
    expect(ui.toast(re.compile("Imported .* \\(merge\\)"))).to_be_visible()
    expect(page.locator('.flow-item[data-flow="browser.exported"]')).to_have_count(1)

    # A broken bundle is refused with the server's list of problems.
    broken = dict(bundle)
    broken["flow"] = {"browser.broken": {"id": "browser.broken", "nodes": [{"id": "n1", "spec_id": "no.such.spec"}], "links": []}}
    bad_path = output_dir / f"{ui.test_name}-broken.json"
    bad_path.write_text(json.dumps(broken))
    page.locator("#import-file").set_input_files(str(bad_path))
    ui.dialog().locator('[data-value="merge"]').click()
    errors = page.locator(".import-error-dialog")
    expect(errors).to_contain_text("no.such.spec")
    ui.screenshot("import-errors")
    errors.locator(".btn-primary").click()

    # Replace asks for confirmation first; cancelling it leaves everything in place.
    page.locator("#import-file").set_input_files(str(path))
    ui.dialog().locator('[data-value="replace"]').click()
    expect(ui.dialog()).to_contain_text("Every nodespec and flow that is not in the file will be deleted")
    expect(ui.dialog()).to_contain_text("The server keeps a copy of what it deletes or overwrites")
    ui.dialog().locator("button", has_text="Cancel").click()
    assert server.get_json("/api/flows/browser.exported")["id"] == "browser.exported"


def test_save_conflict_offers_reload_or_overwrite(editor: Editor, server):
    ui = editor
    page = ui.page
    add, _ = build_double_flow(ui, "Shared", "browser.shared")
    ui.save()
    # Someone else changes the stored flow.
    doc = server.get_json("/api/flows/browser.shared")
    doc["name"] = "Changed elsewhere"
    page.request.put(f"{ui.url}/api/flows/browser.shared", data=json.dumps(doc), headers={"Content-Type": "application/json"})
    ui.set_value(add, "a", "40")
    page.keyboard.press("Control+s")
    conflict = ui.dialog()
    expect(conflict).to_contain_text("changed")
    ui.screenshot("conflict")
    conflict.locator('[data-value="overwrite"]').click()
    expect(page.locator("#dirty-indicator")).to_be_hidden()
    stored = server.get_json("/api/flows/browser.shared")
    assert stored["name"] == "Shared"
    assert {"name": "a", "value": "40"} in next(n for n in stored["nodes"] if n["id"] == add)["ports"]


def test_auto_layout_and_lazy_modules(editor: Editor):
    """Auto-layout (dagre) and the code editor (CodeMirror) are fetched on first use, not with the page."""
    ui = editor
    page = ui.page
    scripts = page.evaluate("() => performance.getEntriesByType('resource').map((r) => r.name)")
    assert not [s for s in scripts if "/layout-" in s or "/code-editor-" in s], scripts
    ui.new_flow("Layout", "browser.layout")
    add = ui.drag_spec_to_canvas("uitest.num.add", 500, 400)
    double = ui.drag_spec_to_canvas("uitest.num.double", 200, 150)
    ui.link(add, "out", double, "x")
    ui.click_action("layout")
    expect(page.locator("#btn-undo")).to_have_attribute("title", re.compile("Undo Auto-layout"))
    (ax, ay), (dx, dy) = ui.node_position(add), ui.node_position(double)
    assert dx > ax + 220 and abs(dy - ay) < 100  # left to right along the link
    page.keyboard.press("Control+z")
    expect(page.locator("#btn-undo")).to_have_attribute("title", re.compile("Undo Link ports"))
    ui.click_action("new-spec")
    expect(page.locator(".spec-editor .cm-content")).to_be_visible()
    scripts = page.evaluate("() => performance.getEntriesByType('resource').map((r) => r.name)")
    assert [s for s in scripts if "/layout-" in s] and [s for s in scripts if "/code-editor-" in s], scripts


def test_drag_moves_the_selection(editor: Editor):
    """Dragging one of several selected nodes moves them all, their links follow, and one undo puts
    them back."""
    from .test_large_flow import CHECK, NEXT_FRAME

    ui = editor
    page = ui.page
    ui.new_flow("Selection", "browser.selection")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    double = ui.drag_spec_to_canvas("uitest.num.double", 560, 300)
    upper = ui.drag_spec_to_canvas("uitest.text.upper", 220, 460)
    ui.link(add, "out", double, "x")
    ui.select_node(add)
    ui.node(double).locator(".node-title").click(modifiers=["Shift"])
    before = {node: ui.node_position(node) for node in (add, double, upper)}

    title = ui.node(add).locator(".node-title").bounding_box()
    page.mouse.move(title["x"] + 10, title["y"] + 5)
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(title["x"] + 10 + step * 12, title["y"] + 5 + step * 8)
        page.evaluate(NEXT_FRAME)
        result = page.evaluate(CHECK)
        assert not result["count"], result["problems"]
    page.mouse.up()
    zoom = page.evaluate("() => window.pyflow.canvas.view.k")
    for node in (add, double):
        (x0, y0), (x1, y1) = before[node], ui.node_position(node)
        assert abs(x1 - x0 - 60 / zoom) <= 1 and abs(y1 - y0 - 40 / zoom) <= 1, (node, before[node], (x1, y1))
    assert ui.node_position(upper) == before[upper]
    expect(page.locator("#btn-undo")).to_have_attribute("title", re.compile("Undo Move 2 nodes"))
    page.keyboard.press("Control+z")
    for node in (add, double, upper):
        assert ui.node_position(node) == before[node]
    assert not page.evaluate(CHECK)["count"]


def test_the_toolbar_links_to_the_api_description(editor: Editor, server):
    page = editor.page
    link = page.locator("#link-api")
    expect(link).to_be_visible()
    with page.context.expect_page() as opened:
        link.click()
    api_page = opened.value
    api_page.wait_for_load_state()
    assert api_page.url == server.url + "/api/openapi.json"
    document = json.loads(api_page.locator("body").inner_text())
    assert document["openapi"].startswith("3.1") and "/api/flows" in document["paths"]
    api_page.close()


def test_marquee_context_menu_and_pan(editor: Editor):
    """A click on the background clears the selection, a shift-drag there adds the nodes in its box, a
    node's context menu acts on the whole selection, and a drag on the background pans the view."""
    ui = editor
    page = ui.page
    ui.new_flow("Pointer", "browser.pointer")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    double = ui.drag_spec_to_canvas("uitest.num.double", 560, 300)
    upper = ui.drag_spec_to_canvas("uitest.text.upper", 220, 460)
    selected = "() => [...window.pyflow.canvas.selection].sort()"
    assert page.evaluate(selected) == [upper]
    canvas = page.locator("#canvas").bounding_box()
    left, top = canvas["x"], canvas["y"]

    page.mouse.click(left + 40, top + 40)
    expect(page.locator("#canvas .node.selected")).to_have_count(0)
    assert page.evaluate(selected) == []

    page.keyboard.down("Shift")
    page.mouse.move(left + 40, top + 40)
    page.mouse.down()
    page.mouse.move(left + 300, top + 250, steps=5)
    page.mouse.move(left + 420, top + 330, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert page.evaluate(selected) == sorted([add])
    ui.node(double).locator(".node-title").click(modifiers=["Shift"])
    assert page.evaluate(selected) == sorted([add, double])

    ui.node(add).locator(".node-title").click(button="right")
    menu = page.locator(".context-menu")
    expect(menu.locator(".menu-item.danger")).to_contain_text("Delete 2 nodes")
    menu.locator(".menu-item", has_text="Duplicate").click()
    expect(ui.nodes()).to_have_count(5)
    copies = page.evaluate(selected)
    assert len(copies) == 2 and not set(copies) & {add, double, upper}

    view = page.evaluate("() => ({...window.pyflow.canvas.view})")
    page.mouse.move(left + 40, top + 40)
    page.mouse.down()
    page.mouse.move(left + 140, top + 90, steps=5)
    page.mouse.up()
    moved = page.evaluate("() => ({...window.pyflow.canvas.view})")
    assert (moved["x"] - view["x"], moved["y"] - view["y"], moved["k"]) == (100, 50, view["k"])
    assert page.evaluate(selected) == sorted(copies)  # a drag that pans keeps the selection
