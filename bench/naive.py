"""The naive ingest endpoint "built the common way", for comparison only (never routed outside
the benchmark settings): DRF parses the whole JSON array into memory, a ``ModelSerializer`` with
``many=True`` validates it row by row, each row's customer is resolved on its own (one
``customer_resolve`` per row), and the rows go in with ``bulk_create(ignore_conflicts=True)``.

It uses the same Bearer-key authentication, scope check and rate limit as the real endpoint.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from clearinghouse.records.gtin import normalise_gtin
from clearinghouse.records.models import InteractionRecord
from consent.identity import parse_identifier
from consent.services import customer_resolve
from partners.api.base import PartnerAPIView
from partners.models import Scope
from partners.record_kinds import KINDS


class CustomerField(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["email", "phone", "loyalty"])
    value = serializers.CharField(required=False)
    sha256 = serializers.CharField(required=False)


class NaiveRecordSerializer(serializers.ModelSerializer):
    customer = CustomerField(write_only=True)

    class Meta:
        model = InteractionRecord
        fields = ["external_id", "kind", "occurred_at", "gtin", "serial", "payload", "customer"]

    def validate_kind(self, value):
        if value not in KINDS:
            raise serializers.ValidationError(f"must be one of {', '.join(KINDS)}")
        return value

    def validate_gtin(self, value):
        if not value:
            return value
        try:
            return normalise_gtin(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs):
        partner = self.context["partner"]
        kind = KINDS[attrs["kind"]]
        payload, errors = kind.validate(attrs.get("payload", {}))
        if errors:
            raise serializers.ValidationError(errors)
        attrs["payload"] = payload
        given = attrs.pop("customer")
        try:
            identifier = parse_identifier(
                kind=given["kind"],
                value=given.get("value"),
                sha256=given.get("sha256"),
                programme_id=partner.pk,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"customer": exc.messages}) from exc
        attrs["customer"] = customer_resolve(
            identifier=identifier, partner=partner, categories=[kind.category]
        )
        attrs["purpose"] = kind.purpose
        attrs["category"] = kind.category
        return attrs


class NaiveRecordsView(PartnerAPIView):
    required_scopes = {"POST": Scope.RECORDS_WRITE}
    parser_classes = [JSONParser]

    def post(self, request):
        serializer = NaiveRecordSerializer(
            data=request.data, many=True, context={"partner": self.partner}
        )
        serializer.is_valid(raise_exception=True)
        partner = self.partner
        objs = [
            InteractionRecord(**row, submitted_by=partner, content_hash="naive")
            for row in serializer.validated_data
        ]
        created = InteractionRecord.objects.bulk_create(objs, ignore_conflicts=True)
        return Response({"created": len(created)})
