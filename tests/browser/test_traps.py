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


def test_nodespec_editor_keeps_ports_in_step_with_the_signature(editor: Editor, server):
    """A new nodespec's template runs as it opens; typing a signature updates the port table; a stale
    test result goes when the code changes; a port table the signature needs more than is refused on
    save, naming the parameter."""
    ui = editor
    page = ui.page
    ui.click_action("new-spec")
    dialog = page.locator(".spec-editor")
    rows = dialog.locator(".ports-block").first.locator("tbody tr")
    expect(rows).to_have_count(2)  # the template's a and b
    dialog.locator('.test-inputs input[name="a"]').fill("2")
    dialog.locator('[data-action="test"]').click()
    result = dialog.locator(".test-result")
    expect(result.locator(".status-pill")).to_have_text("success")

    code = dialog.locator(".cm-content")
    code.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("def func(celsius: float, offset: float) -> float:\n    return celsius * 9 / 5 + offset\n")
    expect(result.locator(".status-pill")).to_have_count(0)  # the old result is gone with the old code
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".port-name")).to_have_value("celsius")
    expect(rows.nth(1).locator(".port-name")).to_have_value("offset")
    expect(rows.nth(1).locator(".port-type")).to_have_value("Float")

    dialog.locator('input[data-path="/id"]').fill("uitest.temp.fahrenheit")
    dialog.locator('input[data-path="/title"]').fill("Fahrenheit")
    rows.nth(1).locator(".icon-button").click()  # one port only: the signature needs two
    dialog.locator('[data-action="save"]').click()
    expect(dialog.locator('[data-for="/port/input"] > .field-error')).to_contain_text("'offset'")
    ui.screenshot("signature-refused")
    assert "uitest.temp.fahrenheit" not in {spec["id"] for spec in server.get_json("/api/nodespecs")}


def test_a_number_linked_into_a_dict_input_is_refused_while_dragging_with_the_reason(editor: Editor):
    """Format's `values` needs a JSON object: a link from a number output is refused at the drop with the
    reason, and nothing is linked."""
    ui = editor
    page = ui.page
    ui.new_flow("Dict", "browser.dict")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    fmt = ui.drag_spec_to_canvas("uitest.text.format", 560, 260)
    ui.drag_link(ui.endpoint(add, "out", "output"), ui.endpoint(fmt, "values", "input"))
    expect(ui.toast(re.compile(r"input “values” of .* is Dict \(a JSON object"))).to_be_visible()
    ui.screenshot("dict-refused")
    expect(ui.connectors()).to_have_count(0)
    assert page.evaluate("() => window.pyflow.model.links.size") == 0


def test_an_incomplete_node_off_the_path_does_not_block_the_run_and_is_drawn_not_run(editor: Editor):
    """Add → Double runs while a Double with nothing on its input sits beside it: that node is drawn
    "not run: missing input". Made an end node, it refuses the run in plain words naming it, and the
    message and outline go once the node is deleted."""
    ui = editor
    page = ui.page
    ui.new_flow("Incomplete", "browser.incomplete")
    add = ui.drag_spec_to_canvas("uitest.num.add", 200, 180)
    double = ui.drag_spec_to_canvas("uitest.num.double", 520, 180)
    lonely = ui.drag_spec_to_canvas("uitest.num.double", 520, 420)
    ui.link(add, "out", double, "x")
    ui.set_value(add, "a", "2")
    ui.click_action("run")
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    expect(ui.node(double)).to_have_attribute("data-status", "success")
    expect(ui.node(lonely)).to_have_attribute("data-status", "not-run")
    expect(ui.node(lonely).locator(".node-badge")).to_have_text("not run: missing input")
    ui.screenshot("not-run")

    ui.mark_end(lonely)
    ui.click_action("run")
    refused = ui.toast("Could not start the run")
    expect(refused).to_contain_text("required input 'x' of node 'Double' has neither a link nor a value")
    assert "/nodes/" not in refused.inner_text()
    expect(ui.node(lonely)).to_have_class(re.compile(r"\bhas-problem\b"))
    ui.select_node(lonely)
    page.keyboard.press("Delete")
    expect(ui.node(lonely)).to_have_count(0)
    expect(refused).to_have_count(0)
    expect(page.locator("#canvas .node.has-problem")).to_have_count(0)


