"""Shapes of the telemetry API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Device, ServiceRule, ServiceSignal


class DeviceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["serial", "gtin", "model_name", "firmware", "registered_at", "last_seen_at"]


class DeviceInSerializer(serializers.Serializer):
    serial = serializers.CharField(max_length=64)
    gtin = serializers.CharField()
    model_name = serializers.CharField(max_length=100)
    firmware = serializers.CharField(max_length=50, required=False)


class ReadingInSerializer(serializers.Serializer):
    device = serializers.CharField(help_text="the device's serial number")
    ts = serializers.DateTimeField(help_text="ISO 8601 with a time zone")
    metric = serializers.CharField()
    value = serializers.FloatField()


class ReadingErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ReadingResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = ReadingErrorSerializer(many=True)
    errors_truncated = serializers.BooleanField()


class RuleSerializer(serializers.ModelSerializer):
    conditions = serializers.JSONField()

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


class SignalSerializer(serializers.ModelSerializer):
    reference = serializers.SerializerMethodField()
    device = serializers.CharField(source="device.serial")
    rule = serializers.CharField(source="rule.name")
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
            "service_request",
        ]

    @extend_schema_field(serializers.CharField())
    def get_reference(self, obj) -> str:
        return f"SIG-{obj.pk}"
