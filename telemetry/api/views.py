"""The telemetry API: devices, readings (streamed, COPY), rules and signals. Everything is the
calling manufacturer's own: another partner's device, rule or signal is a 404."""

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from clearinghouse.common.api.bodies import STREAMED, PayloadTooLarge
from clearinghouse.common.api.pagination import CursorPagination
from clearinghouse.common.api.params import choice_param
from clearinghouse.common.streams import (
    JSON,
    NDJSON,
    HashingReader,
    idempotent,
    json_rows,
    ndjson_rows,
)
from clearinghouse.records.models import IdempotencyKey
from partners.api.base import PartnerAPIView
from partners.models import Scope

from .. import selectors, services
from ..ingest import BatchTooLarge
from ..models import Device, ServiceSignal
from .serializers import (
    ONE_OR_MANY_DEVICES,
    ONE_OR_MANY_DEVICES_IN,
    READINGS_REQUEST,
    DeviceSerializer,
    ReadingResultSerializer,
    RuleSerializer,
    SignalSerializer,
)


def _invalid(exc):
    return exceptions.ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    )


def _page(view, request, queryset, serializer, ordering):
    paginator = view.pagination_class()
    view.ordering = ordering
    rows = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(rows, many=True).data)


class ReadingsView(PartnerAPIView):
    """Push readings: a JSON array (or one reading) or NDJSON, up to ``TELEMETRY_MAX_BATCH``
    per request."""

    required_scopes = {"POST": Scope.TELEMETRY_WRITE}
    parser_classes = STREAMED  # the body is streamed, never loaded whole
    max_body_setting = "INGEST_MAX_BODY_BYTES"

    @extend_schema(
        request=READINGS_REQUEST,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={
            200: ReadingResultSerializer,
            413: OpenApiResponse(description="more readings than the batch limit"),
        },
    )
    def post(self, request):
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != JSON and content_type not in NDJSON:
            raise exceptions.UnsupportedMediaType(content_type or "none")
        reader = HashingReader(request._request)
        partner = self.partner
        limit = settings.TELEMETRY_MAX_BATCH

        def process():
            if content_type == JSON:
                _, rows = json_rows(reader)
            else:
                rows = ndjson_rows(reader)
            try:
                summary = services.readings_ingest(partner=partner, rows=rows, max_rows=limit)
            except BatchTooLarge as exc:
                raise PayloadTooLarge(
                    f"A batch holds at most {limit} readings; nothing was stored.",
                    code="batch_too_large",
                ) from exc
            return 200, "application/json", orjson.dumps(summary)

        status, ctype, body = idempotent(
            store=IdempotencyKey,
            partner=partner,
            key=request.headers.get("Idempotency-Key"),
            reader=reader,
            process=process,
            method=request.method,
            route=request.resolver_match.route,
        )
        return HttpResponse(body, status=status, content_type=ctype)


class DevicesView(PartnerAPIView):
    """Register devices (one object or an array; re-registering a serial updates it) and list
    your devices."""

    pagination_class = CursorPagination  # GET answers a page (and the schema says so)
    required_scopes = {"GET": Scope.TELEMETRY_READ, "POST": Scope.TELEMETRY_WRITE}

    @extend_schema(
        parameters=[OpenApiParameter("model_name", str)],
        responses=DeviceSerializer(many=True),
    )
    def get(self, request):
        qs = selectors.device_list(partner=self.partner)
        if request.query_params.get("model_name"):
            qs = qs.filter(model_name=request.query_params["model_name"])
        return _page(self, request, qs, DeviceSerializer, ("serial", "id"))

    @extend_schema(
        request={"application/json": ONE_OR_MANY_DEVICES_IN},
        responses={201: ONE_OR_MANY_DEVICES},
    )
    def post(self, request):
        data = request.data
        single = isinstance(data, dict)
        rows = [data] if single else data
        if not isinstance(rows, list) or not rows or len(rows) > 10000:
            raise exceptions.ValidationError(
                {"detail": "send one device object or an array of 1-10000"}
            )
        try:
            devices = services.devices_register(partner=self.partner, rows=rows)
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        out = DeviceSerializer(devices, many=True).data
        return Response(out[0] if single else out, status=201)