def test_a_past_run_of_an_edited_flow_shows_its_own_snapshot_read_only(editor: Editor):
    """After a run the flow is rewired and saved: opening the run from the Runs tab shows the flow as it
    ran (read-only, with a banner saying it changed since), the list shows the run's date, and the
    banner's button brings back the current flow."""
    from .test_editor import build_double_flow

    ui = editor
    page = ui.page
    add, double = build_double_flow(ui, "Snapshot", "browser.snapshot")
    ui.set_value(add, "a", "7")  # a sum no other test computes: this run's results are its own, not cached
    ui.save()
    ui.click_action("run")
    expect(ui.toast(re.compile("Run succeeded"))).to_be_visible()
    extra = ui.drag_spec_to_canvas("uitest.text.upper", 300, 460)  # the flow changes after the run
    ui.save()

    page.locator('.tab[data-tab="runs"]').click()
    item = page.locator("#run-history .run-item").first
    expect(item.locator(".run-item-time")).to_have_text(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"))
    item.click()
    banner = page.locator(".run-snapshot-banner")
    expect(banner).to_contain_text("changed since")
    expect(ui.node(extra)).to_have_count(0)  # the node added after the run is not in its snapshot
    expect(ui.node(double)).to_have_attribute("data-status", "success")
    ui.screenshot("run-snapshot")
    ui.select_node(add)
    page.keyboard.press("Delete")
    expect(ui.node(add)).to_have_count(1)  # read-only
    at = ui.node_position(add)
    title = ui.node(add).locator(".node-title").bounding_box()
    page.mouse.move(title["x"] + 10, title["y"] + 5)
    page.mouse.down()
    page.mouse.move(title["x"] + 80, title["y"] + 60, steps=6)
    page.mouse.up()
    assert ui.node_position(add) == at  # nothing moves either
    expect(ui.toast(re.compile("read-only"))).to_be_visible()
    # Nor does it run: the snapshot is the past, and a run of it would read as a run of the flow.
    expect(page.locator("#btn-run")).to_be_disabled()
    expect(page.locator("#btn-run")).to_have_attribute("title", re.compile("open the current flow"))
    runs_before = page.locator("#run-history .run-item").count()
    page.keyboard.press("Control+Enter")
    expect(ui.toast(re.compile("open the current flow to run it"))).to_be_visible()
    expect(page.locator("#run-history .run-item")).to_have_count(runs_before)

    banner.locator("button", has_text="Open the current flow").click()
    expect(banner).to_be_hidden()
    expect(ui.node(extra)).to_have_count(1)
    expect(ui.node(double)).not_to_have_attribute("data-status", "success")
    expect(page.locator("#btn-run")).to_be_enabled()


def test_a_merge_import_lists_its_clashes_and_imports_as_chosen(editor: Editor, server):
    """Importing a file whose nodespecs share ids with stored ones lists each clash with what changes
    and which flows use it; "import as copies" stores theirs under a new id (their flows follow it),
    "keep mine" leaves mine, and new nodespecs are created."""
    import json

    from .fixtures import SPECS

    ui = editor
    page = ui.page
    ui.new_flow("Uses add", "browser.clash.user")
    ui.drag_spec_to_canvas("uitest.num.add", 220, 200)
    ui.save()
    float_add = {**SPECS["uitest.num.add"], "id": "uitest.num.add",
                 "port": {"input": [{"name": "a", "order": 0, "type": "Float"}, {"name": "b", "order": 1, "type": "Float"}],
                          "output": [{"name": "out", "type": "Float"}]}}
    their_double = {**SPECS["uitest.num.double"], "id": "uitest.num.double", "func": "def func(x):\n    return x + x\n"}
    new = {**SPECS["uitest.text.upper"], "id": "uitest.clash.new"}
    their_flow = {"id": "browser.clash.theirs", "name": "Theirs", "links": [],
                  "nodes": [{"id": "t1", "spec_id": "uitest.num.add", "name": "Add", "ports": [{"name": "a", "value": "1"}]}]}
    bundle = {"format_version": 2, "nodespec": {"uitest.num.add": float_add, "uitest.num.double": their_double,
                                                "uitest.clash.new": new}, "flow": {"browser.clash.theirs": their_flow}}
    page.set_input_files("#import-file", files=[{"name": "theirs.json", "mimeType": "application/json",
                                                  "buffer": json.dumps(bundle).encode()}])
    ui.dialog().locator("button", has_text="Merge").click()
    dialog = ui.dialog()
    add_row = dialog.locator('.clash[data-id="uitest.num.add"]')
    expect(add_row).to_contain_text("input 'a': type Int → Float")
    expect(add_row).to_contain_text("browser.clash.user")
    expect(dialog.locator('.clash[data-id="uitest.num.double"]')).to_contain_text("code (func) differs")
    add_row.locator("select").select_option("copy")
    ui.screenshot("import-clashes")
    dialog.locator("button", has_text="Import").click()
    expect(ui.toast(re.compile("Imported theirs.json"))).to_be_visible()

    assert server.get_json("/api/nodespecs/uitest.num.add")["port"]["input"][0]["type"] == "Int"
    assert server.get_json("/api/nodespecs/uitest.num.add.copy")["port"]["input"][0]["type"] == "Float"
    assert "x * 2" in server.get_json("/api/nodespecs/uitest.num.double")["func"]
    assert server.get_json("/api/nodespecs/uitest.clash.new")["id"] == "uitest.clash.new"
    assert server.get_json("/api/flows/browser.clash.theirs")["nodes"][0]["spec_id"] == "uitest.num.add.copy"


def test_a_refused_save_names_the_node_and_its_port_in_plain_words(editor: Editor):
    """A save the server refuses for one node's sake says which node (by its name) and which port, in
    plain words: no JSON pointer such as /nodes/1/ui/x reaches the toast, the status line or the node's
    outline, whether or not the server's own message names the node."""
    ui = editor
    page = ui.page
    ui.new_flow("Plain words", "browser.plain")
    add = ui.drag_spec_to_canvas("uitest.num.add", 220, 220)
    double = ui.drag_spec_to_canvas("uitest.num.double", 600, 320)
    # States the editor never makes itself but a stale or hand-edited document can hold.
    page.evaluate("(id) => { window.pyflow.model.node(id).x = 'left'; }", double)  # a schema error: no name in it
    page.keyboard.press("Control+s")
    refused = ui.toast("Could not save")
    expect(refused).to_contain_text("Double")
    expect(refused).to_contain_text("position")
    for text in (refused.inner_text(), page.locator(".status-message").inner_text(),
                 ui.node(double).get_attribute("data-problem") or ""):
        assert "/nodes/" not in text and "/ui/" not in text, text
    expect(ui.node(double)).to_have_class(re.compile(r"\bhas-problem\b"))
    ui.screenshot("refused-save-schema")
    refused.locator(".toast-close").click()

    page.evaluate("([add, double]) => { const m = window.pyflow.model; m.node(double).x = 600;"
                  " m.node(add).values.zzz = 1; }", [add, double])
    page.keyboard.press("Control+s")
    refused = ui.toast("Could not save")
    expect(refused).to_contain_text("Add numbers")
    expect(refused).to_contain_text("zzz")
    assert "/nodes/" not in refused.inner_text() and "/ports/" not in refused.inner_text()
    expect(ui.node(add)).to_have_class(re.compile(r"\bhas-problem\b"))
    ui.screenshot("refused-save-port")
