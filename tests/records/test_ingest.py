"""Ingest: per-row validation, idempotency, set-based storage — through the service."""

import pytest

from clearinghouse.records.ingest import BatchTooLarge
from clearinghouse.records.models import InteractionRecord
from clearinghouse.records.services import records_ingest
from consent import identity
from consent.models import Customer
from partners.models import Partner

from .conftest import sale


@pytest.fixture
def shop(make_partner):
    return make_partner(kind=Partner.Kind.RETAILER)[0]


def statuses(results):
    return [r.status for r in results]


def test_valid_rows_are_created_with_resolved_customers(shop):
    results = records_ingest(
        partner=shop, rows=[sale("S-1"), sale("S-2", email="BOB@example.org ")], max_rows=100
    )
    assert statuses(results) == ["created", "created"]
    records = InteractionRecord.objects.for_partner(shop).order_by("external_id")
    assert [r.gtin for r in records] == ["04012345678901"] * 2
    assert records[0].purpose == "warranty" and records[0].category == "purchase"
    assert Customer.objects.count() == 2


def test_replaying_a_batch_creates_nothing_and_answers_with_the_same_refs(shop):
    first = records_ingest(partner=shop, rows=[sale("S-1"), sale("S-2")], max_rows=100)
    again = records_ingest(partner=shop, rows=[sale("S-1"), sale("S-2")], max_rows=100)
    assert statuses(again) == ["existing", "existing"]
    assert [r.ref for r in first] == [r.ref for r in again]
    assert InteractionRecord.objects.unscoped("test setup").count() == 2


def test_same_external_id_with_other_content_is_rejected(shop):
    records_ingest(partner=shop, rows=[sale("S-1")], max_rows=100)
    changed = sale("S-1", payload={"price_cents": 1, "currency": "EUR"})
    [result] = records_ingest(partner=shop, rows=[changed], max_rows=100)
    assert result.status == "rejected" and "different content" in result.errors[0]["message"]


def test_external_ids_are_per_partner(shop, make_partner):
    other, _ = make_partner(kind=Partner.Kind.RETAILER)
    records_ingest(partner=shop, rows=[sale("S-1")], max_rows=100)
    assert statuses(records_ingest(partner=other, rows=[sale("S-1")], max_rows=100)) == ["created"]


@pytest.mark.parametrize(
    "row,field",
    [
        (sale(product={"gtin": "4012345678902", "serial": "X"}), "product.gtin"),
        (sale(kind="teleport"), "kind"),
        (sale(payload={"price_cents": "free"}), "payload.price_cents"),
        (sale(payload={"price_cents": 1, "colour": "red"}), "payload.colour"),
        (sale(payload={}), "payload.price_cents"),
        (sale(occurred_at="yesterday"), "occurred_at"),
        (sale(occurred_at="2026-10-01T12:00:00"), "occurred_at"),
        (sale(occurred_at="2999-01-01T00:00:00Z"), "occurred_at"),
        (sale(customer={"kind": "email", "value": "nope"}), "customer"),
        (sale(customer=None), "customer"),
        (sale(product=None), "product"),
        ({**sale(), "external_id": ""}, "external_id"),
        ({**sale(), "external_id": "has space"}, "external_id"),
        (sale(extra="x"), "extra"),
        (
            {
                "kind": "loyalty_redemption",
                "external_id": "L-1",
                "occurred_at": "2026-10-01T12:00:00Z",
                "customer": {"kind": "email", "value": "a@b.org"},
                "product": {"gtin": "4012345678901", "serial": "1"},
                "payload": {"points": 5},
            },
            "product",
        ),
        ("not an object", None),
    ],
)
def test_bad_rows_are_rejected_with_reasons_and_the_rest_accepted(shop, row, field):
    results = records_ingest(partner=shop, rows=[sale("OK-1"), row, sale("OK-2")], max_rows=100)
    assert statuses(results) == ["created", "rejected", "created"]
    assert field in {e["field"] for e in results[1].errors}
    assert set(
        InteractionRecord.objects.unscoped("test setup").values_list("external_id", flat=True)
    ) == {"OK-1", "OK-2"}


def test_duplicate_external_ids_in_one_batch(shop):
    results = records_ingest(partner=shop, rows=[sale("S-1"), sale("S-1")], max_rows=100)
    assert statuses(results) == ["created", "rejected"]
    assert "twice" in results[1].errors[0]["message"]
    assert InteractionRecord.objects.unscoped("test setup").count() == 1


def test_oversize_batch_stores_nothing(shop):
    with pytest.raises(BatchTooLarge):
        records_ingest(partner=shop, rows=[sale(f"S-{i}") for i in range(6)], max_rows=5)
    assert (
        not InteractionRecord.objects.unscoped("test setup").exists()
        and not Customer.objects.exists()
    )


def test_large_batches_are_stored_in_chunks(shop):
    rows = [sale(f"S-{i}", email=f"c{i % 700}@example.org", serial=f"SN-{i}") for i in range(4500)]
    results = records_ingest(partner=shop, rows=rows, max_rows=10000)
    assert statuses(results).count("created") == 4500
    assert Customer.objects.count() == 700


def test_prehashed_and_raw_customers_meet(shop, make_partner):
    maker, _ = make_partner()
    records_ingest(partner=shop, rows=[sale("S-1")], max_rows=10)
    hashed = {"kind": "email", "sha256": identity.prehash("alice@example.org")}
    records_ingest(partner=maker, rows=[sale("W-1", customer=hashed)], max_rows=10)
    assert (
        len(
            set(
                InteractionRecord.objects.unscoped("test setup").values_list(
                    "customer_id", flat=True
                )
            )
        )
        == 1
    )
