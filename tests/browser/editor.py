"""A page object for the flow editor: what a person does, in the words of the tests."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


class Editor:
    def __init__(self, page: Page, url: str, output_dir: Path, test_name: str):
        self.page = page
        self.url = url
        self.output_dir = output_dir
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)

    # ------------------------------------------------------------------------------------ basics
    def open_app(self, hash_: str = "") -> None:
        self.page.goto(f"{self.url}/{hash_}")
        expect(self.page.locator("body.ready")).to_have_count(1)

    def screenshot(self, name: str) -> Path:
        path = self.output_dir / f"{self.test_name}-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def click_action(self, action: str) -> None:
        self.page.locator(f'.toolbar [data-action="{action}"]').click()

    def dialog(self) -> Locator:
        return self.page.locator(".dialog-backdrop .dialog").last

    def toast(self, text: str | re.Pattern) -> Locator:
        return self.page.locator(".toast", has_text=text)

    def nodes(self) -> Locator:
        return self.page.locator("#canvas .node")

    def node(self, node_id: str) -> Locator:
        return self.page.locator(f'#canvas .node[data-node="{node_id}"]')

    def node_ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#canvas .node", "els => els.map(e => e.dataset.node)")

    def connectors(self) -> Locator:
        return self.page.locator("#canvas .jtk-connector")

    # ------------------------------------------------------------------------------------- flows
    def new_flow(self, name: str, flow_id: str | None = None) -> None:
        self.click_action("new-flow")
        dialog = self.dialog()
        dialog.locator("input[name=name]").fill(name)
        if flow_id:
            dialog.locator("input[name=id]").fill(flow_id)
        dialog.locator(".btn-primary").click()
        expect(self.page.locator("#flow-name")).to_have_text(name)

    def new_spec(self, spec_id: str, title: str) -> Locator:
        """Open the nodespec editor on a new nodespec with this id and title; answers its dialog."""
        self.click_action("new-spec")
        dialog = self.page.locator(".spec-editor")
        expect(dialog).to_be_visible()
        dialog.locator('input[data-path="/id"]').fill(spec_id)
        dialog.locator('input[data-path="/title"]').fill(title)
        return dialog

    def type_code(self, dialog: Locator, source: str) -> None:
        """Replace the code in the nodespec editor's code editor with `source`."""
        dialog.locator(".cm-content").click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(source)

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        expect(self.page.locator("#dirty-indicator")).to_be_hidden()

    # ---------------------------------------------------------------------------------- building
    def drag_spec_to_canvas(self, spec_id: str, x: float, y: float) -> str:
        """Drag a nodespec from the palette to canvas point (x, y); answers the new node's id."""
        before = set(self.node_ids())
        self.page.locator(".palette-search").fill(spec_id)
        item = self.page.locator(f'.palette-item[data-spec="{spec_id}"]')
        box = item.bounding_box()
        canvas = self.page.locator("#canvas").bounding_box()
        self.page.mouse.move(box["x"] + 30, box["y"] + box["height"] / 2)
        self.page.mouse.down()
        self.page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2 + 20, steps=4)
        self.page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=10)
        self.page.mouse.up()
        expect(self.nodes()).to_have_count(len(before) + 1)
        (new_id,) = set(self.node_ids()) - before
        return new_id

    def endpoint(self, node_id: str, port: str, side: str) -> Locator:
        return self.page.locator(f'#canvas .jtk-endpoint[data-node="{node_id}"][data-port="{port}"][data-side="{side}"]')

    def drag_link(self, source: Locator, target: Locator) -> None:
        """Press on one port handle, move over another and release, as a person wires ports. Both handles
        are waited for first: after a zoom, the canvas draws handles in a later frame, and a handle not
        yet drawn has no box."""
        expect(source).to_be_visible()
        expect(target).to_be_visible()
        start = source.bounding_box()
        end = target.bounding_box()
        self.page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
        self.page.mouse.down()
        self.page.mouse.move(start["x"] + 40, start["y"] + 25, steps=5)
        self.page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
        self.page.mouse.up()

    def link(self, source_node: str, source_port: str, target_node: str, target_port: str) -> None:
        count = self.connectors().count()
        self.drag_link(self.endpoint(source_node, source_port, "output"), self.endpoint(target_node, target_port, "input"))
        expect(self.connectors()).to_have_count(count + 1)

    def select_node(self, node_id: str) -> None:
        self.node(node_id).locator(".node-title").click()
        expect(self.node(node_id)).to_have_class(re.compile(r"\bselected\b"))

    def set_value(self, node_id: str, port: str, value: str) -> None:
        self.select_node(node_id)
        field = self.page.locator(f'#inspector [data-field="port:{port}"]')
        field.fill(value)
        field.press("Enter")
        expect(self.page.locator(f'#inspector [data-field="port:{port}"]')).to_have_value(value)

    def mark_end(self, node_id: str) -> None:
        self.select_node(node_id)
        self.page.locator('#inspector [data-field="is_end"]').check()
        expect(self.node(node_id)).to_have_class(re.compile(r"\bis-end\b"))

    def node_position(self, node_id: str) -> tuple[float, float]:
        return self.node(node_id).evaluate("el => [parseFloat(el.style.left), parseFloat(el.style.top)]")
