"""The records API: ingest (one record, a JSON array or NDJSON), lists and details — every read
through the one visibility decision; ``RecordReads`` pages any view that lists records."""

import uuid

import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from clearinghouse.common.api.bodies import STREAMED, PayloadTooLarge
from clearinghouse.common.api.pagination import CursorPagination
from clearinghouse.common.api.params import SERIAL_WHAT, boolean_param, choice_param, pattern_param
from clearinghouse.common.api.problems import PROBLEM_CONTENT_TYPE, problem
from clearinghouse.common.api.schema import GTIN_PATTERN, GTIN_SCHEMA, SERIAL_PATTERN
from clearinghouse.common.streams import (
    JSON,
    NDJSON,
    HashingReader,
    idempotent,
    json_rows,
    ndjson_rows,
)
from partners.api.base import PartnerAPIView
from partners.models import Scope
from partners.record_kinds import KINDS

from .. import visibility
from ..gtin import normalise_gtin
from ..ingest import BatchTooLarge
from ..models import IdempotencyKey
from ..services import records_ingest
from .schema import INGEST_REQUEST, BatchResultSerializer, RecordSerializer, represent


def request_id(request):
    given = request.headers.get("X-Request-ID", "")
    return given[:64] if given.isprintable() and given else uuid.uuid4().hex


class RecordReads:
    """Paginate a ``Visible`` and project its page through ``visibility.read``."""

    ordering = ("-received_at", "-id")
    pagination_class = CursorPagination  # also tells the schema that GET answers a page

    def read_page(self, request, visible):
        """The paginator (it remembers the cursor) and its page of ``visible``, projected."""
        paginator = self.pagination_class()
        paginator.ordering = self.ordering
        data = visible.page(
            paginator, request, view=self, channel="api", request_id=request_id(request)
        )
        return paginator, data

    def page(self, request, visible):
        paginator, data = self.read_page(request, visible)
        return paginator.get_paginated_response([represent(item) for item in data])


class RecordsView(RecordReads, PartnerAPIView):
    """Submit records (POST) and list the records you may see (GET)."""

    required_scopes = {"GET": Scope.RECORDS_READ, "POST": Scope.RECORDS_WRITE}
    parser_classes = STREAMED  # the body is streamed, never loaded whole
    max_body_setting = "INGEST_MAX_BODY_BYTES"

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=list(KINDS)),
            OpenApiParameter(
                "gtin", str, pattern=GTIN_PATTERN, description=GTIN_SCHEMA["description"]
            ),
            OpenApiParameter("serial", str, pattern=SERIAL_PATTERN),
            OpenApiParameter(
                "mine", bool, description="true: only yours; false: only shared with you"
            ),
        ],
        responses=RecordSerializer(many=True),
    )
    def get(self, request):
        visible = visibility.visible_records(partner=self.partner)
        params = request.query_params
        kind = choice_param(request, "kind", KINDS)
        if kind:
            visible = visible.filter(kind=kind)
        if pattern_param(request, "gtin", GTIN_PATTERN, "8, 12, 13 or 14 digits"):
            visible = visible.filter(gtin=parse_gtin(params["gtin"]))
        if pattern_param(request, "serial", SERIAL_PATTERN, SERIAL_WHAT):
            visible = visible.filter(serial=params["serial"])
        mine = boolean_param(request, "mine")
        if mine is True:
            visible = visible.filter(submitted_by_id=self.partner.pk)
        elif mine is False:
            visible = visible.exclude(submitted_by_id=self.partner.pk)
        return self.page(request, visible)

    @extend_schema(
        request=INGEST_REQUEST,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={
            200: BatchResultSerializer,
            201: RecordSerializer,
            413: OpenApiResponse(description="more rows than the batch limit"),
        },
    )
    def post(self, request):
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != JSON and content_type not in NDJSON:
            raise exceptions.UnsupportedMediaType(content_type or "none")
        reader = HashingReader(request._request)
        partner = self.partner

        def process():
            if content_type == JSON:
                single, rows = json_rows(reader)
            else:
                single, rows = False, ndjson_rows(reader)
            try:
                results = records_ingest(
                    partner=partner, rows=rows, max_rows=settings.RECORDS_MAX_BATCH
                )
            except BatchTooLarge as exc:
                raise PayloadTooLarge(
                    f"A batch holds at most {settings.RECORDS_MAX_BATCH} records; nothing was stored.",
                    code="batch_too_large",
                ) from exc
            if single:
                return _single_answer(request, results[0], partner)
            accepted = sum(1 for r in results if r.status != "rejected")
            body = {
                "accepted": accepted,
                "created": sum(1 for r in results if r.status == "created"),
                "existing": sum(1 for r in results if r.status == "existing"),
                "rejected": len(results) - accepted,
                "results": [r.as_dict() for r in results],
            }
            return 200, "application/json", orjson.dumps(body)

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


def _single_answer(request, result, partner):
    if result.status == "rejected":
        body = problem(
            400,
            "The record was not accepted; see errors.",
            code="validation",
            errors=[
                {"field": e["field"], "message": e["message"], "code": None} for e in result.errors
            ],
            instance=request.get_full_path(),
        )
        return 400, PROBLEM_CONTENT_TYPE, orjson.dumps(body)
    visible = visibility.visible_records(partner=partner).filter(ref=result.ref)
    record = visible.first(channel="api")
    data = RecordSerializer(record).data
    return (201 if result.status == "created" else 200), "application/json", orjson.dumps(data)


def parse_gtin(value):
    """A GTIN from the request, normalised; a 400 that names the field when it is not one."""
    try:
        return normalise_gtin(value)
    except ValueError as exc:
        raise exceptions.ValidationError({"gtin": f"GTIN {exc}"}) from exc


class RecordDetailView(PartnerAPIView):
    """One record you may see, by its ref."""

    required_scopes = {"GET": Scope.RECORDS_READ}

    @extend_schema(responses=RecordSerializer)
    def get(self, request, ref):
        visible = visibility.visible_records(partner=self.partner).filter(ref=ref)
        record = visible.first(channel="api", request_id=request_id(request))
        if record is None:
            raise exceptions.NotFound()
        return Response(RecordSerializer(record).data)
