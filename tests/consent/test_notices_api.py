"""The notices API: a partner lists the GDPR Art. 19 notices addressed to it and acknowledges
them; another partner's notice is a 404."""

import uuid

import pytest

from consent import services
from consent.models import LedgerEntry, RecipientNotice
from consent.services import Access
from partners.models import Partner, Scope
from tests.partners.test_api import assert_problem


@pytest.fixture
def setup(make_partner, make_customer, issue_key, django_capture_on_commit_callbacks):
    """Nordwind read Alice's and Bob's warranty data; both withdrew; Brightmart read Bob's
    loyalty data and Bob was then erased."""
    maker, maker_admin = make_partner(name="Nordwind")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Brightmart")
    _, maker_key = issue_key(maker, maker_admin, scopes=[Scope.CONSENT_READ, Scope.CONSENT_WRITE])
    _, shop_key = issue_key(shop, shop_admin, scopes=[Scope.CONSENT_READ, Scope.CONSENT_WRITE])
    alice = make_customer("alice@example.org", shop)
    bob = make_customer("bob@example.org", shop)
    for customer in (alice, bob):
        the_grant = services.consent_grant(
            customer=customer, grantee=maker, purpose="warranty", source="customer"
        )
        services.access_record(
            partner=maker,
            accesses={customer.pk: Access(1, {"warranty"}, {"purchase"})},
            channel="api",
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.consent_revoke(grant=the_grant)
    services.access_record(
        partner=shop, accesses={bob.pk: Access(1, {"loyalty"}, {"loyalty"})}, channel="portal"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.customer_erase(customer=bob)
    return maker, maker_key, shop, shop_key, alice, bob


def test_a_partner_lists_its_own_notices(setup, api):
    maker, maker_key, _, shop_key, alice, bob = setup
    body = api(maker_key).get("/api/v1/notices").json()
    rows = body["results"]
    assert {(r["kind"], r["customer"]) for r in rows} == {
        ("revocation", str(alice.pk)),
        ("revocation", str(bob.pk)),
        ("erasure", str(bob.pk)),
    }
    revocation = next(r for r in rows if r["customer"] == str(alice.pk))
    notice = RecipientNotice.objects.unscoped("test setup").get(partner=maker, customer=alice)
    assert revocation["consent"] == str(notice.grant_id) and revocation["purpose"] == "warranty"
    assert revocation["acknowledged_at"] is None and revocation["acknowledged_via"] == ""
    assert revocation["acknowledge_url"].endswith(f"/api/v1/notices/{notice.pk}/acknowledge")
    shop_rows = api(shop_key).get("/api/v1/notices").json()["results"]
    assert [(r["kind"], r["customer"]) for r in shop_rows] == [("erasure", str(bob.pk))]


def test_acknowledging_on_the_api_is_idempotent(setup, api):
    maker, maker_key, *_ = setup
    notice = RecipientNotice.objects.unscoped("test setup").filter(partner=maker).first()
    first = api(maker_key).post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert first.status_code == 200, first.content
    assert first.json()["acknowledged_via"] == "api" and first.json()["acknowledged_at"]
    second = api(maker_key).post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert second.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert LedgerEntry.objects.filter(kind="notice.acknowledged").count() == 1
    waiting = api(maker_key).get("/api/v1/notices", {"acknowledged": "false"}).json()["results"]
    done = api(maker_key).get("/api/v1/notices", {"acknowledged": "true"}).json()["results"]
    assert str(notice.pk) not in [r["id"] for r in waiting] and len(waiting) == 2
    assert [r["id"] for r in done] == [str(notice.pk)]


def test_another_partners_notice_is_404(setup, api):
    maker, _, _, shop_key, *_ = setup
    theirs = RecipientNotice.objects.unscoped("test setup").filter(partner=maker).first()
    for pk in [theirs.pk, uuid.uuid4()]:
        assert_problem(api(shop_key).get(f"/api/v1/notices/{pk}"), 404)
        assert_problem(api(shop_key).post(f"/api/v1/notices/{pk}/acknowledge"), 404)
    theirs.refresh_from_db()
    assert theirs.acknowledged_at is None


def test_scopes_and_bad_filters(setup, make_partner, issue_key, api):
    maker, maker_key, *_ = setup
    admin = maker.memberships.get().user
    _, read_only = issue_key(maker, admin, scopes=[Scope.CONSENT_READ])
    _, unrelated = issue_key(maker, admin, scopes=[Scope.RECORDS_READ])
    notice = RecipientNotice.objects.unscoped("test setup").filter(partner=maker).first()
    assert api(read_only).get("/api/v1/notices").status_code == 200
    assert_problem(
        api(read_only).post(f"/api/v1/notices/{notice.pk}/acknowledge"), 403, "insufficient_scope"
    )
    assert_problem(api(unrelated).get("/api/v1/notices"), 403, "insufficient_scope")
    assert_problem(api(maker_key).get("/api/v1/notices", {"acknowledged": "maybe"}), 400)
