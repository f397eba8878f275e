"""The editor at a small screen (1024x700) and its start page: every toolbar action reachable, no hint
under the start card, a status line that says the editor is ready."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import editor_session


def test_at_1024x700_every_toolbar_action_is_on_screen_or_in_the_overflow_menu(browser, server, output_dir, request):
    with editor_session(browser, server.url, output_dir, request.node.name) as ui:
        page = ui.page
        page.set_viewport_size({"width": 1024, "height": 700})
        offscreen = page.eval_on_selector_all(
            ".toolbar button, .toolbar a",
            "els => els.filter(e => e.offsetParent && e.getBoundingClientRect().right > innerWidth)"
            ".map(e => e.textContent.trim())")
        assert offscreen == []
        ui.screenshot("toolbar-1024")
        page.locator('.toolbar [data-action="more"]').click()
        menu = page.locator(".context-menu")
        for label in ("New nodespec", "Export", "Import", "API"):
            expect(menu.locator(".menu-item", has_text=label)).to_be_visible()
        ui.screenshot("toolbar-more")
        with page.expect_download() as download:
            menu.locator(".menu-item", has_text="Export").click()
        assert download.value.suggested_filename.endswith(".json")


def test_the_start_page_shows_its_card_alone_and_a_ready_status(editor):
    page = editor.page
    expect(page.locator(".no-flow-card")).to_be_visible()
    expect(page.locator(".canvas-empty")).to_be_hidden()
    expect(page.locator(".status-message")).not_to_have_text("Loading…")
    editor.screenshot("start")


def test_a_nodespec_dropped_with_no_flow_open_lands_in_a_new_flow(editor):
    ui = editor
    page = ui.page
    expect(page.locator("#flow-name")).to_have_text("No flow open")
    node = ui.drag_spec_to_canvas("uitest.num.add", 300, 240)
    expect(page.locator("#flow-name")).to_have_text("Untitled flow")
    expect(page.locator("#dirty-indicator")).to_be_visible()
    assert page.evaluate("() => [...window.pyflow.model.nodes.keys()]") == [node]
    ui.screenshot("dropped-into-new-flow")
