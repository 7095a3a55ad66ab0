"""The pair of the reconciliation tests: a wide agreement, and helpers to record and run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clearinghouse.reconciliation.engine import reconcile_pair
from clearinghouse.records.services import records_ingest
from partners.agreements.services import agreement_countersign, agreement_propose
from tests.records.conftest import consent

M2R, R2M = "manufacturer_to_retailer", "retailer_to_manufacturer"
WIDE = [
    {"kind": "sale", "purpose": "warranty", "direction": R2M, "fields": ["product", "customer"]},
    {"kind": "return", "purpose": "warranty", "direction": R2M, "fields": ["product", "sale_reference"]},
    {"kind": "warranty_registration", "purpose": "warranty", "direction": M2R, "fields": ["product", "purchase_date"]},
    {"kind": "warranty_claim", "purpose": "warranty", "direction": M2R, "fields": ["product", "fault"]},
    {"kind": "service_request", "purpose": "service", "direction": R2M, "fields": ["product", "status", "reference"]},
    {"kind": "service_completion", "purpose": "service", "direction": M2R, "fields": ["product", "reference"]},
    {"kind": "loyalty_accrual", "purpose": "loyalty", "direction": R2M, "fields": ["points", "sale_reference"]},
    {"kind": "loyalty_accrual", "purpose": "loyalty", "direction": M2R, "fields": ["points"]},
    {"kind": "return", "purpose": "loyalty", "direction": R2M, "fields": ["sale_reference"]},
    {"kind": "loyalty_redemption", "purpose": "loyalty", "direction": R2M, "fields": ["points"]},
]  # fmt: skip
ALL = ("warranty", "service", "loyalty")


def agree(pair, clauses=WIDE, purchase_points="one"):
    """The shop proposes these terms and the maker countersigns them: they are in force."""
    version = agreement_propose(
        proposer=pair.shop,
        counterpart=pair.maker,
        actor=pair.shop_admin,
        clauses=clauses,
        purchase_points=purchase_points,
    )
    agreement_countersign(version=version, partner=pair.maker, actor=pair.maker_admin)


@pytest.fixture
def world(pair):
    """The pair with a wide agreement, and Alice consenting everything to both."""
    agree(pair)
    pair.days = lambda n: (timezone.now() - timedelta(days=n)).isoformat()
    return pair


def give_consents(pair, email="alice@example.org"):
    for partner in (pair.maker, pair.shop):
        for purpose in ALL:
            consent(partner, email=email, purpose=purpose)


def put(partner, *rows):
    results = records_ingest(partner=partner, rows=list(rows), max_rows=1000)
    assert all(r.status != "rejected" for r in results), [r.as_dict() for r in results]
    return [r.ref for r in results]


def run(pair, **kw):
    result = reconcile_pair(manufacturer=pair.maker, retailer=pair.shop, **kw)
    assert result.status == "done", result.error
    return result
