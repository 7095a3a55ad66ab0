"""The naive readings endpoint "built the common way", for comparison only (routed under the
benchmark settings): DRF parses the whole JSON array into memory, a ``ModelSerializer`` on the
unmanaged ``Reading`` model with ``many=True`` validates it row by row, each row's device is
resolved on its own (a ``SlugRelatedField``: one query per row) and the rows go in with
``bulk_create(ignore_conflicts=True)``. Same Bearer-key authentication and scope as the real one.
"""

import math

from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from partners.api.base import PartnerAPIView
from partners.models import Scope
from telemetry.catalogue import METRICS
from telemetry.models import Device, Reading


class NaiveReadingSerializer(serializers.ModelSerializer):
    device = serializers.SlugRelatedField(
        slug_field="serial", queryset=Device.objects.none(), write_only=True
    )

    class Meta:
        model = Reading
        fields = ["device", "metric", "ts", "value"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        partner = self.context.get("partner")
        if partner is not None:
            self.fields["device"].queryset = Device.objects.for_partner(partner)

    def validate_metric(self, value):
        if value not in METRICS:
            raise serializers.ValidationError(f"must be one of {', '.join(METRICS)}")
        return value

    def validate_value(self, value):
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number")
        return value

    def validate(self, attrs):
        attrs["device_id"] = attrs.pop("device").pk
        return attrs


class NaiveReadingsView(PartnerAPIView):
    required_scopes = {"POST": Scope.TELEMETRY_WRITE}
    parser_classes = [JSONParser]

    def post(self, request):
        serializer = NaiveReadingSerializer(
            data=request.data, many=True, context={"partner": self.partner}
        )
        serializer.is_valid(raise_exception=True)
        objs = [Reading(**row) for row in serializer.validated_data]
        created = Reading.objects.bulk_create(objs, ignore_conflicts=True)
        return Response({"created": len(created)})
