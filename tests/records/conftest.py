import itertools

import pytest

from partners.models import Partner

_seq = itertools.count(1)

GTIN = "04012345678901"  # valid check digit


def sale(external_id=None, email="alice@example.org", serial="SN-1", **overrides):
    row = {
        "external_id": external_id or f"S-{next(_seq)}",
        "kind": "sale",
        "occurred_at": "2026-10-01T12:00:00Z",
        "customer": {"kind": "email", "value": email},
        "product": {"gtin": GTIN, "serial": serial},
        "payload": {"price_cents": 49900, "currency": "EUR", "channel": "store"},
    }
    row.update(overrides)
    return row


def registration(external_id=None, email="alice@example.org", serial="SN-1", **overrides):
    row = {
        "external_id": external_id or f"W-{next(_seq)}",
        "kind": "warranty_registration",
        "occurred_at": "2026-10-03T09:00:00Z",
        "customer": {"kind": "email", "value": email},
        "product": {"gtin": GTIN, "serial": serial},
        "payload": {"warranty_months": 24, "purchase_date": "2026-10-01"},
    }
    row.update(overrides)
    return row


SALE_TO_MAKER = {
    "kind": "sale",
    "purpose": "warranty",
    "direction": "retailer_to_manufacturer",
    "fields": ["product", "customer", "channel"],
}
REGISTRATION_TO_SHOP = {
    "kind": "warranty_registration",
    "purpose": "warranty",
    "direction": "manufacturer_to_retailer",
    "fields": ["product", "warranty_months"],
}


@pytest.fixture
def pair(make_partner):
    """A manufacturer and a retailer with an active agreement: the retailer shares sales for
    warranty (product, customer, channel), the maker shares registrations (product, months)."""
    from partners.agreements.services import agreement_countersign, agreement_propose

    maker, maker_admin = make_partner(name="Maker")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop")
    version = agreement_propose(
        proposer=shop,
        counterpart=maker,
        actor=shop_admin,
        clauses=[SALE_TO_MAKER, REGISTRATION_TO_SHOP],
    )
    agreement_countersign(version=version, partner=maker, actor=maker_admin)
    return Pair(maker, maker_admin, shop, shop_admin, version.agreement)


class Pair:
    def __init__(self, maker, maker_admin, shop, shop_admin, agreement):
        self.maker, self.maker_admin, self.shop, self.shop_admin = (
            maker,
            maker_admin,
            shop,
            shop_admin,
        )
        self.agreement = agreement


def consent(partner, email="alice@example.org", purpose="warranty", categories=None):
    from consent import identity, services
    from consent.selectors import customer_by_identifier

    customer = customer_by_identifier(identity.parse_identifier(kind="email", value=email))
    return services.consent_grant(
        customer=customer,
        grantee=partner,
        purpose=purpose,
        categories=categories,
        source="customer",
    )
