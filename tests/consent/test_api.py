"""The consent API for partner systems."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent import identity, receipts
from consent.models import ConsentGrant, Customer, LedgerEntry
from partners.models import Partner, Scope
from tests.partners.test_api import assert_problem

EVIDENCE = {
    "channel": "checkout",
    "text_shown": "Share my purchase with the maker?",
    "collected_at": "2026-11-01T10:00:00Z",
}


@pytest.fixture
def shop(make_partner, issue_key):
    partner, admin = make_partner(kind=Partner.Kind.RETAILER)
    _, key = issue_key(partner, admin, scopes=[Scope.CONSENT_READ, Scope.CONSENT_WRITE])
    return partner, key


def body(**overrides):
    data = {
        "identifier": {"kind": "email", "value": "Alice@Example.org"},
        "purpose": "warranty",
        "evidence": EVIDENCE,
    }
    data.update(overrides)
    return data


def test_partner_records_a_consent_with_a_signed_receipt(shop, api):
    partner, key = shop
    response = api(key).post("/api/v1/consents", body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["grantee"] == partner.slug and data["source"] == "partner"
    assert data["categories"] == ["identity", "purchase", "warranty"]
    jwk = receipts.jwks()["keys"][0]
    assert receipts.verify_with_jwk(data["receipt"], jwk)
    assert "alice" not in response.content.decode().lower()  # no raw identifier comes back
    grant = ConsentGrant.objects.unscoped("test setup").get()
    assert grant.evidence["channel"] == "checkout" and grant.collected_by == partner


def test_raw_and_hashed_identifiers_name_the_same_customer(shop, api):
    _, key = shop
    first = api(key).post("/api/v1/consents", body(), format="json").json()
    hashed = {"kind": "email", "sha256": identity.prehash("alice@example.org")}
    second = api(key).post(
        "/api/v1/consents", body(identifier=hashed, purpose="loyalty"), format="json"
    )
    assert second.status_code == 201
    assert second.json()["customer"] == first["customer"]


def test_a_retailer_records_consent_given_to_a_manufacturer(shop, make_partner, api):
    _, key = shop
    maker, _ = make_partner(name="Maker Co")
    response = api(key).post("/api/v1/consents", body(grantee=maker.slug), format="json")
    assert response.status_code == 201 and response.json()["grantee"] == maker.slug
    assert_problem(
        api(key).post("/api/v1/consents", body(grantee="no-such-partner"), format="json"), 400
    )


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"purpose": "spying"}, "purpose"),
        ({"categories": ["dna"]}, "categories[0]"),
        ({"identifier": {"kind": "email", "value": "not-an-address"}}, "identifier"),
        ({"identifier": {"kind": "email", "sha256": "xyz"}}, "identifier"),
        ({"identifier": {"kind": "email", "value": "a@b.org", "sha256": "0" * 64}}, "identifier"),
        ({"identifier": {"kind": "fax", "value": "1"}}, "identifier.kind"),
        ({"evidence": {"channel": "x"}}, "evidence.text_shown"),
        ({"policy_version": 7}, "policy_version"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_consents_are_problems_and_store_nothing(shop, api, overrides, field):
    _, key = shop
    response = api(key).post("/api/v1/consents", body(**overrides), format="json")
    problem = assert_problem(response, 400, "validation")
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert (
        not ConsentGrant.objects.unscoped("test setup").exists()
        and not LedgerEntry.objects.exists()
    )


def test_duplicate_consent_is_409_and_stores_nothing(shop, api):
    _, key = shop
    assert api(key).post("/api/v1/consents", body(), format="json").status_code == 201
    before = (ConsentGrant.objects.unscoped("test setup").count(), LedgerEntry.objects.count())
    assert_problem(
        api(key).post("/api/v1/consents", body(), format="json"), 409, "duplicate_consent"
    )
    assert (
        ConsentGrant.objects.unscoped("test setup").count(),
        LedgerEntry.objects.count(),
    ) == before


def test_status_for_a_customer(shop, api):
    _, key = shop
    expires = (timezone.now() + timedelta(days=10)).isoformat()
    api(key).post("/api/v1/consents", body(expires_at=expires), format="json")
    status = (
        api(key)
        .get("/api/v1/consents/status", {"kind": "email", "value": "alice@example.org"})
        .json()
    )
    by_purpose = {row["purpose"]: row for row in status["purposes"]}
    assert by_purpose["warranty"]["granted"] and by_purpose["warranty"]["expires_at"]
    assert not by_purpose["marketing"]["granted"]
    unknown = (
        api(key)
        .get("/api/v1/consents/status", {"kind": "email", "value": "nobody@example.org"})
        .json()
    )
    assert unknown["customer"] is None and not any(row["granted"] for row in unknown["purposes"])
    assert_problem(api(key).get("/api/v1/consents/status", {"kind": "email", "value": "bad"}), 400)
    assert_problem(api(key).get("/api/v1/consents/status", {"kind": "email"}), 400)


def test_status_shows_only_the_callers_grants(shop, make_partner, issue_key, api):
    _, key = shop
    other, other_admin = make_partner()
    _, other_key = issue_key(other, other_admin, scopes=[Scope.CONSENT_READ])
    api(key).post("/api/v1/consents", body(), format="json")
    status = (
        api(other_key)
        .get("/api/v1/consents/status", {"kind": "email", "value": "alice@example.org"})
        .json()
    )
    assert not any(row["granted"] for row in status["purposes"])


def test_consents_list_detail_and_revoke_are_tenant_scoped(shop, make_partner, issue_key, api):
    _, key = shop
    other, other_admin = make_partner()
    _, other_key = issue_key(other, other_admin, scopes=[Scope.CONSENT_READ, Scope.CONSENT_WRITE])
    consent_id = api(key).post("/api/v1/consents", body(), format="json").json()["id"]
    assert [c["id"] for c in api(key).get("/api/v1/consents").json()["results"]] == [consent_id]
    assert api(other_key).get("/api/v1/consents").json()["results"] == []
    assert_problem(api(other_key).get(f"/api/v1/consents/{consent_id}"), 404)
    assert_problem(api(other_key).post(f"/api/v1/consents/{consent_id}/revoke"), 404)
    assert ConsentGrant.objects.unscoped("test setup").get().revoked_at is None
    revoked = api(key).post(f"/api/v1/consents/{consent_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert ConsentGrant.objects.unscoped("test setup").get().ended_by == "partner"


def test_writing_consent_needs_the_scope(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin, scopes=[Scope.CONSENT_READ])
    assert_problem(
        api(key).post("/api/v1/consents", body(), format="json"), 403, "insufficient_scope"
    )
    assert not Customer.objects.exists()


def test_catalogue_lists_purposes_with_policies(make_partner, issue_key, api):
    partner, admin = make_partner()
    _, key = issue_key(partner, admin, scopes=[Scope.PARTNER_READ])
    data = api(key).get("/api/v1/consents/catalogue").json()
    assert {p["key"] for p in data["purposes"]} >= {
        "warranty",
        "service",
        "loyalty",
        "product_improvement",
        "marketing",
    }
    assert {c["key"] for c in data["categories"]} >= {
        "identity",
        "purchase",
        "warranty",
        "service",
        "loyalty",
        "telemetry",
        "location",
    }


def test_public_receipt_keys_are_published(db, client):
    data = client.get("/.well-known/clearinghouse-receipt-keys.json").json()
    assert data["keys"][0]["crv"] == "Ed25519" and data["keys"][0]["kid"]
