import itertools
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from partners.models import Partner, Scope
from telemetry import services

GTIN = "04012345678901"
_seq = itertools.count(1)

SERVICE_TO_SHOP = {
    "kind": "service_request",
    "purpose": "service",
    "direction": "manufacturer_to_retailer",
    "fields": ["product", "issue", "status", "proactive", "reference"],
}
REGISTRATION_TO_SHOP = {
    "kind": "warranty_registration",
    "purpose": "warranty",
    "direction": "manufacturer_to_retailer",
    "fields": ["product", "warranty_months"],
}


class Fleet:
    def __init__(self, maker, maker_admin, shop, shop_admin, other, other_admin):
        self.maker, self.maker_admin = maker, maker_admin
        self.shop, self.shop_admin = shop, shop_admin
        self.other, self.other_admin = other, other_admin


@pytest.fixture
def fleet(make_partner):
    """A maker and a shop whose agreement shares registrations and service requests with the
    shop, plus a second maker that must never reach the first's devices."""
    from partners.agreements.services import agreement_countersign, agreement_propose

    maker, maker_admin = make_partner(name="Maker")
    shop, shop_admin = make_partner(kind=Partner.Kind.RETAILER, name="Shop")
    other, other_admin = make_partner(name="Other maker")
    version = agreement_propose(
        proposer=maker,
        counterpart=shop,
        actor=maker_admin,
        clauses=[REGISTRATION_TO_SHOP, SERVICE_TO_SHOP],
    )
    agreement_countersign(version=version, partner=shop, actor=shop_admin)
    return Fleet(maker, maker_admin, shop, shop_admin, other, other_admin)


@pytest.fixture
def keys(fleet, issue_key):
    scopes = [Scope.TELEMETRY_READ, Scope.TELEMETRY_WRITE, Scope.RECORDS_READ]
    return {
        "maker": issue_key(fleet.maker, fleet.maker_admin, scopes=scopes)[1],
        "other": issue_key(fleet.other, fleet.other_admin, scopes=scopes)[1],
        "shop": issue_key(fleet.shop, fleet.shop_admin, scopes=scopes)[1],
    }


def register(partner, *serials, model_name="DW-500", gtin=GTIN):
    return services.devices_register(
        partner=partner,
        rows=[{"serial": s, "gtin": gtin, "model_name": model_name} for s in serials],
    )


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def reading(device, metric, value, at):
    return {"device": device, "metric": metric, "value": value, "ts": at.isoformat()}


def ingest(partner, rows):
    return services.readings_ingest(partner=partner, rows=rows, max_rows=50000)


def post_readings(client, rows, fmt="json", **headers):
    if fmt == "json":
        body, ctype = orjson.dumps(rows), "application/json"
    else:
        body = b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in rows)
        ctype = "application/x-ndjson"
    return client.post("/api/v1/telemetry/readings", body, content_type=ctype, **headers)


def serial():
    return f"DEV-{next(_seq)}"
