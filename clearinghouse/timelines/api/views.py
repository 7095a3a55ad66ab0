"""The timelines API: everything a partner may see about one product unit (with the links
reconciliation made) or one customer, oldest first — every read through the one visibility
decision."""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from clearinghouse.common.api.params import SERIAL_WHAT, choice_param, pattern_param
from clearinghouse.common.api.schema import GTIN_PATTERN, SERIAL_PATTERN, SHA256_PATTERN
from clearinghouse.records import visibility
from clearinghouse.records.api.schema import RecordSerializer
from clearinghouse.records.api.views import RecordReads, parse_gtin
from consent import identity
from consent.api.serializers import IDENTIFIER_PARAMETERS
from consent.selectors import customer_by_identifier
from partners.api.base import PartnerAPIView
from partners.models import Scope

from ..selectors import attach_links
from .schema import represent


class UnitTimelineView(RecordReads, PartnerAPIView):
    """Everything you may see about one product unit (GTIN + serial), oldest first, marked by
    which party recorded each event, each with the records reconciliation matched it with."""

    required_scopes = {"GET": Scope.RECORDS_READ}
    ordering = ("occurred_at", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter("gtin", str, OpenApiParameter.PATH, pattern=GTIN_PATTERN),
            OpenApiParameter("serial", str, OpenApiParameter.PATH, pattern=SERIAL_PATTERN),
        ],
        responses=RecordSerializer(many=True),
    )
    def get(self, request: Request, gtin: str, serial: str) -> Response:
        if not re.fullmatch(SERIAL_PATTERN.strip("^$"), serial):
            raise exceptions.ValidationError({"serial": f"must be {SERIAL_WHAT}"})
        visible = visibility.unit_timeline(
            partner=self.partner, gtin=parse_gtin(gtin), serial=serial
        )
        paginator, data = self.read_page(request, visible)
        whole = not (paginator.has_next or paginator.has_previous)
        attach_links(data, unit=None if whole else visible)
        return paginator.get_paginated_response([represent(item) for item in data])


class CustomerTimelineView(RecordReads, PartnerAPIView):
    """Everything you may see about one customer, named by an identifier you hold (or by the
    pseudonymous reference a shared record showed you), oldest first. An unknown customer has
    an empty timeline."""

    required_scopes = {"GET": Scope.RECORDS_READ}
    ordering = ("occurred_at", "id")

    @extend_schema(
        parameters=[
            *IDENTIFIER_PARAMETERS,
            OpenApiParameter("customer", uuid.UUID, description="pseudonymous reference"),
        ],
        responses=RecordSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        customer_id = None
        choice_param(request, "kind", identity.KINDS)
        pattern_param(request, "sha256", SHA256_PATTERN, "64 hexadecimal characters")
        if params.get("customer") and any(params.get(n) for n in ("kind", "value", "sha256")):
            raise exceptions.ValidationError(
                {"customer": "name the customer one way: ?customer=<ref> or ?kind=…&value=…"}
            )
        if params.get("customer"):
            try:
                customer_id = uuid.UUID(params["customer"])
            except ValueError as exc:
                raise exceptions.ValidationError({"customer": "must be a UUID"}) from exc
        elif params.get("kind"):
            if len(params.get("value") or "") > 320:
                raise exceptions.ValidationError({"value": "must be at most 320 characters"})
            try:
                parsed = identity.parse_identifier(
                    kind=params["kind"],
                    value=params.get("value"),
                    sha256=params.get("sha256"),
                    programme_id=self.partner.pk,
                )
            except DjangoValidationError as exc:
                raise exceptions.ValidationError({"identifier": exc.messages}) from exc
            customer = customer_by_identifier(parsed)
            customer_id = customer.pk if customer else uuid.UUID(int=0)
        else:
            raise exceptions.ValidationError(
                {"customer": "name the customer by ?customer=<ref> or ?kind=…&value=…"}
            )
        return self.page(
            request, visibility.customer_timeline(partner=self.partner, customer_id=customer_id)
        )
