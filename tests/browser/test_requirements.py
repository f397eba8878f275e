"""Third-party packages in the editor: the nodespec editor's Requirements field (suggested from imports,
checked by the server, prepared ahead with the resolved versions shown), the install shown on the node
that waits for it during a run, and the Packages dialog."""

from __future__ import annotations

import shutil
import threading

import pytest
import requests
from playwright.sync_api import expect

from tests.support.server import LiveServer
from tests.support.wheels import Wheelhouse, make_wheel

from .conftest import editor_session

SOURCE = "import tinypkg\n\ndef func(x: int) -> list:\n    return [x, tinypkg.VALUE]\n"


@pytest.fixture(scope="module")
def gated(output_dir):
    """A server installing from a wheelhouse on 127.0.0.1 whose answers wait for the test's word."""
    gate = threading.Event()
    gate.set()
    folder = output_dir / "requirements-wheels"
    make_wheel(folder, "tinypkg", "1.0", {"tinypkg/__init__.py": "VALUE = 1\n"})
    make_wheel(folder, "tinypkg", "2.0", {"tinypkg/__init__.py": "VALUE = 2\n"})
    with Wheelhouse(folder, gate=gate) as house:
        shutil.rmtree(output_dir / "server-requirements", ignore_errors=True)
        live = LiveServer(output_dir / "server-requirements", executor="sandbox",
                          args=("--no-index", "--find-links", house.url))
        with live:
            yield live, gate


def test_requirements_in_the_nodespec_editor(browser, gated, output_dir):
    server, _gate = gated
    with editor_session(browser, server.url, output_dir, "requirements-editor") as ui:
        page = ui.page
        ui.click_action("new-spec")
        dialog = page.locator(".spec-editor")
        dialog.locator('input[data-path="/id"]').fill("uitest.tiny")
        dialog.locator('input[data-path="/title"]').fill("Tiny")
        dialog.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(SOURCE)
        field = dialog.locator(".requirements-input")
        dialog.locator('[data-action="suggest-requirements"]').click()
        expect(field).to_have_value("tinypkg")

        field.fill("tinypkg==1.0\n-e .")  # refused by the server, named under the field
        dialog.locator('[data-action="save"]').click()
        expect(dialog.locator('[data-for="/requirements"] > .field-error')).to_contain_text("not a package name")

        field.fill("tinypkg==1.0")
        dialog.locator('[data-action="prepare"]').click()
        expect(dialog.locator(".requirements-packages")).to_contain_text("tinypkg==1.0")
        ui.screenshot("prepared")
        dialog.locator('[data-action="save"]').click()
        expect(ui.toast("Saved nodespec uitest.tiny")).to_be_visible()
        assert server.get_json("/api/nodespecs/uitest.tiny")["requirements"] == ["tinypkg==1.0"]
        dialog.locator(".spec-editor-head .icon-button").click()
        expect(dialog).to_have_count(0)

        ui.click_action("packages")
        table = ui.dialog().locator(".environments-table")
        expect(table).to_contain_text("tinypkg==1.0")
        expect(table).to_contain_text("uitest.tiny")


def test_a_node_shows_its_install_while_it_waits(browser, gated, output_dir):
    server, gate = gated
    spec = {"id": "uitest.tiny2", "title": "Tiny 2", "func": SOURCE, "requirements": ["tinypkg>=2"],
            "port": {"input": [{"name": "x", "type": "Int", "required": True}], "output": [{"name": "out", "type": "Json"}]}}
    flow = {"id": "uitest-install", "name": "Install", "links": [],
            "nodes": [{"id": "t", "spec_id": "uitest.tiny2", "name": "Tiny", "is_end": True,
                       "ports": [{"name": "x", "value": 5}], "ui": {"x": 200, "y": 150}}]}
    for path, doc in (("/api/nodespecs", spec), ("/api/flows", flow)):
        assert requests.post(server.url + path, json=doc, timeout=30).status_code == 201
    with editor_session(browser, server.url, output_dir, "requirements-install") as ui:
        ui.open_app("#/flow/uitest-install")
        expect(ui.node("t")).to_be_visible()
        gate.clear()
        try:
            ui.click_action("run")
            expect(ui.node("t").locator(".node-note")).to_contain_text("installing tinypkg")
            ui.screenshot("installing")
        finally:
            gate.set()
        expect(ui.node("t")).to_have_attribute("data-status", "success", timeout=60_000)
        expect(ui.node("t").locator(".node-note")).to_have_count(0)
