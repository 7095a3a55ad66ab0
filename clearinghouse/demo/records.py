"""The demo's records: Brightmart sells Nordwind appliances, Nordwind registers their warranties,
service and loyalty events on both sides — and a few that do not line up, for reconciliation."""

import random
from datetime import timedelta

from django.utils import timezone

from clearinghouse.reconciliation.models import WarrantyTerms
from clearinghouse.reconciliation.services import warranty_terms_set
from clearinghouse.records.gtin import check_digit
from clearinghouse.records.services import records_ingest
from consent.identity import parse_identifier, prehash
from consent.selectors import customer_by_identifier, open_grant
from consent.services import consent_grant

MODELS = {
    "dishwasher": "401234500001",
    "washer": "401234500002",
    "dryer": "401234500003",
}


# The maker's warranty per model: claims on units registered without a period use these.
WARRANTY_MONTHS = {"dishwasher": 24, "washer": 36, "dryer": 24}


def gtin(model):
    body = MODELS[model]
    return body + check_digit(body)


def unit(model, n):
    return {"gtin": gtin(model), "serial": f"NW-{model[:2].upper()}-{n:05d}"}


def _iso(moment):
    return moment.isoformat()


def load(partners, customers, step, bulk_units=300):
    """Idempotent: records carry fixed external ids, so a reload answers 'existing'."""
    maker, shop = partners["maker"], partners["shop"]
    for model, months in WARRANTY_MONTHS.items():
        if not WarrantyTerms.objects.for_partner(maker).filter(gtin=gtin(model)).exists():
            warranty_terms_set(
                manufacturer=maker, gtin=gtin(model), model_name=model, warranty_months=months
            )
    step(f"{maker.name}: warranty terms of {len(WARRANTY_MONTHS)} product models")
    rng = random.Random(7)
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    shop_rows, maker_rows = [], []
    emails = list(customers)
    story = {
        "alice@example.org": ("dishwasher", 1),
        "bob@example.org": ("washer", 2),
        "chiara@example.org": ("dryer", 3),
        "dmitri@example.org": ("dishwasher", 4),
        "emma@example.org": ("washer", 5),
    }
    for email, (model, n) in story.items():
        if email not in emails:
            continue
        sold = now - timedelta(days=200 - n * 20)
        who = {"kind": "email", "value": email}
        shop_rows.append(
            {
                "external_id": f"BM-SALE-{n:05d}",
                "kind": "sale",
                "occurred_at": _iso(sold),
                "customer": who,
                "product": unit(model, n),
                "payload": {
                    "price_cents": 64900 + n * 1000,
                    "currency": "EUR",
                    "channel": "store",
                    "store": "Berlin Mitte",
                },
            }
        )
        shop_rows.append(
            {
                "external_id": f"BM-LOY-{n:05d}",
                "kind": "loyalty_accrual",
                "occurred_at": _iso(sold),
                "customer": who,
                "product": unit(model, n),
                "payload": {
                    "points": 649 + n * 10,
                    "programme": "Brightmart Stars",
                    "sale_reference": f"BM-SALE-{n:05d}",
                    "reason": "purchase",
                },
            }
        )
        if n != 3:  # Chiara never registered her dryer: a sale with no registration
            registered = sold + timedelta(days=2 if n != 4 else 45)  # Dmitri's dates disagree
            maker_rows.append(
                {
                    "external_id": f"NW-REG-{n:05d}",
                    "kind": "warranty_registration",
                    "occurred_at": _iso(registered),
                    "customer": {"kind": "email", "sha256": prehash(email)},
                    "product": unit(model, n),
                    "payload": {
                        "warranty_months": 24,
                        # Dmitri gave a purchase date six weeks off.
                        "purchase_date": (sold - timedelta(days=42 if n == 4 else 0))
                        .date()
                        .isoformat(),
                        "registered_via": "app",
                    },
                }
            )
    # Alice's dishwasher: a service story across both parties.
    alice = {"kind": "email", "value": "alice@example.org"}
    t = now - timedelta(days=30)
    shop_rows.append(
        {
            "external_id": "BM-SR-00001",
            "kind": "service_request",
            "occurred_at": _iso(t),
            "customer": alice,
            "product": unit("dishwasher", 1),
            "payload": {
                "issue": "Water stays in the tub",
                "status": "open",
                "reference": "CASE-1001",
            },
        }
    )
    maker_rows.append(
        {
            "external_id": "NW-SV-00001",
            "kind": "service_visit",
            "occurred_at": _iso(t + timedelta(days=3)),
            "customer": {"kind": "email", "value": "alice@example.org"},
            "product": unit("dishwasher", 1),
            "payload": {
                "reference": "CASE-1001",
                "outcome": "parts_ordered",
                "technician": "J. Weber",
            },
        }
    )
    maker_rows.append(
        {
            "external_id": "NW-SC-00001",
            "kind": "service_completion",
            "occurred_at": _iso(t + timedelta(days=8)),
            "customer": {"kind": "email", "value": "alice@example.org"},
            "product": unit("dishwasher", 1),
            "payload": {
                "reference": "CASE-1001",
                "resolution": "Drain pump replaced",
                "parts_replaced": ["drain pump"],
            },
        }
    )
    # Bob returned his washer, but his points were never reversed.
    bob = {"kind": "email", "value": "bob@example.org"}
    shop_rows.append(
        {
            "external_id": "BM-RET-00002",
            "kind": "return",
            "occurred_at": _iso(now - timedelta(days=150)),
            "customer": bob,
            "product": unit("washer", 2),
            "payload": {
                "reason": "Too loud",
                "refund_cents": 66900,
                "sale_reference": "BM-SALE-00002",
            },
        }
    )
    # A larger population of customers and units, most of it consistent.
    for i in range(bulk_units):
        n = 1000 + i
        model = rng.choice(list(MODELS))
        email = f"customer{i:04d}@example.net"
        sold = now - timedelta(days=rng.randint(10, 700), hours=rng.randint(0, 23))
        who = {"kind": "email", "value": email}
        shop_rows.append(
            {
                "external_id": f"BM-SALE-{n:05d}",
                "kind": "sale",
                "occurred_at": _iso(sold),
                "customer": who,
                "product": unit(model, n),
                "payload": {
                    "price_cents": rng.randint(399, 1299) * 100,
                    "currency": "EUR",
                    "channel": rng.choice(["store", "online"]),
                },
            }
        )
        if rng.random() < 0.9:
            maker_rows.append(
                {
                    "external_id": f"NW-REG-{n:05d}",
                    "kind": "warranty_registration",
                    "occurred_at": _iso(sold + timedelta(days=rng.randint(0, 5))),
                    "customer": who,
                    "product": unit(model, n),
                    "payload": {
                        "warranty_months": 24,
                        "registered_via": rng.choice(["app", "web"]),
                    },
                }
            )
        if rng.random() < 0.1:
            maker_rows.append(
                {
                    "external_id": f"NW-CLAIM-{n:05d}",
                    "kind": "warranty_claim",
                    "occurred_at": _iso(min(now, sold + timedelta(days=rng.randint(30, 900)))),
                    "customer": who,
                    "product": unit(model, n),
                    "payload": {
                        "fault": rng.choice(["pump", "door seal", "heater"]),
                        "status": "submitted",
                    },
                }
            )
    for partner, rows in ((shop, shop_rows), (maker, maker_rows)):
        results = records_ingest(partner=partner, rows=rows, max_rows=len(rows))
        created = sum(1 for r in results if r.status == "created")
        # A reload on another day computes other dates: the records already there are kept.
        rejected = [
            r
            for r in results
            if r.status == "rejected" and not any("already used" in e["message"] for e in r.errors)
        ]
        if rejected:
            raise RuntimeError(f"demo record rejected: {rejected[0].as_dict()}")
        step(f"{partner.name}: {created} new records ({len(rows)} in the demo)")
    _bulk_consents(partners, bulk_units, rng, step)


def _bulk_consents(partners, bulk_units, rng, step):
    """Most bulk customers agreed at the till to share their purchase and warranty data."""
    maker, shop = partners["maker"], partners["shop"]
    evidence = {
        "channel": "checkout",
        "text_shown": "Share this purchase with the manufacturer for your warranty?",
        "collected_at": timezone.now().isoformat(),
    }
    granted = 0
    for i in range(bulk_units):
        if rng.random() >= 0.7:
            continue
        customer = customer_by_identifier(
            parse_identifier(kind="email", value=f"customer{i:04d}@example.net")
        )
        for grantee in (maker, shop):
            if customer is None or open_grant(
                customer=customer, grantee=grantee, purpose="warranty"
            ):
                continue
            consent_grant(
                customer=customer,
                grantee=grantee,
                purpose="warranty",
                source="partner",
                collected_by=shop,
                evidence=evidence,
            )
            granted += 1
    step(f"{granted} new warranty consents collected at the till")
