"""Partner staff search a serial and see the merged timeline — in a real browser."""

import pytest

from clearinghouse.reconciliation.engine import reconcile_pair
from clearinghouse.records.services import records_ingest
from tests.records.conftest import consent, registration, sale

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_a_serial_and_see_the_merged_timeline(live_server, page, screenshot, pair):
    records_ingest(partner=pair.shop, rows=[sale("S-1")], max_rows=10)
    records_ingest(partner=pair.maker, rows=[registration("W-1")], max_rows=10)
    consent(pair.maker)
    consent(pair.shop)
    reconcile_pair(manufacturer=pair.maker, retailer=pair.shop)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(pair.maker_admin.email)
    page.get_by_label("Password").fill("a-long-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    page.get_by_label("Search a GTIN").fill("SN-1")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="SN-1").click()
    page.get_by_text("recorded by Shop").wait_for()
    events = page.locator("ol.timeline > li")
    assert events.count() == 2
    assert "Sale" in events.nth(0).inner_text() and "Warranty" in events.nth(1).inner_text()
    assert "49900" not in page.content()  # the price is not shared by the clause
    # Reconciliation matched the two: each names the other, and the link leads to it.
    assert "Matched" in events.nth(0).inner_text() and "Matched" in events.nth(1).inner_text()
    events.nth(0).get_by_role("link", name="Warranty registration of").click()
    assert page.url.endswith(f"#{events.nth(1).get_attribute('id')}")
    screenshot(page, "unit-timeline")
