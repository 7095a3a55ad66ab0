"""Webhooks and Art. 19 notices in a real browser: an admin adds an endpoint, copies the secret,
sends a test event that a real receiver verifies; a customer sees who confirmed a withdrawal.
Both on a phone without sideways scrolling."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from consent import identity, notices, services
from consent.dashboard.views import SESSION_KEY, SESSION_UNTIL
from consent.models import RecipientNotice
from consent.services import Access
from partners import webhooks
from partners.models import Partner, WebhookDelivery
from tests.support.webhook_receiver import receiver_fixture  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-password-123"


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for()


def no_overflow(page):
    # Against the device's width: mobile emulation widens innerWidth to fit what overflows.
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_an_admin_adds_an_endpoint_and_a_test_event_arrives_signed(
    live_server, page, phone_page, screenshot, make_partner, receiver
):
    _, admin = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    sign_in(page, live_server, admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="Add an endpoint").click()
    page.get_by_label("Receiver address").fill(receiver.url)
    page.get_by_label("A record was shared with you").check()
    page.get_by_label("A customer withdrew a consent you received data under").check()
    page.get_by_role("button", name="Add the endpoint").click()
    secret = page.get_by_test_id("webhook-secret").inner_text().strip()
    screenshot(page, "webhook-secret")
    page.get_by_role("link", name="Done").click()

    page.get_by_role("button", name="Send a test event").click()
    page.get_by_text("A test event is on its way").wait_for()
    page.get_by_text("HTTP 200").first.wait_for()
    screenshot(page, "webhook-endpoint")
    (request,) = receiver.wait_for(1)
    assert request.json()["type"] == "ping"
    assert webhooks.verify_signature(
        secret=secret, header=request.headers["clearinghouse-signature"], body=request.body
    )

    delivery = WebhookDelivery.objects.unscoped("test setup").get()
    sign_in(phone_page, live_server, admin.email)
    for url in ["/portal/webhooks/", f"/portal/webhooks/deliveries/{delivery.pk}/"]:
        phone_page.goto(f"{live_server.url}{url}")
        assert no_overflow(phone_page), url
    screenshot(phone_page, "webhook-delivery-phone")


def test_a_customer_sees_which_recipients_confirmed_a_withdrawal(
    live_server, phone_page, screenshot, make_partner
):
    maker, _ = make_partner(name="Nordwind")
    shop, _ = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    customer = services.customer_resolve(
        identifier=identity.parse_identifier(kind="email", value="alice@example.org"), partner=shop
    )
    for partner, purpose in [(maker, "warranty"), (shop, "loyalty")]:
        grant = services.consent_grant(
            customer=customer, grantee=partner, purpose=purpose, source="customer"
        )
        services.access_record(
            partner=partner,
            accesses={customer.pk: Access(1, {purpose}, {"purchase"})},
            channel="api",
        )
        services.consent_revoke(grant=grant)  # notices follow on commit
    confirmed = RecipientNotice.objects.unscoped("test setup").get(partner=maker)
    notices.notice_acknowledge(
        notice=confirmed, via="api", at=confirmed.occurred_at + timedelta(minutes=3)
    )
    session = SessionStore()
    session[SESSION_KEY] = str(customer.pk)
    session[SESSION_UNTIL] = time.time() + 600
    session.save()
    phone_page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )
    phone_page.goto(f"{live_server.url}/me/consents/")
    phone_page.get_by_text("Nordwind confirmed at").wait_for()
    assert "(after 3 min)" in phone_page.get_by_text("Nordwind confirmed at").inner_text()
    phone_page.get_by_text("Brightmart has not confirmed yet (asked 1 time)").wait_for()
    screenshot(phone_page, "consent-withdrawal-recipients-phone")
    assert no_overflow(phone_page)
