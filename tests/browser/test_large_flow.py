"""A large flow in the real editor: only what is in view is rendered, yet whatever is in view is there and
up to date: nodes where they should be, links attached to their ports, while dragging, after dropping,
after panning and zooming, and after undo; and so while dragging far out, where the links that do not
move are drawn by the link sketch."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

from .editor import Editor

COLUMNS = 20

# Checks the page against the canvas's geometry (theme.js: nodes 220 px wide, ports 24 px apart below a
# 50 px head). Every node in view must be displayed where it is drawn; every link with an end in view
# must be displayed, by its own element or (dragging far out) by the link sketch, and not by both; a
# displayed link must start and end exactly at the ports of the displayed nodes it joins, as drawn (the
# path of its element, or its subpath in the sketch); at a zoom where handles are shown, a displayed
# node's handles are on its ports. Answers a list of problems.
CHECK = """() => {
  const c = window.pyflow.canvas;
  const problems = [];
  const root = c.root.getBoundingClientRect();
  const {x: vx, y: vy, k} = c.view;
  // Rendered: connected, and neither it nor an ancestor is display: none or content-visibility: hidden.
  const displayed = (el) => Boolean(el) && el.isConnected && el.checkVisibility();
  const near = (a, b) => Math.abs(a[0] - b[0]) <= 2 && Math.abs(a[1] - b[1]) <= 2;
  const inView = (p) => Boolean(p) && p[0] >= root.left && p[0] <= root.right && p[1] >= root.top && p[1] <= root.bottom;
  const rects = new Map();
  let shownNodes = 0, shownLinks = 0, sketchedLinks = 0;
  for (const [id, view] of c.views) {
    const left = root.left + vx + view.x * k, top = root.top + vy + view.y * k;
    const width = 220 * k, height = view.height * k;
    const inView = left < root.right && left + width > root.left && top < root.bottom && top + height > root.top;
    if (!displayed(view.el)) {
      if (inView) problems.push(`node ${id} is in view but not displayed`);
      continue;
    }
    shownNodes++;
    const r = view.el.getBoundingClientRect();
    if (!near([r.left, r.top], [left, top]) || Math.abs(r.width - width) > 1) {
      problems.push(`node ${id} is drawn at ${r.left.toFixed(1)},${r.top.toFixed(1)}, not ${left.toFixed(1)},${top.toFixed(1)}`);
    }
    rects.set(id, r);
  }
  const port = (id, name, side) => {
    const r = rects.get(id);
    if (!r) return null;
    const ports = c.views.get(id).ports[side === 'input' ? 'inputs' : 'outputs'];
    const index = ports.findIndex((p) => p.name === name);
    return [side === 'input' ? r.left : r.right, r.top + (50 + index * 24 + 12) * k];
  };
  // The link sketch: each of its paths draws its links as subpaths, in order ("M x y C ... C ...").
  const sketched = new Map();
  if (c.sketch.active) {
    if (!displayed(c.sketch.el)) problems.push('the link sketch is active but not displayed');
    for (const [key, path, index] of c.sketch.entries()) sketched.set(key, [path, index]);
  }
  const screen = (matrix, x, y) => { const p = new DOMPoint(x, y).matrixTransform(matrix); return [p.x, p.y]; };
  const sketchEnds = ([path, index]) => {
    const numbers = path.getAttribute('d').split('M').filter(Boolean)[index].match(/-?[0-9.]+(e-?[0-9]+)?/g).map(Number);
    const matrix = path.getScreenCTM();
    return [screen(matrix, numbers[0], numbers[1]), screen(matrix, numbers.at(-2), numbers.at(-1))];
  };
  for (const key of sketched.keys()) if (!c.connections.has(key)) problems.push(`the sketch draws link ${key}, which is gone`);
  for (const [key, connection] of c.connections) {
    const link = c.model.links.get(key);
    const [sourceNode, sourcePort] = link.source.split(':');
    const [targetNode, targetPort] = link.target.split(':');
    const ends = [port(sourceNode, sourcePort, 'output'), port(targetNode, targetPort, 'input')];
    const svg = connection.connector.canvas;
    let drawn;
    if (displayed(svg)) {
      if (sketched.has(key)) problems.push(`link ${key} is drawn twice: by its element and by the sketch`);
      shownLinks++;
      const path = svg.querySelector('path');
      const matrix = path.getScreenCTM();
      const at = (length) => screen(matrix, path.getPointAtLength(length).x, path.getPointAtLength(length).y);
      drawn = [at(0), at(path.getTotalLength())];
    } else if (sketched.has(key)) {
      sketchedLinks++;
      drawn = sketchEnds(sketched.get(key));
    } else {
      if (ends.some(inView)) problems.push(`link ${key} has an end in view but is not displayed`);
      continue;
    }
    ends.forEach((end, i) => {
      if (end && !near(drawn[i], end) && !near(drawn[1 - i], end)) {
        problems.push(`link ${key} is not attached to its ${i ? 'target' : 'source'} port: ${drawn.map((p) => p.map((v) => v.toFixed(1)))} vs ${end.map((v) => v.toFixed(1))}`);
      }
    });
  }
  if (k >= 0.4) {  // canvas.js: HANDLE_MIN_ZOOM
    for (const [id, r] of rects) {
      const {ports, endpoints} = c.views.get(id);
      const wanted = ports.inputs.length + ports.outputs.length;
      if (endpoints.length !== wanted) problems.push(`node ${id} has ${endpoints.length} of its ${wanted} handles`);
      for (const endpoint of endpoints) {
        const el = endpoint.endpoint.canvas;
        const [, portName, side] = endpoint.getUuid().split(':');
        const expected = port(id, portName, side);
        if (!displayed(el)) { problems.push(`handle ${endpoint.getUuid()} of a displayed node is hidden`); continue; }
        const b = el.getBoundingClientRect();
        if (!near([b.left + b.width / 2, b.top + b.height / 2], expected)) problems.push(`handle ${endpoint.getUuid()} is off its port`);
      }
    }
  }
  return {problems: problems.slice(0, 10), count: problems.length, shownNodes, shownLinks, sketchedLinks,
          sketching: c.sketch.active, total: c.views.size, links: c.connections.size, k,
          far: c.root.classList.contains('far'), tiny: c.root.classList.contains('tiny')};
}"""

NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))"


def grid_flow(flow_id: str, size: int) -> dict:
    """`size` Add nodes on a grid; each one fed by its left neighbour (a) and by the node above it (b)."""
    nodes = [{"id": f"g{i}", "spec_id": "uitest.num.add", "name": f"Add {i}", "ports": [],
              "ui": {"x": (i % COLUMNS) * 300, "y": (i // COLUMNS) * 160}} for i in range(size)]
    links = []
    for i in range(size):
        if i % COLUMNS:
            links.append({"source": f"g{i - 1}:out", "target": f"g{i}:a"})
        if i >= COLUMNS:
            links.append({"source": f"g{i - COLUMNS}:out", "target": f"g{i}:b"})
    return {"id": flow_id, "name": f"Grid of {size}", "nodes": nodes, "links": links}


def check(ui: Editor, when: str) -> dict:
    ui.page.evaluate(NEXT_FRAME)
    result = ui.page.evaluate(CHECK)
    assert not result["count"], f"{when}: {result['count']} problems, e.g. {result['problems']}"
    return result


def open_grid_flow(ui: Editor, server, flow_id: str, size: int) -> dict:
    """Store a grid flow over REST and open it in the editor, every node on the page."""
    flow = grid_flow(flow_id, size)
    request = urllib.request.Request(f"{server.url}/api/flows/{flow_id}", data=json.dumps(flow).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    ui.open_app(f"#/flow/{flow_id}")
    expect(ui.nodes()).to_have_count(size)
    return flow


def test_large_flow_renders_what_is_in_view_and_keeps_it_current(editor: Editor, server):
    ui = editor
    page = ui.page
    flow = open_grid_flow(ui, server, "browser.grid", 400)
    expect(ui.connectors()).to_have_count(len(flow["links"]))

    # Opened fitted to the view: everything is in view. Closer (a node fitted, then 100 %), only about
    # what is in view is rendered.
    opened = check(ui, "opened")
    assert opened["shownNodes"] == 400, opened
    target = "g45"  # row 2, column 5: links in every direction
    page.evaluate("(id) => { const c = window.pyflow.canvas; c.fitView([id]); c.zoomBy(1 / c.view.k); }", target)
    closer = check(ui, "zoomed in")
    assert 0 < closer["shownNodes"] < 100, closer

    # Drag the node, several steps, checking after each frame.
    expect(ui.node(target)).to_be_visible()
    before = ui.node_position(target)
    title = ui.node(target).locator(".node-title").bounding_box()
    x, y = title["x"] + 20, title["y"] + 8
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x + step * 35, y + step * 22)
        check(ui, f"drag step {step}")
    # Far enough that it leaves the view: it and its links go, those of its neighbours stay right.
    page.mouse.move(x + 3000, y + 60)
    check(ui, "dragged out of view")
    page.mouse.move(x + 280, y + 170)
    check(ui, "dragged back")
    page.mouse.up()
    moved = ui.node_position(target)
    assert moved != before
    stored = page.evaluate("(id) => { const n = window.pyflow.model.node(id); return [n.x, n.y]; }", target)
    assert stored == moved
    check(ui, "dropped")

    # Pan with the mouse onto a part of the grid that was not rendered (from left of the minimap).
    canvas = page.locator("#canvas").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] - 240, canvas["y"] + canvas["height"] - 20)
    page.mouse.down()
    page.mouse.move(canvas["x"] + 20, canvas["y"] + 20, steps=6)
    page.mouse.up()
    panned = check(ui, "panned")
    assert panned["shownNodes"] > 0, panned

    # Zoom out with the wheel until the whole grid is in view (handles are hidden that far out).
    page.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
    for _ in range(12):
        page.mouse.wheel(0, 400)
    zoomed = check(ui, "zoomed out")
    assert zoomed["k"] < 0.3 and zoomed["shownNodes"] > 200, zoomed
    ui.screenshot("zoomed-out")

    # Undo the move: the node goes back, and its links with it.
    page.locator("#canvas").focus()
    page.keyboard.press("Control+z")
    page.wait_for_function("([id, x, y]) => { const n = window.pyflow.model.node(id); return n.x === x && n.y === y; }",
                           arg=[target, *before])
    assert ui.node_position(target) == before
    page.evaluate("(id) => { const c = window.pyflow.canvas; c.fitView([id]); }", target)
    check(ui, "undone")


def test_dragging_far_out_sketches_the_still_links_and_keeps_every_link_attached(editor: Editor, server):
    """Fitted far out (most of the flow on screen), a drag draws the links that do not move as the link
    sketch and keeps only the dragged node's links live: every link stays drawn exactly once and attached
    while dragging, after edits during the drag, after zooming in mid-drag, after the drop, and once the
    links get their own elements back when the editor is idle."""
    ui = editor
    page = ui.page
    flow = open_grid_flow(ui, server, "browser.grid.far", 400)
    total = len(flow["links"])
    expect(ui.connectors()).to_have_count(total)
    opened = check(ui, "opened")
    assert opened["far"] and opened["tiny"] and opened["shownLinks"] == total and not opened["sketching"], opened

    target = "g210"  # row 10, column 10: a link in from the left, from above, out to the right and below
    own = {f"g209:out->{target}:a", f"g190:out->{target}:b", f"{target}:out->g211:a", f"{target}:out->g230:b"}
    assert set(page.evaluate("(id) => window.pyflow.model.linksOf(id).map((l) => l.key)", target)) == own
    before = ui.node_position(target)
    box = ui.node(target).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 7):
        page.mouse.move(x + step * 9, y + step * 5)
        result = check(ui, f"far drag step {step}")
        # Only the dragged node's four links are live; the sketch draws all the others.
        assert result["sketching"] and result["shownLinks"] == 4, result
        assert result["sketchedLinks"] == total - 4, result
    live = page.evaluate("() => { const c = window.pyflow.canvas; return [...c.connections]"
                         ".filter(([, conn]) => conn.connector.canvas.parentNode === c.liveLinkLayer).map(([key]) => key); }")
    assert set(live) == own
    ui.screenshot("far-drag")

    # Edits during the drag: a sketched link deleted (the sketch is drawn again without it), a link added
    # (drawn live), and a node elsewhere moved (the sketch is drawn again with its links where they are).
    page.evaluate("() => window.pyflow.model.deleteLink('g0:out->g1:a')")
    result = check(ui, "link deleted mid-drag")
    assert result["sketchedLinks"] == total - 5 and result["shownLinks"] == 4 and result["links"] == total - 1, result
    page.evaluate("() => { const m = window.pyflow.model; m.batch(() => m.insertLink({source: 'g0:out', target: 'g1:a'})); }")
    result = check(ui, "link added mid-drag")
    assert result["sketchedLinks"] == total - 5 and result["shownLinks"] == 5 and result["links"] == total, result
    page.evaluate("() => window.pyflow.model.placeNodes([{id: 'g21', x: 330, y: 190}])")
    result = check(ui, "node moved mid-drag")
    assert result["sketching"] and result["sketchedLinks"] + result["shownLinks"] == total, result
    page.mouse.move(x + 70, y + 40)
    check(ui, "dragged after the edits")

    # Zooming in mid-drag (past where handles show) ends the sketch: every link in view is its own element.
    page.evaluate("(id) => { const c = window.pyflow.canvas; c.fitView([id]); c.zoomBy(0.7); }", target)
    result = check(ui, "zoomed in mid-drag")
    assert not result["sketching"] and not result["far"] and result["k"] >= 0.4 and result["shownLinks"] > 0, result
    page.mouse.move(x + 90, y + 50)
    check(ui, "dragged zoomed in")
    page.mouse.up()
    moved = ui.node_position(target)
    assert moved != before
    result = check(ui, "dropped")
    assert not result["sketching"], result

    # Far out again: a drag that is dropped leaves every link its own element, attached.
    page.evaluate("() => window.pyflow.canvas.fitView()")
    box = ui.node(target).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y + 12, steps=3)
    assert check(ui, "second far drag")["sketching"]
    page.mouse.up()
    check(ui, "dropped far out")  # the sketch may still be shown: it and the live links must be right
    page.wait_for_function("() => !window.pyflow.canvas.sketch.active")
    result = check(ui, "idle after the drop far out")
    assert not result["sketching"] and result["shownLinks"] == total and result["sketchedLinks"] == 0, result
    page.locator("#canvas").focus()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.wait_for_function("([id, x, y]) => { const n = window.pyflow.model.node(id); return n.x === x && n.y === y; }",
                           arg=[target, *before])
    check(ui, "undone")


def test_ports_with_no_link_when_a_large_flow_opens_are_wired_by_dragging(editor: Editor, server):
    """A large flow opens with handles only for the ports that have links; every other port gets its handle
    once its node is shown close enough to aim at it. Such ports are wired by dragging, either way round,
    and a link between them is checked at the drop like any other (types, one link per input)."""
    ui = editor
    page = ui.page
    flow = grid_flow("browser.grid.unlinked", 400)
    # g210 (row 10, column 10) feeds nothing, g211 takes nothing in on a, g230 nothing on b, g219 nothing
    # on b; a text node beside the grid has no link at all.
    dropped = {"g210:out->g211:a", "g210:out->g230:b", "g199:out->g219:b"}
    flow["links"] = [link for link in flow["links"] if f"{link['source']}->{link['target']}" not in dropped]
    flow["nodes"].append({"id": "t", "spec_id": "uitest.text.upper", "name": "Text", "ports": [],
                          "ui": {"x": COLUMNS * 300, "y": 10 * 160}})
    request = urllib.request.Request(f"{server.url}/api/flows/{flow['id']}", data=json.dumps(flow).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    ui.open_app(f"#/flow/{flow['id']}")
    expect(ui.nodes()).to_have_count(401)
    expect(ui.connectors()).to_have_count(len(flow["links"]))
    check(ui, "opened")
    links = lambda: set(page.evaluate("() => [...window.pyflow.model.links.keys()]"))  # noqa: E731
    before = links()

    page.evaluate("() => { const c = window.pyflow.canvas; c.fitView(['g210']); c.zoomBy(1 / c.view.k); }")
    check(ui, "zoomed in")
    ui.link("g210", "out", "g211", "a")  # from an output that had no link to an input that had none
    # Backwards, from an input that had no link to that output.
    ui.drag_link(ui.endpoint("g230", "b", "input"), ui.endpoint("g210", "out", "output"))
    expect(ui.connectors()).to_have_count(len(flow["links"]) + 2)
    assert links() - before == {"g210:out->g211:a", "g210:out->g230:b"}
    check(ui, "wired")

    # Types are checked at the drop between ports that had no handles when the flow opened.
    page.evaluate("() => { const c = window.pyflow.canvas; c.fitView(['g219', 't']); }")
    check(ui, "beside the text node")
    ui.drag_link(ui.endpoint("t", "out", "output"), ui.endpoint("g219", "b", "input"))
    expect(ui.toast(re.compile("Incompatible types: output “out” is String.*is Int"))).to_be_visible()
    ui.drag_link(ui.endpoint("t", "out", "output"), ui.endpoint("g219", "a", "input"))
    expect(ui.toast(re.compile("already has a link"))).to_be_visible()
    expect(ui.connectors()).to_have_count(len(flow["links"]) + 2)
    ui.screenshot("wired-unlinked-ports")

    # Undone, the links go; the ports can be wired again.
    page.locator("#canvas").focus()
    while links() != before:
        count = len(links())
        page.keyboard.press("Control+z")
        page.wait_for_function("(n) => window.pyflow.model.links.size < n", arg=count)
    expect(ui.connectors()).to_have_count(len(flow["links"]))
    page.evaluate("() => { const c = window.pyflow.canvas; c.fitView(['g210']); c.zoomBy(1 / c.view.k); }")
    ui.link("g210", "out", "g211", "a")
    check(ui, "wired again")


def test_a_deep_link_asks_for_its_flow_and_the_catalog_once_while_the_code_loads(editor: Editor, server):
    """The page asks for a deep-linked flow and the catalog before the editor's code has loaded (the
    page's own script), and the editor takes those answers: every startup address is asked for once,
    and none is left untaken. A deep link to a flow that does not exist still says so."""
    ui = editor
    page = ui.page
    flow = grid_flow("browser.early", 60)
    request = urllib.request.Request(f"{server.url}/api/flows/browser.early", data=json.dumps(flow).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    asked = []
    page.on("request", lambda r: asked.append(r.url.split("/", 3)[3]) if "/api/" in r.url else None)
    page.goto("about:blank")  # a page load, not a change of address within the editor
    ui.open_app("#/flow/browser.early")
    expect(ui.nodes()).to_have_count(60)
    expect(ui.connectors()).to_have_count(len(flow["links"]))
    startup = ["api/flows/browser.early", "api/health", "api/port-types", "api/schemas/nodespec",
               "api/nodespecs/tree", "api/subflows", "api/flows?summary=true"]
    assert {url: asked.count(url) for url in startup} == {url: 1 for url in startup}, asked
    assert page.evaluate("() => window.pyflowEarly.size") == 0

    asked.clear()
    page.goto("about:blank")
    page.goto(f"{server.url}/#/flow/browser.nowhere")
    expect(ui.toast(re.compile(r"Could not open flow browser\.nowhere"))).to_be_visible()
    assert asked.count("api/flows/browser.nowhere") == 1, asked
