"""Headless Chromium (Debian's package, never a downloaded browser) driven by Playwright."""

import os
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path():
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is missing: apt-get install chromium (make test installs it)")
    return path


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls happen
    # in the server thread, but the test body's own ORM calls would otherwise be refused.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def customer_sign_in(page, base_url, email):
    """Asks for a dashboard sign-in link on /me/ and follows it from the e-mail."""
    from django.core import mail

    page.goto(f"{base_url}/me/")
    page.get_by_label("Your e-mail address").fill(email)
    page.get_by_role("button", name="Send me a sign-in link").click()
    page.get_by_text("a link is on its way").wait_for()
    path = "/me/link/" + mail.outbox[-1].body.split("/me/link/")[1].split()[0]
    page.goto(f"{base_url}{path}")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Who holds my data").wait_for()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
