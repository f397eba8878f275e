"""Browser tests: a real PyFlow server on a free port and Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import ROOT, LiveServer, test_executor

from .editor import CHROMIUM, CHROMIUM_ARGS, Editor
from .fixtures import bundle

OUTPUT = ROOT / "test-output" / "browser"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def server(output_dir):
    workdir = output_dir / "server"
    shutil.rmtree(workdir, ignore_errors=True)
    live = LiveServer(workdir, executor=test_executor())
    live.start()
    request = urllib.request.Request(live.url + "/api/repository/import?mode=merge", data=json.dumps(bundle()).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    yield live
    live.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test-browser installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def editor(browser, server, output_dir, request):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    ui = Editor(page, server.url, output_dir, request.node.name)
    ui.open_app()
    yield ui
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
