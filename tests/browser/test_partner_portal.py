"""A partner registers, is approved, signs in, issues a key and uses it — in a real browser."""

import json
import urllib.request

import pytest

from partners import services
from partners.models import Partner

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-password-123"


def test_register_approve_sign_in_and_issue_a_key(
    live_server, page, phone_page, screenshot, operator
):
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Register").first.click()
    page.get_by_label("Organisation name").fill("Brightmart")
    page.get_by_label("Retailer").check()
    page.get_by_label("Organisation contact e-mail").fill("contact@brightmart.example")
    page.get_by_label("Your name").fill("Ada Admin")
    page.get_by_label("Your e-mail (you sign in with it)").fill("ada@brightmart.example")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.get_by_text("Waiting for approval").wait_for()
    screenshot(page, "partner-registered-pending")

    partner = Partner.objects.unscoped("test setup").get(name="Brightmart")
    services.partner_approve(partner=partner, actor=operator)

    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("ada@brightmart.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Manage staff").wait_for()
    screenshot(page, "partner-dashboard")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="Create a key").click()
    page.get_by_label("Name").fill("ERP")
    page.get_by_label("Read records and timelines").check()
    page.get_by_role("button", name="Create the key").click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    screenshot(page, "partner-key-created")

    request = urllib.request.Request(
        f"{live_server.url}/api/v1/partners/me", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request) as response:
        body = json.load(response)
    assert body["partner"]["name"] == "Brightmart"
    assert set(body["scopes"]) == {"partner:read", "records:read"}

    # The same portal on a phone: the navigation wraps, nothing overflows sideways.
    phone_page.goto(f"{live_server.url}/accounts/login/")
    phone_page.get_by_label("Email").fill("ada@brightmart.example")
    phone_page.get_by_label("Password").fill(PASSWORD)
    phone_page.get_by_role("button", name="Sign in").click()
    phone_page.goto(f"{live_server.url}/portal/credentials/")
    overflow = phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    screenshot(phone_page, "partner-keys-phone")
    assert overflow <= 0
