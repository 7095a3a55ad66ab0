"""Shapes of the telemetry API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clearinghouse.common.api.fields import StrictCharField, StrictModelSerializer

from ..catalogue import METRICS
from ..models import Device, ServiceRule, ServiceSignal
from ..rules import CONDITIONS_SCHEMA


class DeviceSerializer(StrictModelSerializer):
    class Meta:
        model = Device
        fields = ["serial", "gtin", "model_name", "firmware", "registered_at", "last_seen_at"]


DEVICE_IN = {
    "type": "object",
    "properties": {
        "serial": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"},
        "gtin": {
            "type": "string",
            "pattern": "^[0-9]{8}([0-9]{4,6})?$",
            "description": "GTIN-8/12/13/14 with a valid check digit",
        },
        "model_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "firmware": {"type": "string", "maxLength": 50},
    },
    "required": ["serial", "gtin", "model_name"],
    "additionalProperties": False,
}
# POST /telemetry/devices takes one device or an array, and answers in kind.
ONE_OR_MANY_DEVICES_IN = {
    "oneOf": [DEVICE_IN, {"type": "array", "items": DEVICE_IN, "minItems": 1, "maxItems": 10000}]
}
ONE_OR_MANY_DEVICES = {
    "oneOf": [
        {"$ref": "#/components/schemas/Device"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Device"}},
    ]
}


READING_IN = {
    "type": "object",
    "properties": {
        "device": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "the device's serial number",
        },
        "ts": {"type": "string", "format": "date-time", "description": "ISO 8601 with a time zone"},
        "metric": {"type": "string", "enum": list(METRICS)},
        "value": {"type": "number"},
    },
    "required": ["device", "ts", "metric", "value"],
    "additionalProperties": False,
}
# The body is streamed, not parsed by a serializer: described here as media types.
READINGS_REQUEST = {
    # One reading is taken as a batch of one (the answer is the same summary).
    "application/json": {"oneOf": [READING_IN, {"type": "array", "items": READING_IN}]},
    "application/x-ndjson": {"type": "string", "description": "One reading (as above) per line"},
}


class ReadingErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    field = StrictCharField(allow_null=True)
    message = StrictCharField()


class ReadingResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = ReadingErrorSerializer(many=True)
    errors_truncated = serializers.BooleanField()


@extend_schema_field(CONDITIONS_SCHEMA)
class ConditionsField(serializers.JSONField):
    """A rule's conditions: JSON checked by ``rules.validate_conditions`` in the service."""


class RuleSerializer(StrictModelSerializer):
    conditions = ConditionsField()

    class Meta:
        model = ServiceRule
        fields = [
            "id",
            "model_name",
            "name",
            "issue",
            "prompt_text",
            "operator",
            "conditions",
            "active",
            "created_at",
        ]
        read_only_fields = ["id", "active", "created_at"]


class SignalSerializer(StrictModelSerializer):
    reference = serializers.SerializerMethodField()
    device = StrictCharField(source="device.serial")
    rule = StrictCharField(source="rule.name")
    service_request = serializers.UUIDField(source="service_request_ref", allow_null=True)

    class Meta:
        model = ServiceSignal
        fields = [
            "id",
            "reference",
            "device",
            "rule",
            "status",
            "opened_at",
            "status_changed_at",
            "evidence",
            "condition_cleared_at",
            "service_request",
        ]

    @extend_schema_field(StrictCharField())
    def get_reference(self, obj) -> str:
        return f"SIG-{obj.pk}"
