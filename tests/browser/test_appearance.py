"""The shortcut sheet, the dark theme (following the system, with a toggle), collapsible sidebars, align
and distribute, and a nodespec's Markdown help (sanitized)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .editor import Editor
from .test_editor import build_double_flow


def test_shortcut_sheet_theme_and_sidebars(editor: Editor):
    ui = editor
    page = ui.page
    page.locator("#canvas").focus()
    page.keyboard.press("?")
    sheet = ui.dialog()
    expect(sheet).to_contain_text("Keyboard shortcuts")
    expect(sheet).to_contain_text("Add a node at the pointer")
    ui.screenshot("shortcuts")
    page.keyboard.press("Escape")
    expect(page.locator(".dialog-backdrop")).to_have_count(0)

    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    ui.new_flow("Dark", "browser.dark")
    ui.drag_spec_to_canvas("uitest.num.add", 300, 200)
    ui.screenshot("dark")
    page.emulate_media(color_scheme="light")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    theme = page.locator('.toolbar [data-action="theme"]')
    theme.click()  # auto → dark, whatever the system says
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    theme.click()  # → light
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    theme.click()  # → auto again

    width = page.locator("#canvas").bounding_box()["width"]
    page.locator('[data-action="toggle-left"]').click()
    expect(page.locator(".sidebar-left")).to_be_hidden()
    assert page.locator("#canvas").bounding_box()["width"] > width + 200
    ui.save()
    page.reload()
    expect(page.locator("body.ready")).to_have_count(1)
    expect(page.locator(".sidebar-left")).to_be_hidden()  # remembered
    page.locator('[data-action="toggle-left"]').click()
    expect(page.locator(".sidebar-left")).to_be_visible()


def test_align_and_distribute_the_selection(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Arrange", "browser.arrange")
    ids = [ui.drag_spec_to_canvas("uitest.num.add", x, y) for x, y in ((200, 120), (260, 300), (420, 470))]
    page.keyboard.press("Control+a")
    ui.node(ids[0]).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Align left edges").click()
    lefts = {ui.node_position(i)[0] for i in ids}
    assert len(lefts) == 1
    ui.node(ids[0]).locator(".node-title").click(button="right")
    page.locator(".context-menu .menu-item", has_text="Distribute vertically").click()
    tops = sorted(ui.node_position(i)[1] for i in ids)
    assert abs((tops[1] - tops[0]) - (tops[2] - tops[1])) <= 1
    expect(page.locator("#btn-undo")).to_have_attribute("title", re.compile("Undo Distribute vertically"))


def test_help_shows_the_description_as_sanitized_markdown_with_the_ports(editor: Editor):
    ui = editor
    page = ui.page
    ui.new_flow("Help", "browser.help")
    node = ui.drag_spec_to_canvas("uitest.text.upper", 300, 200)
    ui.select_node(node)
    page.locator('.tab[data-tab="help"]').click()
    help_ = page.locator("#help")
    expect(help_.locator(".help-body strong")).to_have_text("upper case")
    expect(help_.locator(".help-body li")).to_have_count(2)
    expect(help_.locator(".help-ports").first).to_contain_text("text String")
    assert help_.locator("script, [onerror]").count() == 0
    assert help_.locator('a[href^="javascript"]').count() == 0
    assert page.evaluate("() => window.xss") is None
    ui.screenshot("help")


# WCAG AA: normal text needs 4.5:1 against what is behind it.
CONTRAST = """(selector) => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const element = document.querySelector(selector);
  let behind = element;
  while (behind && (getComputedStyle(behind).backgroundColor === "rgba(0, 0, 0, 0)" || rgb(getComputedStyle(behind).backgroundColor)[3] === 0)) behind = behind.parentElement;
  const [a, b] = [lum(rgb(getComputedStyle(element).color)), lum(rgb(getComputedStyle(behind || document.body).backgroundColor))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_in_the_dark_theme_a_failed_nodes_error_and_output_stay_readable(editor: Editor):
    ui = editor
    page = ui.page
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dialog = ui.new_spec("uitest.text.dark", "Dark")
    ui.type_code(dialog, "def func(text: str = 'x') -> str:\n    print('said', text)\n    raise ValueError('no shouting')\n")
    dialog.locator('[data-action="infer"]').click()
    expect(dialog.locator(".ports-block").first.locator("tbody tr")).to_have_count(1)
    dialog.locator('[data-action="test"]').click()
    result = dialog.locator(".test-result")
    expect(result.locator(".error-box")).to_contain_text("ValueError: no shouting")
    expect(result.locator(".stdout")).to_contain_text("said x")
    ui.screenshot("dark-error")
    for part in (".test-result .error-title", ".test-result .stdout", ".test-result .traceback",
                 ".spec-editor .cm-line", ".spec-editor .cm-gutterElement"):
        assert page.evaluate(CONTRAST, part) >= 4.5, part
    # The code follows the theme: a dark editor on a dark page, its keywords readable on it.
    background = page.evaluate("() => getComputedStyle(document.querySelector('.spec-editor .cm-editor')).backgroundColor")
    panel = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--panel').trim()")
    assert background == "rgb(17, 24, 39)" and panel == "#111827", (background, panel)
    assert page.evaluate(CONTRAST, ".spec-editor .cm-line span") >= 4.5


def test_in_the_dark_theme_a_runs_results_the_status_bar_and_dialogs_stay_readable(editor: Editor):
    ui = editor
    page = ui.page
    page.emulate_media(color_scheme="dark")
    # Values no other test runs (one server serves them all): a cached result would not show stdout.
    add, double = build_double_flow(ui, "Dark run", "browser.darkrun", a="7", b="9")
    ui.save()
    page.locator("#btn-run").click()
    expect(ui.node(double)).to_have_attribute("data-status", "success")
    ui.select_node(double)
    result = page.locator("#inspector .run-result")
    expect(result.locator(".json-tree").nth(1)).to_contain_text("out: 32")
    ui.screenshot("dark-run")
    for part in ("#inspector .run-result h5", "#inspector .run-result .json-key", "#inspector .run-result .json-number",
                 "#inspector .run-result .stdout", ".statusbar .status-message"):
        assert page.evaluate(CONTRAST, part) >= 4.5, part
    page.locator('.flow-item[data-flow="browser.darkrun"]').hover()
    page.locator('[aria-label="Delete flow browser.darkrun"]').click()
    expect(ui.dialog().locator(".dialog-message")).to_contain_text("Delete flow")
    assert page.evaluate(CONTRAST, ".dialog-message") >= 4.5
    page.keyboard.press("Escape")
    expect(page.locator(".dialog-backdrop")).to_have_count(0)
