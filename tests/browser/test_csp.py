"""The key pages of the portal, the dashboard, the operator admin and the API docs load and look
right under the strict Content-Security-Policy, with no violation reported — in a real browser."""

import pytest

from tests.browser.conftest import customer_sign_in
from tests.support.demo import load_small_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Reports every violation to the console, where the test collects it (Chromium logs its own
# "Refused to …" errors too).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""
BRAND_BLUE = "rgb(11, 92, 173)"


@pytest.fixture
def watched(page):
    """The page, and the list of console errors and page errors it reports."""
    errors = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda msg: (
            msg.type == "error" and errors.append(f"{msg.text} ({msg.location.get('url')})")
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def visit(page, errors, url, ready, name, screenshot):
    """Opens url, waits until `ready` (a locator factory) is visible, and asserts the page
    reported nothing and carries the policy."""
    response = page.goto(url)
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    try:
        ready(page).first.wait_for()
    finally:
        screenshot(page, f"csp-{name}")
        assert not errors, (url, errors)
    page.wait_for_load_state("networkidle")
    screenshot(page, f"csp-{name}")
    assert not errors, (url, errors)


def styled(page):
    """The site stylesheet applied: the header is brand blue."""
    return page.locator(".site-header").evaluate("e => getComputedStyle(e).backgroundColor")


def test_key_pages_load_without_csp_violations(live_server, watched, screenshot):
    page, errors = watched
    demo = load_small_demo()
    base = live_server.url

    visit(page, errors, f"{base}/", lambda p: p.locator(".site-header"), "home", screenshot)
    assert styled(page) == BRAND_BLUE
    visit(
        page,
        errors,
        f"{base}/api/docs/",
        lambda p: p.get_by_text("Clearinghouse API"),
        "api-docs",
        screenshot,
    )
    visit(
        page,
        errors,
        f"{base}/portal/register/",
        lambda p: p.get_by_label("Organisation name"),
        "register",
        screenshot,
    )

    visit(
        page,
        errors,
        f"{base}/accounts/login/",
        lambda p: p.get_by_label("Email"),
        "login",
        screenshot,
    )
    page.get_by_label("Email").fill("admin@nordwind.example")
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Records").first.wait_for()
    assert styled(page) == BRAND_BLUE
    portal = [
        ("portal-dashboard", "/portal/", lambda p: p.get_by_role("heading").first),
        ("portal-activity", "/portal/activity/", lambda p: p.locator("caption")),
        ("portal-records", "/portal/records/", lambda p: p.get_by_role("heading").first),
        (
            "portal-unit",
            "/portal/units/04012345000016/NW-DI-00001/",
            lambda p: p.get_by_text("NW-DI-00001"),
        ),
        ("portal-device", "/portal/devices/NW-DI-00001/", lambda p: p.locator("svg polyline")),
        ("portal-discrepancies", "/portal/discrepancies/", lambda p: p.locator("table")),
        ("portal-agreements", "/portal/agreements/", lambda p: p.locator("table")),
        (
            "portal-webhook-new",
            "/portal/webhooks/new/",
            lambda p: p.get_by_label("Receiver address"),
        ),
        ("portal-signals", "/portal/signals/", lambda p: p.get_by_role("heading").first),
    ]
    for name, path, ready in portal:
        visit(page, errors, f"{base}{path}", ready, name, screenshot)
    # What used to be inline style now comes from the stylesheet.
    page.goto(f"{base}/portal/activity/")
    assert page.locator("caption").evaluate("e => getComputedStyle(e).textAlign") == "left"
    # The chart's line is drawn with the stylesheet's stroke, not the default (none).
    page.goto(f"{base}/portal/devices/NW-DI-00001/")
    stroke = page.locator("svg polyline").first.evaluate("e => getComputedStyle(e).stroke")
    assert stroke not in ("", "none")
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"{base}/admin/login/")
    page.get_by_label("Email").fill("operator@clearinghouse.example")
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Log in").click()
    visit(
        page,
        errors,
        f"{base}/admin/partners/partner/",
        lambda p: p.get_by_role("link", name="Nordwind Appliances"),
        "admin-partners",
        screenshot,
    )

    visit(
        page,
        errors,
        f"{base}/me/",
        lambda p: p.get_by_label("Your e-mail address"),
        "me",
        screenshot,
    )
    customer_sign_in(page, base, "alice@example.org")
    for name, path, ready in [
        (
            "me-overview",
            "/me/overview/",
            lambda p: p.get_by_role("heading", name="Who holds my data"),
        ),
        ("me-consents", "/me/consents/", lambda p: p.get_by_role("button").first),
        ("me-access", "/me/access/", lambda p: p.get_by_role("heading").first),
    ]:
        visit(page, errors, f"{base}{path}", ready, name, screenshot)
    assert not errors, errors
