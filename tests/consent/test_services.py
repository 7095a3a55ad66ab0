"""Consent grants, revocations, receipts, access logging, erasure and dashboard sign-in."""

from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidTag
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from consent import identity, receipts, selectors, services
from consent.keys import master_keyring
from consent.ledger import ledger_verify
from consent.models import (
    AccessLogEntry,
    ConsentGrant,
    Customer,
    CustomerKey,
    Identifier,
    LedgerEntry,
    MagicLink,
    Receipt,
)
from partners.models import Partner

EVIDENCE = {
    "channel": "checkout",
    "text_shown": "May we share…",
    "collected_at": "2026-01-01T10:00:00Z",
}


@pytest.fixture
def world(make_partner, make_customer):
    maker, _ = make_partner()
    shop, _ = make_partner(kind=Partner.Kind.RETAILER)
    customer = make_customer("alice@example.org", shop)
    return maker, shop, customer


def allows(partner, customer, purpose="service", category="service", at=None):
    return selectors.consent_allows(
        partner=partner, customer_id=customer.pk, purpose=purpose, category=category, at=at
    )


def test_default_deny(world):
    maker, shop, customer = world
    assert not allows(maker, customer) and not allows(shop, customer)


def test_grant_allows_exactly_its_partner_purpose_and_categories(world):
    maker, shop, customer = world
    services.consent_grant(
        customer=customer,
        grantee=maker,
        purpose="service",
        categories=["service", "telemetry"],
        source="customer",
    )
    assert allows(maker, customer, "service", "telemetry")
    assert not allows(maker, customer, "service", "purchase")  # category not granted
    assert not allows(maker, customer, "marketing", "service")  # other purpose
    assert not allows(shop, customer, "service", "telemetry")  # other partner


def test_revocation_takes_effect_on_the_next_check(world):
    maker, _, customer = world
    grant = services.consent_grant(
        customer=customer, grantee=maker, purpose="service", source="customer"
    )
    assert allows(maker, customer)
    services.consent_revoke(grant=grant)
    assert not allows(maker, customer)


def test_expiry_takes_effect_at_its_time(world):
    maker, _, customer = world
    expires = timezone.now() + timedelta(days=30)
    services.consent_grant(
        customer=customer, grantee=maker, purpose="service", source="customer", expires_at=expires
    )
    assert allows(maker, customer, at=expires - timedelta(seconds=1))
    assert not allows(maker, customer, at=expires)


def test_expiry_sweep_writes_one_ledger_entry_per_expired_grant(world):
    maker, _, customer = world
    grant = services.consent_grant(
        customer=customer,
        grantee=maker,
        purpose="service",
        source="customer",
        expires_at=timezone.now() + timedelta(days=1),
    )
    ConsentGrant.objects.unscoped("test setup").filter(pk=grant.pk).update(
        granted_at=timezone.now() - timedelta(days=3), expires_at=timezone.now() - timedelta(days=1)
    )
    assert services.consent_record_expiries() == 1
    assert services.consent_record_expiries() == 0
    assert LedgerEntry.objects.filter(kind="consent.expired", customer_ref=customer.pk).count() == 1


def test_identical_active_grant_is_a_duplicate_and_changes_nothing(world):
    maker, _, customer = world
    services.consent_grant(customer=customer, grantee=maker, purpose="service", source="customer")
    before = (
        ConsentGrant.objects.unscoped("test setup").count(),
        LedgerEntry.objects.count(),
        Receipt.objects.count(),
    )
    with pytest.raises(services.DuplicateGrant):
        services.consent_grant(
            customer=customer, grantee=maker, purpose="service", source="customer"
        )
    assert (
        ConsentGrant.objects.unscoped("test setup").count(),
        LedgerEntry.objects.count(),
        Receipt.objects.count(),
    ) == before


