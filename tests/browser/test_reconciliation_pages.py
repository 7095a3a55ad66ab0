"""A manufacturer's admin sets the warranty terms of a product model and confirms a customer's
withdrawal on the Notices page — in a real browser, on a desktop and on a phone."""

import pytest

from clearinghouse.reconciliation.models import WarrantyTerms
from tests.support.demo import load_small_demo
from tests.support.notices import notice_for

from .test_agreements import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_warranty_terms_and_notices(live_server, page, phone_page, screenshot):
    demo = load_small_demo()
    maker = demo.partners["maker"]
    notice = notice_for(maker)

    sign_in(page, live_server.url, "admin@nordwind.example")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Discrepancies").click()
    page.get_by_role("link", name="Warranty terms of your product models").click()
    page.get_by_role("heading", name="Warranty terms", exact=True).wait_for()
    assert page.get_by_role("rowheader", name="washer", exact=True).is_visible()
    page.get_by_label("GTIN").fill("04012345000092")
    page.get_by_label("Product model").fill("Fridge 60")
    page.get_by_label("Warranty (months)").fill("60")
    page.get_by_role("button", name="Save the terms").click()
    page.get_by_text("Fridge 60: 60 months.").wait_for()
    screenshot(page, "warranty-terms")
    assert (
        WarrantyTerms.objects.unscoped("test setup")
        .filter(manufacturer=maker, model_name="Fridge 60")
        .exists()
    )

    nav.get_by_role("link", name="Notices").click()
    page.get_by_role("heading", name="To confirm (1)").wait_for()
    screenshot(page, "notices")
    page.get_by_role("button", name=f"Confirm notice {notice.pk}").click()
    page.get_by_text("Confirmed. The customer sees your confirmation.").wait_for()
    assert page.get_by_role("heading", name="To confirm (0)").is_visible()
    notice.refresh_from_db()
    assert notice.acknowledged_via == "portal"

    sign_in(phone_page, live_server.url, "admin@nordwind.example")
    for path in ("warranty-terms/", "notices/", "discrepancies/"):
        phone_page.goto(f"{live_server.url}/portal/{path}")
        overflow = phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
    screenshot(phone_page, "notices-phone")
