"""The editor on a server that asks for its access token: the login page (a plain form), the HttpOnly
session cookie it gives, and the editor's own requests with it: writes without a body (cancel), the
run's event stream, reads of flows and nodespecs."""

from __future__ import annotations

import re
import shutil

import pytest
import requests
from playwright.sync_api import expect

from tests.support.server import LiveServer, test_executor

from .editor import Editor
from .fixtures import bundle


@pytest.fixture(scope="module")
def locked(output_dir):
    workdir = output_dir / "server-locked"
    shutil.rmtree(workdir, ignore_errors=True)
    with LiveServer(workdir, executor=test_executor(), args=("--require-token",)) as live:
        imported = requests.post(live.url + "/api/repository/import?mode=merge", json=bundle(),
                                 headers=live.headers(), timeout=30)
        assert imported.status_code == 200, imported.text
        yield live


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_the_login_form_gives_an_httponly_session_the_editor_runs_and_cancels_with(page, locked, output_dir):
    page.goto(locked.url + "/")
    form = page.locator('form[action="/login"]')
    expect(form).to_be_visible()
    form.locator('input[name="token"]').fill("not the token")
    form.locator('button[type="submit"]').click()
    expect(page.locator(".error")).to_have_text("Wrong token.")
    page.locator('input[name="token"]').fill(locked.token)
    page.locator('button[type="submit"]').click()
    expect(page.locator("body.ready")).to_have_count(1)
    assert page.url == locked.url + "/"
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and locked.token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # page scripts cannot read the session

    ui = Editor(page, locked.url, output_dir, "token-login")
    ui.new_flow("Slow", "browser.locked.slow")
    wait = ui.drag_spec_to_canvas("uitest.slow.wait", 300, 220)
    ui.mark_end(wait)
    page.locator("#btn-run").click()  # a JSON write, then the run's event stream with the cookie
    expect(ui.node(wait)).to_have_attribute("data-status", "running")
    page.locator("#btn-cancel").click()  # a write without a body
    expect(ui.toast(re.compile("Run cancelled"))).to_be_visible(timeout=20_000)
    expect(ui.node(wait)).to_have_attribute("data-status", "cancelled")


def test_the_printed_address_logs_in_and_leaves_the_address_bar(page, locked):
    page.goto(f"{locked.url}/?token={locked.token}")
    expect(page.locator("body.ready")).to_have_count(1)
    assert page.url == locked.url + "/" and locked.token not in page.url
    expect(page.locator('.flow-item[data-flow="pyflow.samples.arithmetic"]')).to_be_visible()