def test_a_different_grant_supersedes_the_open_one(world):
    maker, _, customer = world
    first = services.consent_grant(
        customer=customer,
        grantee=maker,
        purpose="service",
        categories=["service"],
        source="customer",
    )
    second = services.consent_grant(
        customer=customer,
        grantee=maker,
        purpose="service",
        categories=["service", "telemetry"],
        source="customer",
    )
    first.refresh_from_db()
    assert first.ended_by == ConsentGrant.Ended.SUPERSEDED and second.is_active()
    assert allows(maker, customer, "service", "telemetry")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"purpose": "spying"},
        {"categories": ["dna"]},
        {"policy_version": 99},
        {"expires_at": timezone.now() - timedelta(minutes=1)},
        {"source": "partner", "evidence": {"channel": "x"}},
    ],
)
def test_bad_grants_store_nothing(world, kwargs):
    maker, _, customer = world
    args = {
        "customer": customer,
        "grantee": maker,
        "purpose": "service",
        "source": "customer",
        **kwargs,
    }
    with pytest.raises(ValidationError):
        services.consent_grant(**args)
    assert (
        not ConsentGrant.objects.unscoped("test setup").exists()
        and not LedgerEntry.objects.exists()
    )


def test_no_consent_for_a_suspended_partner(world, operator):
    maker, _, customer = world
    from partners.services import partner_suspend

    partner_suspend(partner=maker, actor=operator)
    maker.refresh_from_db()
    with pytest.raises(ValidationError):
        services.consent_grant(
            customer=customer, grantee=maker, purpose="service", source="customer"
        )


def test_every_grant_and_revocation_has_a_verifying_receipt(world):
    maker, _, customer = world
    grant = services.consent_grant(
        customer=customer,
        grantee=maker,
        purpose="warranty",
        source="partner",
        collected_by=maker,
        evidence=EVIDENCE,
    )
    services.consent_revoke(grant=grant)
    issued = list(Receipt.objects.filter(customer=customer).order_by("issued_at"))
    assert [r.kind for r in issued] == ["grant", "revoke"]
    jwk = receipts.jwks()["keys"][0]
    for receipt in issued:
        document = receipts.receipt_document(receipt)
        assert receipts.verify_with_jwk(document, jwk)
        assert document["receipt"]["recipient"]["name"] == maker.name
        assert document["receipt"]["purpose"]["policy_version"] == 1
        tampered = {**document, "receipt": {**document["receipt"], "categories": ["location"]}}
        assert not receipts.verify_with_jwk(tampered, jwk)


def _read(partner, customer, request_id="req-1", records=7):
    services.access_record(
        partner=partner,
        channel="api",
        request_id=request_id,
        accesses={
            customer.pk: services.Access(
                record_count=records, purposes={"warranty"}, categories={"purchase"}
            )
        },
    )


def test_access_is_logged_once_per_customer_and_request(world, django_capture_on_commit_callbacks):
    maker, _, customer = world
    with django_capture_on_commit_callbacks(execute=True):  # the chaining task, eagerly
        _read(maker, customer)
    entry = AccessLogEntry.objects.get(customer=customer)
    assert entry.record_count == 7 and entry.partner == maker
    ledger = LedgerEntry.objects.get(kind="data.accessed")
    assert ledger.customer_ref == customer.pk and ledger.payload["records"] == 7
    assert entry.ledger_seq == ledger.seq
    assert ledger.payload["accessed_at"] == entry.accessed_at.isoformat()


def test_reads_reach_the_ledger_after_their_commit_once_each(world):
    maker, shop, customer = world
    _read(maker, customer, "req-1")
    _read(shop, customer, "req-2", records=2)
    # Written, not yet chained: a read does not wait for the ledger's lock.
    assert AccessLogEntry.objects.filter(ledger_seq__isnull=True).count() == 2
    assert not LedgerEntry.objects.filter(kind="data.accessed").exists()
    assert services.access_log_chain() == 2
    assert services.access_log_chain() == 0  # twice chains nothing twice
    chained = LedgerEntry.objects.filter(kind="data.accessed").order_by("seq")
    assert [e.payload["request"] for e in chained] == ["req-1", "req-2"]  # in the order read
    assert not AccessLogEntry.objects.filter(ledger_seq__isnull=True).exists()
    assert ledger_verify()[1] == []


def test_erasure_chains_the_customers_reads_before_deleting_them(world):
    maker, _, customer = world
    _read(maker, customer)
    services.customer_erase(customer=customer)
    assert not AccessLogEntry.objects.filter(customer=customer).exists()
    assert LedgerEntry.objects.filter(kind="data.accessed", customer_ref=customer.pk).exists()


