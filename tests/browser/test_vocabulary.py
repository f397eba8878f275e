"""The editor reads the server's yes/no words and id pattern instead of keeping copies of them."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from .editor import Editor

FLOW = {"id": "browser.words", "name": "Words", "links": [],
        "nodes": [{"id": "on", "spec_id": "uitest.num.double", "is_end": "On", "ports": [{"name": "x", "value": "1"}],
                   "ui": {"x": 100, "y": 100}},
                  {"id": "off", "spec_id": "uitest.num.double", "is_end": "off", "ports": [{"name": "x", "value": "2"}],
                   "ui": {"x": 400, "y": 100}}]}


def test_end_flags_read_as_the_server_reads_them(editor: Editor, server):
    """"On" is one of the server's true words: the node it marks is an end node in the editor too."""
    resp = editor.page.request.post(f"{server.url}/api/flows", data=json.dumps(FLOW),
                                    headers={"Content-Type": "application/json"})
    assert resp.ok, resp.text()
    editor.open_app("#/flow/browser.words")
    expect(editor.node("on")).to_be_visible()
    ends = editor.page.evaluate("() => ['on', 'off'].map((id) => window.pyflow.model.isEnd(id))")
    assert ends == [True, False]


def test_ids_are_checked_with_the_servers_pattern(editor: Editor):
    words = editor.page.evaluate("() => window.pyflow.catalog.typeNames")
    assert "Boolean" in words and "Json" in words
    editor.click_action("new-flow")
    dialog = editor.dialog()
    dialog.locator("input[name=name]").fill("Two dots")
    dialog.locator("input[name=id]").fill("two..dots")
    dialog.locator(".btn-primary").click()
    expect(dialog).to_contain_text("no '..'")
