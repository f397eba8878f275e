"""Rich values in the editor: an image output shows its thumbnail on the node and the full image in the
inspector with a download link; a table preview is a real table; a forged preview (script in a column
name, markup in a cell) is shown as text and runs nothing."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.support.png import PNG_NODE
from tests.support.server import LiveServer

from .conftest import editor_session
from .editor import Editor

OUT = "/run/pyflow/out"
# A node writing its own artifact and a forged table preview, then its own result line (see
# tests/unit/executors/test_artifact_forgery.py): what a hostile node can make the editor show.
FORGED_TABLE = {"table": {"columns": ["<script>window.__pwned = 1</script>", "plain"], "dtypes": ["object", "int64"],
                          "rows": 2, "head": [["<img src=x onerror=\"window.__pwned = 2\">", 1], ["b", 2]]},
                "repr": "<b>bold?</b>"}
FORGE = ("import os, json, pickle\n"
         "def func():\n"
         f"    open({OUT + '/out-0.pickle'!r}, 'wb').write(pickle.dumps(['forged']))\n"
         f"    open({OUT + '/out-0.preview.json'!r}, 'w').write({json.dumps(FORGED_TABLE)!r})\n"
         "    claim = {'file': 'out-0.pickle', 'type': 'pandas.DataFrame', 'format': 'pickle', 'preview': 'out-0.preview.json'}\n"
         "    pipes = [fd for fd in map(int, os.listdir('/proc/self/fd')) if fd > 2\n"
         "             and os.path.exists(f'/proc/self/fd/{fd}') and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:')]\n"
         "    view = memoryview(json.dumps({'ok': True, 'error': None, 'artifacts': {'': claim}}).encode() + b'\\nnull')\n"
         "    while view:\n        view = view[os.write(pipes[-1], view):]\n"
         "    os._exit(0)\n")

SPECS = [
    {"id": "uitest.rich.png", "title": "Picture", "func": PNG_NODE,
     "port": {"input": [{"name": "width", "type": "Int"}, {"name": "height", "type": "Int"}],
              "output": [{"name": "out", "type": "Image"}]}},
    {"id": "uitest.rich.forged", "title": "Forged table", "func": FORGE, "cache": False,
     "port": {"output": [{"name": "out", "type": "DataFrame"}]}},
]
FLOW = {"id": "browser.rich", "name": "Rich values", "links": [],
        "nodes": [{"id": "pic", "spec_id": "uitest.rich.png", "name": "Picture", "ui": {"x": 120, "y": 120},
                   "ports": [{"name": "width", "value": "120"}, {"name": "height", "value": "80"}]},
                  {"id": "tab", "spec_id": "uitest.rich.forged", "name": "Forged table", "ui": {"x": 520, "y": 120}}]}


def _post(server, path: str, doc: dict) -> None:
    request = urllib.request.Request(server.url + path, data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def _open_imported(editor: Editor, server, specs: list, flow: dict):
    """Import `specs` and `flow`, then open the flow in the editor, reloaded so that it knows the nodespecs
    imported after the page first loaded; answers (editor, page)."""
    _post(server, "/api/repository/import?mode=merge", {"format_version": 2, "nodespec": {s["id"]: s for s in specs},
                                                        "flow": {flow["id"]: flow}})
    editor.open_app(f"#/flow/{flow['id']}")
    editor.page.reload()
    expect(editor.page.locator("body.ready")).to_have_count(1)
    return editor, editor.page


def test_images_and_tables_are_shown_and_forged_text_stays_text(editor: Editor, server):
    ui, page = _open_imported(editor, server, SPECS, FLOW)
    expect(ui.nodes()).to_have_count(2)
    expect(ui.node("pic")).not_to_have_class(re.compile(r"\bmissing-spec\b"))
    page.locator("#btn-run").click()
    expect(ui.node("pic")).to_have_attribute("data-status", "success")
    expect(ui.node("tab")).to_have_attribute("data-status", "success")

    thumbnail = ui.node("pic").locator(".node-thumbnail")
    expect(thumbnail).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 120", arg=thumbnail.element_handle())
    box = thumbnail.bounding_box()  # painted where it is, not clipped away by its node
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.className", [box["x"] + box["width"] / 2,
                                                                                  box["y"] + box["height"] / 2]) == "node-thumbnail"
    expect(ui.node("pic").locator(".node-artifact-summary")).to_have_text("Image 120 x 80")
    expect(ui.node("tab").locator(".node-artifact-summary")).to_have_text("DataFrame 2 x 2")

    ui.select_node("pic")
    image = page.locator("#inspector .artifact-image")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalHeight === 80", arg=image.element_handle())
    download = page.locator("#inspector a.artifact-download")
    expect(download).to_have_attribute("href", re.compile(r"/outputs/out\?raw=1$"))
    ui.screenshot("image")

    ui.select_node("tab")
    table = page.locator("#inspector table.artifact-table")
    expect(table).to_be_visible()
    expect(table.locator("th").first).to_have_text("<script>window.__pwned = 1</script>")
    expect(table.locator("td").first).to_have_text('<img src=x onerror="window.__pwned = 2">')
    assert table.locator("img, script").count() == 0
    assert page.evaluate("window.__pwned") is None
    ui.screenshot("forged-table")


def test_an_end_node_image_shows_as_a_thumbnail_on_the_canvas_and_in_the_results_tab(editor: Editor, server):
    """An end node whose output is an image: a thumbnail, never the artifact's JSON, on the node and in
    the Results tab."""
    flow = {"id": "browser.rich.end", "name": "Picture result", "links": [],
            "nodes": [{**FLOW["nodes"][0], "id": "end", "is_end": True,  # not the other test's (cached) picture
                       "ports": [{"name": "width", "value": "96"}, {"name": "height", "value": "64"}]}]}
    ui, page = _open_imported(editor, server, SPECS[:1], flow)
    page.locator("#btn-run").click()
    expect(ui.node("end")).to_have_attribute("data-status", "success")
    thumbnail = ui.node("end").locator(".node-thumbnail")
    expect(thumbnail).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 96", arg=thumbnail.element_handle())
    expect(ui.node("end")).not_to_contain_text("$artifact")
    expect(ui.toast(re.compile(r"Run succeeded.*Picture = Image 96 x 64"))).to_be_visible()

    page.locator('.tab[data-tab="results"]').click()
    row = page.locator("#results .result-row", has_text="Picture")
    shown = row.locator("img.result-thumbnail")
    expect(shown).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 96", arg=shown.element_handle())
    expect(row).to_contain_text("Image 96 x 64")
    expect(row).not_to_contain_text("$artifact")
    ui.screenshot("image-result")


INDEX = "https://pypi.org/simple/"


@pytest.fixture(scope="module")
def online(output_dir):
    """Servers whose nodes' environments come from the real package index (the sample's nodespecs need
    pandas and matplotlib); skipped, saying so, when the index does not answer."""
    try:
        urllib.request.urlopen(INDEX + "pandas/", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"the package index {INDEX} does not answer ({exc}); the sample installs pandas and matplotlib")
    started = {}

    def start(executor: str):
        if executor not in started:
            shutil.rmtree(output_dir / f"server-online-{executor}", ignore_errors=True)
            started[executor] = LiveServer(output_dir / f"server-online-{executor}", executor=executor,
                                           args=("--index-url", INDEX), env={"PIP_NO_INDEX": "", "PIP_FIND_LINKS": ""})
            started[executor].start()
        return started[executor]

    yield start
    for live in started.values():
        live.stop()


@pytest.mark.network
@pytest.mark.parametrize("executor", ["sandbox", "unsafe-process"])
def test_the_sample_table_and_plot_show_in_the_editor(browser, online, output_dir, executor):
    with editor_session(browser, online(executor).url, output_dir, f"sample-table-and-plot-{executor}") as ui:
        _sample_table_and_plot(ui)


def _sample_table_and_plot(ui):
    page = ui.page
    ui.open_app("#/flow/pyflow.samples.table_and_plot")
    expect(ui.nodes()).to_have_count(4)
    page.locator("#btn-run").click()
    for node_id in ("table", "summary", "plot"):
        expect(ui.node(node_id)).to_have_attribute("data-status", "success", timeout=300_000)  # imports take long on a busy machine
    expect(ui.node("table").locator(".node-artifact-summary")).to_have_text("DataFrame 12 x 4")
    thumbnail = ui.node("plot").locator(".node-thumbnail")
    page.wait_for_function("img => img.complete && img.naturalWidth === 256", arg=thumbnail.element_handle())
    ui.select_node("plot")
    image = page.locator("#inspector .artifact-image")
    page.wait_for_function("img => img.complete && img.naturalWidth === 600", arg=image.element_handle())
    ui.select_node("summary")
    expect(page.locator("#inspector table.artifact-table th").first).to_have_text("statistic")
    expect(page.locator("#inspector table.artifact-table tbody tr")).to_have_count(8)
    ui.screenshot("table-and-plot")
