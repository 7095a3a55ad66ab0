"""GDPR Art. 19 notices for partner systems: the withdrawals and erasures of customers whose
data the calling partner received, and their acknowledgement. Another partner's notice is a
404 like a missing one."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from clearinghouse.common.api.fields import StrictCharField, StrictModelSerializer
from clearinghouse.common.api.params import boolean_param
from partners.api.base import PartnerScopedViewSet
from partners.models import Scope

from .. import notices
from ..models import RecipientNotice


class NoticeSerializer(StrictModelSerializer):
    # Plain strings, not enums: a "kind" enum would collide with the partner's in the schema.
    kind = StrictCharField(read_only=True, help_text="revocation or erasure")
    customer = serializers.UUIDField(
        source="customer_id", read_only=True, help_text="The pseudonymous customer reference."
    )
    consent = serializers.UUIDField(
        source="grant_id",
        read_only=True,
        allow_null=True,
        help_text="The withdrawn consent (revocations only).",
    )
    acknowledged_via = StrictCharField(
        read_only=True, help_text="webhook, api, portal, or empty while unacknowledged"
    )
    acknowledge_url = serializers.SerializerMethodField()

    class Meta:
        model = RecipientNotice
        fields = [
            "id",
            "kind",
            "customer",
            "consent",
            "purpose",
            "occurred_at",
            "created_at",
            "sent_at",
            "acknowledged_at",
            "acknowledged_via",
            "chase_count",
            "last_chased_at",
            "acknowledge_url",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_acknowledge_url(self, notice) -> str:
        return notices.acknowledge_url(notice.pk)


class NoticeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet):
    """Notices to the calling partner: a customer whose data it received withdrew the consent it
    was shared under, or was erased. Stop using the data, then acknowledge (or answer the
    webhook with a signed ``Clearinghouse-Ack``). Unacknowledged notices are sent again."""

    model = RecipientNotice
    serializer_class = NoticeSerializer
    required_scopes = {"GET": Scope.CONSENT_READ, "POST": Scope.CONSENT_WRITE}

    def scoped_queryset(self, partner):
        acknowledged = None
        if self.action == "list":
            acknowledged = boolean_param(self.request, "acknowledged")
        return notices.partner_notices(partner=partner, acknowledged=acknowledged)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "acknowledged", bool, description="false: only those still to acknowledge"
            ),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses=NoticeSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Confirm that you acted on the notice. Acknowledging twice keeps the first time."""
        notice = notices.notice_acknowledge(notice=self.get_object(), via=RecipientNotice.Via.API)
        return Response(NoticeSerializer(notice).data)
