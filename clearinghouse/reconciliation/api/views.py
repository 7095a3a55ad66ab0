"""The discrepancy queue over the API: list with filters, detail with evidence, resolve,
dismiss, reopen, comment; the pair's reconciliation runs; and a manufacturer's warranty terms
per product model."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from clearinghouse.common.api.fields import (
    GtinField,
    MomentField,
    StrictCharField,
    StrictModelSerializer,
)
from clearinghouse.common.api.params import SERIAL_WHAT, choice_param, pattern_param
from clearinghouse.common.api.problems import Conflict
from clearinghouse.common.api.schema import SERIAL_PATTERN
from clearinghouse.records.api.views import request_id
from partners.api.authentication import request_actor
from partners.api.base import PartnerAPIView, PartnerScopedViewSet
from partners.models import Scope

from .. import selectors, services
from ..engine import SEVERITY
from ..models import Discrepancy, ReconciliationRun, WarrantyTerms


def _invalid(exc):
    """A service's ValidationError as the API's 400, on its fields where it names them."""
    return exceptions.ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    )


class NoteSerializer(serializers.Serializer):
    action = StrictCharField()
    partner = StrictCharField(source="partner.name", allow_null=True, default=None)
    user = StrictCharField(
        source="user.email",
        allow_null=True,
        default=None,
        help_text="the staff member who acted (as the portal shows them), or null",
    )
    via_api = serializers.SerializerMethodField(help_text="made with an API key")
    text = StrictCharField()
    created_at = MomentField()

    def get_via_api(self, note) -> bool:
        return note.credential_id is not None


class EvidenceSerializer(serializers.Serializer):
    ref = serializers.UUIDField()
    kind = StrictCharField()
    role = StrictCharField()
    own = serializers.BooleanField()
    occurred_at = MomentField()
    recorded_by = serializers.DictField()
    product = serializers.DictField(required=False, allow_null=True)
    payload = serializers.DictField()


class DiscrepancySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = StrictCharField(help_text=", ".join(SEVERITY))
    severity = StrictCharField()
    status = StrictCharField()
    manufacturer = StrictCharField(source="manufacturer.slug")
    retailer = StrictCharField(source="retailer.slug", allow_null=True, default=None)
    product = serializers.DictField(
        source="shown_product",
        allow_null=True,
        help_text="gtin and serial, when you may see the product of one of its records",
    )
    detail = serializers.DictField(
        source="shown_detail",
        help_text="the finding's figures, each only when you may see the field it comes from",
    )
    opened_at = MomentField()
    updated_at = MomentField()


class DiscrepancyDetailSerializer(DiscrepancySerializer):
    evidence = EvidenceSerializer(many=True)
    notes = NoteSerializer(many=True)


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=2000)


class CommentSerializer(serializers.Serializer):
    text = StrictCharField(max_length=2000)


TRANSITION_RESPONSES = {
    200: DiscrepancyDetailSerializer,
    409: OpenApiResponse(description="The discrepancy is not in the state the action starts from."),
}


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    manufacturer = StrictCharField(source="manufacturer.slug")
    retailer = StrictCharField(source="retailer.slug")
    trigger = StrictCharField()
    status = StrictCharField()
    started_at = MomentField()
    finished_at = MomentField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    counts = serializers.DictField()


FILTERS = {
    "status": [s.value for s in Discrepancy.Status],
    "kind": list(SEVERITY),
    "severity": ["low", "medium", "high"],
}


class DiscrepancyViewSet(mixins.ListModelMixin, PartnerScopedViewSet):
    """The discrepancy queue both parties work. A discrepancy whose evidence you may not see (any
    more) is not shown to you."""

    model = Discrepancy
    serializer_class = DiscrepancySerializer
    required_scopes = {"GET": Scope.DISCREPANCIES_READ, "POST": Scope.DISCREPANCIES_WRITE}
    ordering = ("-opened_at", "-id")

    def scoped_queryset(self, partner):
        queryset = selectors.discrepancies_visible(partner=partner)
        params = self.request.query_params
        if self.action == "list":
            for name, choices in FILTERS.items():
                value = choice_param(self.request, name, choices)
                if value:
                    queryset = queryset.filter(**{name: value})
        if pattern_param(self.request, "serial", SERIAL_PATTERN, SERIAL_WHAT):
            queryset = selectors.with_unit_shown(
                queryset.filter(serial=params["serial"]), partner=partner
            )
        return queryset

    @extend_schema(
        parameters=[
            *(OpenApiParameter(name, str, enum=choices) for name, choices in FILTERS.items()),
            OpenApiParameter("serial", str, pattern=SERIAL_PATTERN),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return selectors.discrepancies_shown(
            partner=self.partner,
            discrepancies=page,
            channel="api",
            request_id=request_id(self.request),
        )

    def _detail(self, discrepancy):
        evidence = selectors.discrepancy_evidence(
            partner=self.partner,
            discrepancy=discrepancy,
            channel="api",
            request_id=request_id(self.request),
        )
        selectors.discrepancies_shown(partner=self.partner, discrepancies=[discrepancy])
        data = DiscrepancySerializer(discrepancy).data
        data["evidence"] = EvidenceSerializer(evidence, many=True).data
        data["notes"] = NoteSerializer(selectors.discrepancy_history(discrepancy), many=True).data
        return data

    @extend_schema(responses=DiscrepancyDetailSerializer)
    def retrieve(self, request, pk=None):
        return Response(self._detail(self.get_object()))

    def _transition(self, request, verb):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, credential = request_actor(request)
        try:
            discrepancy = services.discrepancy_transition(
                discrepancy=self.get_object(),
                action=verb,
                partner=self.partner,
                reason=body.validated_data["reason"],
                user=user,
                credential=credential,
            )
        except services.WrongState as exc:
            raise Conflict(exc.messages[0], code="wrong_state") from exc
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(self._detail(discrepancy))

    @extend_schema(request=ReasonSerializer, responses=TRANSITION_RESPONSES)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._transition(request, "resolve")

    @extend_schema(request=ReasonSerializer, responses=TRANSITION_RESPONSES)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return self._transition(request, "dismiss")

    @extend_schema(request=ReasonSerializer, responses=TRANSITION_RESPONSES)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._transition(request, "reopen")

    @extend_schema(request=CommentSerializer, responses={201: DiscrepancyDetailSerializer})
    @action(detail=True, methods=["post"])
    def comments(self, request, pk=None):
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        discrepancy = self.get_object()
        user, credential = request_actor(request)
        services.discrepancy_comment(
            discrepancy=discrepancy,
            partner=self.partner,
            text=body.validated_data["text"],
            user=user,
            credential=credential,
        )
        return Response(self._detail(discrepancy), status=201)


class RunViewSet(mixins.ListModelMixin, PartnerScopedViewSet):
    """Reconciliation runs of your pairs, newest first, with counts and durations."""

    model = ReconciliationRun
    serializer_class = RunSerializer
    required_scopes = {"GET": Scope.DISCREPANCIES_READ}
    ordering = ("-started_at", "-id")
    lookup_value_regex = "[0-9]+"

    def scoped_queryset(self, partner):
        return ReconciliationRun.objects.for_partner(partner).select_related(
            "manufacturer", "retailer"
        )


class WarrantyTermsSerializer(StrictModelSerializer):
    gtin = GtinField(help_text="8, 12, 13 or 14 digits; answered as GTIN-14")

    class Meta:
        model = WarrantyTerms
        fields = ["id", "gtin", "model_name", "warranty_months", "updated_at"]
        read_only_fields = ["id", "updated_at"]
        extra_kwargs = {"warranty_months": {"min_value": 1, "max_value": WarrantyTerms.MAX_MONTHS}}


class WarrantyTermsListView(PartnerAPIView):
    """Your warranty terms per product model (manufacturers): a claim on a unit whose
    registration states no period is checked against these. POST sets one model's terms
    (creates them, or replaces those of the same GTIN); a change makes the next run of each of
    your pairs a full one."""

    required_scopes = {"GET": Scope.RECORDS_READ, "POST": Scope.RECORDS_WRITE}

    @extend_schema(responses=WarrantyTermsSerializer(many=True))
    def get(self, request):
        terms = WarrantyTerms.objects.for_partner(self.partner)
        return Response(WarrantyTermsSerializer(terms, many=True).data)

    @extend_schema(request=WarrantyTermsSerializer, responses={200: WarrantyTermsSerializer})
    def post(self, request):
        body = WarrantyTermsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, credential = request_actor(request)
        try:
            terms = services.warranty_terms_set(
                manufacturer=self.partner, actor=user, credential=credential, **body.validated_data
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(WarrantyTermsSerializer(terms).data)


class WarrantyTermsDetailView(PartnerAPIView):
    """One product model's terms: read, or remove (its claims fall back to the default)."""

    required_scopes = {"GET": Scope.RECORDS_READ, "DELETE": Scope.RECORDS_WRITE}

    def _terms(self, pk):
        terms = WarrantyTerms.objects.for_partner(self.partner).filter(pk=pk).first()
        if terms is None:
            raise exceptions.NotFound()
        return terms

    @extend_schema(responses=WarrantyTermsSerializer)
    def get(self, request, pk):
        return Response(WarrantyTermsSerializer(self._terms(pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        terms = self._terms(pk)
        user, credential = request_actor(request)
        services.warranty_terms_delete(terms=terms, actor=user, credential=credential)
        return Response(status=204)
