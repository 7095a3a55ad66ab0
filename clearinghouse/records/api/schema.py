"""OpenAPI descriptions of records: one payload schema per kind, generated from the catalogue."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clearinghouse.common.api.fields import MomentField, StrictCharField
from clearinghouse.common.api.schema import GTIN_SCHEMA, SERIAL_SCHEMA
from consent.api.serializers import IDENTIFIER_SCHEMA
from partners.record_kinds import KINDS, shareable_fields

from ..ingest import EXTERNAL_ID_PATTERN

PRODUCT_SCHEMA = {
    "type": "object",
    "properties": {"gtin": GTIN_SCHEMA, "serial": SERIAL_SCHEMA},
    "required": ["gtin", "serial"],
    "additionalProperties": False,
}


def _record_schema(kind):
    schema = {
        "type": "object",
        "title": f"{kind.key} record",
        "description": f"{kind.description} Purpose: {kind.purpose}; category: {kind.category}; "
        f"product unit: {kind.unit}. Shareable fields: {', '.join(shareable_fields(kind.key))}.",
        "properties": {
            "external_id": {
                "type": "string",
                "pattern": f"^{EXTERNAL_ID_PATTERN}$",
                "description": "Your id: unique per partner, makes re-sending safe",
            },
            "kind": {"type": "string", "enum": [kind.key]},
            "occurred_at": {
                "type": "string",
                "format": "date-time",
                "description": "With a time zone; from 1900, and not in the future",
            },
            "customer": IDENTIFIER_SCHEMA,
            "payload": kind.json_schema(),
        },
        "required": ["external_id", "kind", "occurred_at", "customer"]
        + (["product"] if kind.unit == "required" else [])
        + (["payload"] if any(f.required for f in kind.fields) else []),
        "additionalProperties": False,
    }
    if kind.unit != "none":
        schema["properties"]["product"] = PRODUCT_SCHEMA
    return schema


RECORD_ONE_OF = {
    "oneOf": [_record_schema(k) for k in KINDS.values()],
    "discriminator": {"propertyName": "kind"},
}
INGEST_REQUEST = {
    "application/json": {
        "oneOf": [RECORD_ONE_OF, {"type": "array", "items": RECORD_ONE_OF, "maxItems": 10000}]
    },
    "application/x-ndjson": {"type": "string", "description": "One record (as above) per line"},
}


class PartnerRefSerializer(serializers.Serializer):
    name = StrictCharField()
    slug = StrictCharField()
    kind = StrictCharField()


class ProductSerializer(serializers.Serializer):
    gtin = StrictCharField()
    serial = StrictCharField()


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {"gtin": {"type": "string"}, "serial": {"type": "string"}},
        "required": ["gtin", "serial"],
    }
)
class NullableProduct(ProductSerializer):
    """The product of a record: null when the record is about no unit."""


class RecordSerializer(serializers.Serializer):
    """A record as you may see it: all of yours; of a counterpart's, what the clause shares."""

    ref = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=list(KINDS))
    recorded_by = PartnerRefSerializer()
    occurred_at = MomentField()
    own = serializers.BooleanField(help_text="true when you submitted it")
    external_id = StrictCharField(required=False, help_text="yours only")
    # Not allow_null: a field the clause does not share is left out rather than sent as null
    # (DRF turns a missing key into null for allow_null fields). A record about no unit has
    # ``null``, which the schema says (NullableProduct).
    product = NullableProduct(
        required=False,
        help_text="absent when not shared with you; null for a record about no unit",
    )
    customer = serializers.UUIDField(
        required=False, help_text="pseudonymous reference; absent when not shared with you"
    )
    payload = serializers.DictField()
    shared_for = serializers.ListField(
        child=StrictCharField(), help_text="purposes it is shared with you for"
    )
    received_at = MomentField(required=False)
    erased = serializers.BooleanField(required=False)


_PARTNER_REF = ("name", "slug", "kind")
_OPTIONAL = ("external_id", "product", "customer")


def datetime_text(value):
    """A DateTimeField's output: ISO 8601 in the current time zone, UTC written as Z."""
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def represent(item):
    """What ``RecordSerializer(item).data`` gives for a projected record (``visibility.project``),
    written out: a page of records would otherwise build a nested serializer per row, which cost
    more than the query. A key the projection left out stays out; ``None`` stays ``None``."""
    out = {
        "ref": str(item["ref"]),
        "kind": item["kind"],
        "recorded_by": {k: str(item["recorded_by"][k]) for k in _PARTNER_REF},
        "occurred_at": datetime_text(item["occurred_at"]),
        "own": bool(item["own"]),
    }
    for key in _OPTIONAL:
        if key in item:
            value = item[key]
            if value is None:
                out[key] = None
            elif key == "product":
                out[key] = {"gtin": str(value["gtin"]), "serial": str(value["serial"])}
            else:
                out[key] = str(value)
    out["payload"] = {str(k): v for k, v in item["payload"].items()}
    out["shared_for"] = [str(p) for p in item["shared_for"]]
    if "received_at" in item:
        value = item["received_at"]
        out["received_at"] = None if value is None else datetime_text(value)
    if "erased" in item:
        out["erased"] = None if item["erased"] is None else bool(item["erased"])
    return out


class RowErrorSerializer(serializers.Serializer):
    field = StrictCharField(allow_null=True)
    message = StrictCharField()


class RowResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = StrictCharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "existing", "rejected"])
    ref = serializers.UUIDField(required=False)
    errors = RowErrorSerializer(many=True, required=False)


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = RowResultSerializer(many=True)