def test_erasure_leaves_nothing_decryptable(world):
    maker, _shop, customer = world
    services.consent_grant(customer=customer, grantee=maker, purpose="service", source="customer")
    key_row = CustomerKey.objects.get(customer=customer)
    wrapped, version = bytes(key_row.wrapped), key_row.master_version
    ciphertexts = [
        bytes(c)
        for c in Identifier.objects.filter(customer=customer).values_list("ciphertext", flat=True)
    ]
    data_key = identity.unwrap_data_key(wrapped, customer.pk, version)

    receipt = services.customer_erase(customer=customer)

    customer.refresh_from_db()
    assert customer.is_erased
    assert not CustomerKey.objects.filter(customer=customer).exists()
    assert not Identifier.objects.filter(customer=customer).exists()
    assert not allows(maker, customer)
    # Nothing left in the database holds the key: no wrapped key of this customer anywhere, and
    # every remaining wrapped key fails to unwrap as this customer's.
    for other in CustomerKey.objects.all():
        with pytest.raises(InvalidTag):
            identity.unwrap_data_key(other.wrapped, customer.pk, other.master_version)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM consent_identifier WHERE ciphertext = ANY(%s)", [ciphertexts]
        )
        assert cursor.fetchone()[0] == 0
    # The final receipt is signed, names no identifier, and says what was erased.
    assert receipts.verify(receipt.payload, receipt.signature, receipt.key_id)
    assert receipt.payload["erased"]["identifiers"] == 1
    assert "alice" not in str(receipt.payload)
    assert LedgerEntry.objects.filter(kind="customer.erased", customer_ref=customer.pk).exists()
    assert ledger_verify()[1] == []
    assert data_key  # held only by this test: the database no longer can produce it
    assert master_keyring()  # the master key alone cannot help: the wrapped key is gone


def test_a_resubmitted_identifier_starts_a_new_subject_after_erasure(world, make_customer):
    _, shop, customer = world
    services.customer_erase(customer=customer)
    again = make_customer("alice@example.org", shop)
    assert again.pk != customer.pk and not again.is_erased


def test_erasing_twice_returns_the_same_receipt(world):
    _, _, customer = world
    first = services.customer_erase(customer=customer)
    assert services.customer_erase(customer=Customer.objects.get(pk=customer.pk)) == first


def test_no_consent_can_be_given_after_erasure(world):
    maker, _, customer = world
    services.customer_erase(customer=customer)
    with pytest.raises(ValidationError):
        services.consent_grant(
            customer=customer, grantee=maker, purpose="service", source="customer"
        )


# --- magic links ----------------------------------------------------------------------------------


def _link_token_from_outbox():
    return mail.outbox[-1].body.split("/me/link/")[1].split("/")[0]


def test_magic_link_signs_in_once(world, django_capture_on_commit_callbacks):
    _, _, customer = world
    with django_capture_on_commit_callbacks(execute=True):
        services.magic_link_request(email="ALICE@example.org", ip="10.0.0.1")
    assert mail.outbox[-1].to == ["alice@example.org"]
    token = _link_token_from_outbox()
    assert services.magic_link_consume(token=token) == customer
    assert services.magic_link_consume(token=token) is None  # single use


def test_unknown_address_gets_no_mail_and_no_error(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert services.magic_link_request(email="nobody@example.org", ip="10.0.0.1") is None
    assert mail.outbox == []


def test_expired_and_forged_links_are_refused(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        link = services.magic_link_request(email="alice@example.org", ip="10.0.0.1")
    token = _link_token_from_outbox()
    assert services.magic_link_consume(token=token[:-3] + "abc") is None
    MagicLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.magic_link_consume(token=token) is None


def test_magic_links_are_rate_limited_per_address_and_per_ip(world, settings):
    settings.MAGIC_LINKS_PER_ADDRESS_PER_HOUR = 2
    settings.MAGIC_LINKS_PER_IP_PER_HOUR = 3
    for _ in range(2):
        services.magic_link_request(email="alice@example.org", ip="10.0.0.1")
    with pytest.raises(services.RateLimited):
        services.magic_link_request(email="alice@example.org", ip="10.0.0.2")
    # Unknown addresses count too, so the limit reveals nothing about who is known.
    services.magic_link_request(email="nobody@example.org", ip="10.0.0.9")
    services.magic_link_request(email="nobody2@example.org", ip="10.0.0.9")
    services.magic_link_request(email="nobody3@example.org", ip="10.0.0.9")
    with pytest.raises(services.RateLimited):
        services.magic_link_request(email="nobody4@example.org", ip="10.0.0.9")
