"""A manufacturer's admin reviews the retailer's proposed change to their sharing agreement (the
demo's), reads the difference, countersigns it, and opens the clause editor — in a real browser."""

import pytest

from clearinghouse.demo import partners as demo
from partners.agreements import rules_toward
from partners.models import SharingAgreement

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, url, email):
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()


def test_review_the_diff_countersign_and_edit(live_server, page, phone_page, screenshot):
    partners, _ = demo.load(lambda text: None)
    demo.load_agreements(partners, lambda text: None)
    maker = partners["maker"]

    sign_in(page, live_server.url, "admin@nordwind.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Agreements").click()
    page.get_by_text("awaiting your countersignature").wait_for()
    screenshot(page, "agreements-list")
    page.get_by_role("link", name="Brightmart").click()
    page.get_by_role("heading", name="Version 2, awaiting your countersignature").wait_for()
    page.get_by_role("link", name="See what changes from version 1").click()
    page.get_by_role("heading", name="Changes from version 1 to version 2").wait_for()
    assert page.get_by_role("heading", name="Added clauses (1)").is_visible()
    assert page.get_by_role("heading", name="Removed clauses (1)").is_visible()
    assert page.get_by_role("heading", name="Changed clauses (1)").is_visible()
    screenshot(page, "agreement-diff")

    page.get_by_role("link", name="The agreement with Brightmart").click()
    page.get_by_role("button", name="Countersign version 2").click()
    page.get_by_text("You countersigned version 2").wait_for()
    screenshot(page, "agreement-detail")
    assert {r.kind for r in rules_toward(partner=maker)} >= {"feedback", "sale"}

    page.get_by_role("link", name="Propose a change").click()
    page.get_by_label("Purpose of Feedback: Brightmart shares with Nordwind Appliances (you)")
    one = page.get_by_role("radio", name="One programme credits a purchase, not both")
    assert one.is_checked()
    page.get_by_role("radio", name="Both programmes may credit the same purchase").check()
    screenshot(page, "agreement-editor")
    page.get_by_role("button", name="Propose these terms").click()
    page.get_by_text("Version 3 was proposed to Brightmart").wait_for()
    assert page.get_by_text("Both programmes may credit the same purchase (changed)").is_visible()

    agreement = SharingAgreement.objects.for_partner(maker).get()
    sign_in(phone_page, live_server.url, "admin@nordwind.example")
    for path in ("", "diff/?from=1&to=2", "propose/"):
        phone_page.goto(f"{live_server.url}/portal/agreements/{agreement.pk}/{path}")
        overflow = phone_page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
    screenshot(phone_page, "agreement-editor-phone")
