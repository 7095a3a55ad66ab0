"""The customer's privacy dashboard."""

import html
import json

import pytest
from django.core import mail

from consent import receipts, selectors, services
from consent.models import Customer
from partners.models import Partner


@pytest.fixture
def world(make_partner, make_customer):
    maker, _ = make_partner(name="Nordwind")
    shop, _ = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart <b>")
    customer = make_customer("alice@example.org", shop)
    make_customer("alice@example.org", maker, categories=("warranty",))
    return maker, shop, customer


def sign_in(client, capture, email="alice@example.org"):
    with capture(execute=True):
        response = client.post("/me/", {"email": email}, follow=True)
    assert b"a link is on its way" in response.content
    token = mail.outbox[-1].body.split("/me/link/")[1].split("/")[0]
    assert client.get(f"/me/link/{token}/").status_code == 200  # a GET does not use the link up
    return client.post(f"/me/link/{token}/", follow=True)


@pytest.fixture
def signed_in(world, client, django_capture_on_commit_callbacks):
    assert sign_in(client, django_capture_on_commit_callbacks).status_code == 200
    return world


def test_sign_in_answer_never_reveals_whether_an_address_is_known(world, client):
    known = client.post("/me/", {"email": "alice@example.org"}, follow=True)
    unknown = client.post("/me/", {"email": "stranger@example.org"}, follow=True)
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content


def test_bad_address_is_a_form_error(db, client):
    response = client.post("/me/", {"email": "<script>"})
    assert response.status_code == 400 and b"valid email" in response.content.lower()
    assert b"<script>" not in response.content


def test_signed_in_customer_sees_holders_and_purposes(signed_in, client):
    page = client.get("/me/overview/").content.decode()
    assert "Nordwind" in page and "Brightmart &lt;b&gt;" in page and "Brightmart <b>" not in page
    assert "Purchases" in page and "Warranty" in page


def test_pages_need_a_signed_in_customer(db, client):
    for url in ["/me/overview/", "/me/consents/", "/me/access/", "/me/export/", "/me/erase/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == "/me/"


def test_grant_and_revoke_in_one_click_each(signed_in, client):
    maker, _, customer = signed_in
    client.post("/me/consents/", {"partner": maker.pk, "purpose": "service", "action": "grant"})
    assert selectors.consent_allows(
        partner=maker, customer_id=customer.pk, purpose="service", category="telemetry"
    )
    page = client.get("/me/consents/").content.decode()
    assert "✓ verified" in page and "Withdraw" in page
    client.post("/me/consents/", {"partner": maker.pk, "purpose": "service", "action": "revoke"})
    assert not selectors.consent_allows(
        partner=maker, customer_id=customer.pk, purpose="service", category="telemetry"
    )


def test_consent_for_an_unrelated_partner_is_refused(signed_in, make_partner, client):
    stranger, _ = make_partner(name="Stranger")
    _, _, customer = signed_in
    response = client.post(
        "/me/consents/", {"partner": stranger.pk, "purpose": "marketing", "action": "grant"}
    )
    assert response.status_code == 404
    assert not customer.grants.exists()


def test_receipts_download_and_verify(signed_in, client):
    maker, _, customer = signed_in
    client.post("/me/consents/", {"partner": maker.pk, "purpose": "warranty", "action": "grant"})
    receipt = customer.receipts.get()
    document = client.get(f"/me/receipts/{receipt.pk}/").json()
    keys = client.get("/.well-known/clearinghouse-receipt-keys.json").json()["keys"]
    assert receipts.verify_with_jwk(document, next(k for k in keys if k["kid"] == document["kid"]))


def test_another_customers_receipt_is_404(signed_in, make_customer, client):
    _maker, shop, _ = signed_in
    other = make_customer("bob@example.org", shop)
    grant = services.consent_grant(
        customer=other, grantee=shop, purpose="loyalty", source="customer"
    )
    assert client.get(f"/me/receipts/{grant.receipt.pk}/").status_code == 404


def test_access_log_shows_partner_reads(signed_in, client):
    maker, _, customer = signed_in
    services.access_record(
        partner=maker,
        channel="api",
        accesses={
            customer.pk: services.Access(
                record_count=3, purposes={"warranty"}, categories={"purchase"}
            )
        },
    )
    page = client.get("/me/access/").content.decode()
    assert "Nordwind" in page and "3 records" in page


def test_export_holds_everything_in_one_json_document(signed_in, client):
    maker, _, customer = signed_in
    client.post("/me/consents/", {"partner": maker.pk, "purpose": "service", "action": "grant"})
    services.access_record(
        partner=maker,
        channel="api",
        accesses={
            customer.pk: services.Access(
                record_count=1, purposes={"service"}, categories={"service"}
            )
        },
    )
    response = client.get("/me/export/")
    assert response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    assert data["identifiers"] == [
        {"kind": "email", "value": "alice@example.org", "namespace": None}
    ]
    assert data["consents"][0]["purpose"] == "service"
    assert data["receipts"][0]["signature"]
    assert data["access_log"][0]["records"] == 1
    assert {h["partner"] for h in data["holders"]} == {"Nordwind", "Brightmart <b>"}
    assert "records" in data


def test_erasure_needs_confirmation_then_ends_everything(
    signed_in, client, django_capture_on_commit_callbacks
):
    _, _, customer = signed_in
    response = client.post("/me/erase/", {"confirm": "yes"})
    assert response.status_code == 400 and not Customer.objects.get(pk=customer.pk).is_erased
    response = client.post("/me/erase/", {"confirm": "ERASE"})
    assert response.status_code == 200
    assert b"erasure-receipt" in response.content
    assert Customer.objects.get(pk=customer.pk).is_erased
    assert client.get("/me/overview/").status_code == 302  # signed out
    sent = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"email": "alice@example.org"})
    assert len(mail.outbox) == sent  # the address is no longer known: no link is sent


def test_the_erasure_page_and_its_signed_receipt_say_the_same(signed_in, client):
    """Nobody read Alice's data: the page says nobody needed to be told, and so does the signed
    receipt; both name, apart, the partners whose consents ended."""
    maker, shop, customer = signed_in
    for partner in (maker, shop):
        services.consent_grant(
            customer=customer, grantee=partner, purpose="warranty", source="customer"
        )
    page = client.post("/me/erase/", {"confirm": "ERASE"}).content.decode()
    shown = page.split('data-testid="erasure-receipt">')[1].split("</pre>")[0]
    document = json.loads(html.unescape(shown))
    assert receipts.verify(document["receipt"], document["signature"], document["kid"])
    assert document["receipt"]["recipients_told"] == []
    assert "nobody else needed to be told" in page
    assert document["receipt"]["consents_ended_with"] == ["Brightmart <b>", "Nordwind"]
    assert "Your consents to Brightmart &lt;b&gt;, Nordwind ended" in page


def test_session_ends_when_the_customer_is_erased_elsewhere(signed_in, client):
    _, _, customer = signed_in
    services.customer_erase(customer=customer)
    assert client.get("/me/overview/").status_code == 302
