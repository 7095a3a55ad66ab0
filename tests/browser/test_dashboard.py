"""A customer signs in with a magic link, withdraws a consent, downloads everything and erases
themself — in a real browser."""

import json
from pathlib import Path

import pytest

from consent import identity, selectors, services
from consent.models import Customer
from partners.models import Partner
from tests.browser.conftest import customer_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_revoke_export_erase(live_server, page, screenshot, make_partner):
    maker, _ = make_partner(name="Nordwind Appliances")
    shop, _ = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    customer = services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value="alice@example.org"),
        partner=shop,
        categories=["purchase", "loyalty"],
    )
    services.consent_grant(customer=customer, grantee=maker, purpose="service", source="customer")
    services.consent_grant(customer=customer, grantee=shop, purpose="loyalty", source="customer")

    customer_sign_in(page, live_server.url, "alice@example.org")
    screenshot(page, "dashboard-overview")

    page.get_by_role("link", name="My consents", exact=True).click()
    page.get_by_role("button", name="Withdraw Service and repairs from Nordwind Appliances").click()
    page.get_by_text("may no longer use your data").wait_for()
    # Nordwind stays listed, so the consent can be given again.
    page.get_by_role("button", name="Allow Service and repairs for Nordwind Appliances").wait_for()
    assert not selectors.consent_allows(
        partner=maker, customer_id=customer.pk, purpose="service", category="telemetry"
    )
    assert page.get_by_text("✓ verified").count() >= 3  # two grants and the withdrawal
    screenshot(page, "dashboard-consents")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["identifiers"][0]["value"] == "alice@example.org"
    assert {c["purpose"] for c in exported["consents"]} == {"service", "loyalty"}

    page.get_by_role("link", name="Erase me").click()
    screenshot(page, "dashboard-erase")
    page.get_by_label("Type ERASE to confirm").fill("ERASE")
    page.get_by_role("button", name="Erase me for good").click()
    page.get_by_role("heading", name="You are erased").wait_for()
    receipt = json.loads(page.get_by_test_id("erasure-receipt").inner_text())
    assert receipt["receipt"]["kind"] == "erasure" and receipt["signature"]
    screenshot(page, "dashboard-erased")
    assert Customer.objects.get(pk=customer.pk).is_erased
