"""The one visibility decision: agreement clause AND customer consent, at read time."""

import pytest

from clearinghouse.records import visibility
from clearinghouse.records.services import records_ingest
from consent import services as consent_services
from consent.models import AccessLogEntry, LedgerEntry
from partners.agreements.services import (
    agreement_countersign,
    agreement_propose,
    agreement_suspend,
    agreement_terminate,
)

from .conftest import REGISTRATION_TO_SHOP, SALE_TO_MAKER, consent, registration, sale


def seen(partner):
    visible = visibility.visible_records(partner=partner)
    return {r["ref"]: r for r in visible.order_by("id").read(channel="test")}


def ingest(partner, *rows):
    return [r.ref for r in records_ingest(partner=partner, rows=list(rows), max_rows=100)]


def test_own_records_are_always_visible_in_full(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    record = seen(pair.shop)[ref]
    assert record["own"] and record["external_id"] == "S-1"
    assert record["payload"]["price_cents"] == 49900


def test_default_deny_without_consent(pair):
    ingest(pair.shop, sale("S-1"))
    assert seen(pair.maker) == {}


def test_clause_and_consent_share_exactly_the_clause_fields(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    consent(pair.maker)
    record = seen(pair.maker)[ref]
    assert not record["own"] and record["recorded_by"]["name"] == "Shop"
    assert set(record["payload"]) == {"channel"}  # not the price
    assert record["product"] == {"gtin": "04012345678901", "serial": "SN-1"}
    assert record["customer"]
    assert "external_id" not in record and "received_at" not in record
    assert record["shared_for"] == ["warranty"]


def test_revocation_hides_the_record_on_the_next_read(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    grant = consent(pair.maker)
    assert ref in seen(pair.maker)
    consent_services.consent_revoke(grant=grant)
    assert ref not in seen(pair.maker)


def test_consent_for_another_purpose_or_category_is_not_enough(pair):
    ingest(pair.shop, sale("S-1"))
    consent(pair.maker, purpose="loyalty")
    consent(pair.maker, purpose="warranty", categories=["warranty"])  # not "purchase"
    assert seen(pair.maker) == {}


def test_consent_to_someone_else_is_not_enough(pair, make_partner):
    ingest(pair.shop, sale("S-1"))
    other, _ = make_partner(name="Other maker")
    consent(other)
    assert seen(pair.maker) == {}


def test_kinds_without_a_clause_stay_private(pair):
    ingest(pair.shop, {**sale("R-1"), "kind": "return", "payload": {"reason": "broken"}})
    consent(pair.maker)
    assert seen(pair.maker) == {}


def test_direction_matters(pair):
    [sale_ref] = ingest(pair.shop, sale("S-1"))
    [reg_ref] = ingest(pair.maker, registration("W-1"))
    consent(pair.maker)
    consent(pair.shop, categories=["warranty"])
    assert set(seen(pair.maker)) == {sale_ref, reg_ref}
    shop_view = seen(pair.shop)
    assert set(shop_view) == {sale_ref, reg_ref}
    assert shop_view[reg_ref]["payload"] == {"warranty_months": 24}
    assert "customer" not in shop_view[reg_ref]  # not in the registration clause


def test_suspended_or_terminated_agreement_shares_nothing(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    consent(pair.maker)
    agreement_suspend(
        agreement=pair.agreement, partner=pair.maker, actor=pair.maker_admin, reason="audit"
    )
    assert ref not in seen(pair.maker)
    agreement_terminate(
        agreement=pair.agreement, partner=pair.shop, actor=pair.shop_admin, reason="end"
    )
    assert ref not in seen(pair.maker)


def test_a_pending_version_changes_nothing_until_countersigned(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    consent(pair.maker)
    narrower = {**SALE_TO_MAKER, "fields": ["product"]}
    version = agreement_propose(
        proposer=pair.shop,
        counterpart=pair.maker,
        actor=pair.shop_admin,
        clauses=[narrower, REGISTRATION_TO_SHOP],
    )
    assert "customer" in seen(pair.maker)[ref]
    agreement_countersign(version=version, partner=pair.maker, actor=pair.maker_admin)
    record = seen(pair.maker)[ref]
    assert "customer" not in record and record["payload"] == {}


def test_a_third_partner_sees_nothing(pair, make_partner):
    ingest(pair.shop, sale("S-1"))
    consent(pair.maker)
    third, _ = make_partner(name="Third")
    consent(third)
    assert seen(third) == {}


def test_erasure_tombstones_records(pair):
    [ref] = ingest(pair.shop, sale("S-1"))
    grant = consent(pair.maker)
    consent_services.customer_erase(customer=grant.customer)
    assert ref not in seen(pair.maker)
    own = seen(pair.shop)[ref]
    assert own["erased"] and own["payload"] == {} and own["customer"] is None


def test_counterpart_reads_are_logged_once_per_customer_and_request(
    pair, django_capture_on_commit_callbacks
):
    ingest(
        pair.shop,
        sale("S-1", serial="A"),
        sale("S-2", serial="B"),
        sale("S-3", email="bob@example.org"),
    )
    consent(pair.maker)
    consent(pair.maker, email="bob@example.org")
    seen(pair.shop)  # own records: no access entry
    assert not AccessLogEntry.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the ledger chaining, eagerly
        seen(pair.maker)
    entries = {e.customer_id: e for e in AccessLogEntry.objects.all()}
    assert sorted(e.record_count for e in entries.values()) == [1, 2]
    assert all(e.partner == pair.maker and e.purposes == ["warranty"] for e in entries.values())
    assert LedgerEntry.objects.filter(kind="data.accessed").count() == 2


def test_visibility_fails_closed_without_a_partner():
    from partners.tenancy import TenancyError

    with pytest.raises(TenancyError):
        visibility.visible_records(partner=None)
