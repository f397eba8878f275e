"""Browser tests: a real PyFlow server on a free port and Debian's chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
import urllib.request
from contextlib import ExitStack, contextmanager
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


def start_server(workdir: Path, executor: str) -> LiveServer:
    """A fresh server in `workdir` with the test nodespecs imported."""
    shutil.rmtree(workdir, ignore_errors=True)
    live = LiveServer(workdir, executor=executor)
    live.start()
    request = urllib.request.Request(live.url + "/api/repository/import?mode=merge", data=json.dumps(bundle()).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    except BaseException:
        live.stop()
        raise
    return live


@pytest.fixture(scope="session")
def server(output_dir):
    live = start_server(output_dir / "server", test_executor())
    yield live
    live.stop()


@pytest.fixture(scope="session")
def server_with(output_dir):
    """Start servers with other executors: server_with("none") (one per executor, for the session)."""
    started: dict[str, LiveServer] = {}

    def start(executor: str) -> LiveServer:
        if executor not in started:
            started[executor] = start_server(output_dir / f"server-{executor}", executor)
        return started[executor]

    yield start
    for live in started.values():
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


@contextmanager
def editor_session(browser, url: str, output_dir: Path, name: str):
    """A fresh browser context on the editor at `url`; fails if the page threw an uncaught error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    ui = Editor(page, url, output_dir, name)
    ui.open_app()
    try:
        yield ui
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def editor(browser, server, output_dir, request):
    with editor_session(browser, server.url, output_dir, request.node.name) as ui:
        yield ui


@pytest.fixture
def editor_on(browser, server_with, output_dir, request):
    """The editor against a server with the given executor: editor_on("unsafe-process")."""
    with ExitStack() as stack:
        yield lambda executor: stack.enter_context(
            editor_session(browser, server_with(executor).url, output_dir, f"{request.node.name}-{executor}"))