class DeviceDetailView(PartnerAPIView):
    """One of your devices, by serial."""

    required_scopes = {"GET": Scope.TELEMETRY_READ}

    @extend_schema(responses=DeviceSerializer)
    def get(self, request, serial):
        try:
            device = selectors.device_get(partner=self.partner, serial=serial)
        except Device.DoesNotExist as exc:
            raise exceptions.NotFound() from exc
        return Response(DeviceSerializer(device).data)


class RulesView(PartnerAPIView):
    """Your service rules (GET) and a new one (POST)."""

    pagination_class = CursorPagination  # GET answers a page (and the schema says so)
    required_scopes = {"GET": Scope.TELEMETRY_READ, "POST": Scope.TELEMETRY_WRITE}

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request):
        qs = selectors.rule_list(partner=self.partner)
        return _page(self, request, qs, RuleSerializer, ("-created_at", "-id"))

    @extend_schema(request=RuleSerializer, responses={201: RuleSerializer})
    def post(self, request):
        shape = RuleSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        try:
            rule = services.rule_create(partner=self.partner, **shape.validated_data)
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(RuleSerializer(rule).data, status=201)


class RuleActiveView(PartnerAPIView):
    """Switch one of your rules on (``activate``) or off (``deactivate``)."""

    required_scopes = {"POST": Scope.TELEMETRY_WRITE}

    @extend_schema(
        operation_id="v1_telemetry_rules_set_active",
        request=None,
        parameters=[
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=["activate", "deactivate"])
        ],
        responses=RuleSerializer,
    )
    def post(self, request, pk, action):
        rule = selectors.rule_list(partner=self.partner).filter(pk=pk).first()
        if rule is None:
            raise exceptions.NotFound()
        if action not in ("activate", "deactivate"):
            raise exceptions.ValidationError({"action": "must be activate or deactivate"})
        rule = services.rule_set_active(rule=rule, active=action == "activate")
        return Response(RuleSerializer(rule).data)


class SignalsView(PartnerAPIView):
    """Your devices' service signals, newest first."""

    pagination_class = CursorPagination  # GET answers a page (and the schema says so)
    required_scopes = {"GET": Scope.TELEMETRY_READ}

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ServiceSignal.Status.values)],
        responses=SignalSerializer(many=True),
    )
    def get(self, request):
        status = choice_param(request, "status", ServiceSignal.Status.values)
        qs = selectors.signal_list(partner=self.partner, status=status)
        return _page(self, request, qs, SignalSerializer, ("-opened_at", "-id"))


def _signal(partner, pk):
    try:
        return selectors.signal_list(partner=partner).get(pk=pk)
    except ServiceSignal.DoesNotExist as exc:
        raise exceptions.NotFound() from exc


class SignalDetailView(PartnerAPIView):
    """One of your signals."""

    required_scopes = {"GET": Scope.TELEMETRY_READ}

    @extend_schema(responses=SignalSerializer)
    def get(self, request, pk):
        return Response(SignalSerializer(_signal(self.partner, pk)).data)


class SignalActionView(PartnerAPIView):
    """Acknowledge, resolve or dismiss one of your signals."""

    required_scopes = {"POST": Scope.TELEMETRY_WRITE}

    @extend_schema(
        operation_id="v1_telemetry_signals_transition",
        request=None,
        parameters=[
            OpenApiParameter(
                "action", str, OpenApiParameter.PATH, enum=["acknowledge", "resolve", "dismiss"]
            )
        ],
        responses=SignalSerializer,
    )
    def post(self, request, pk, action):
        signal = _signal(self.partner, pk)
        try:
            signal = services.signal_transition(signal=signal, action=action)
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(SignalSerializer(_signal(self.partner, signal.pk)).data)
