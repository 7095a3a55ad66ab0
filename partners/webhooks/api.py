"""The webhooks API: register, list, inspect and delete endpoints (the signing secret is in the
answer to the creation and to a rotation, never again), send a test event, and read the delivery
log with manual redelivery. Everything needs the ``webhooks:manage`` scope; another partner's
endpoint or delivery is a 404."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from clearinghouse.common.api.fields import MomentField, StrictCharField, StrictModelSerializer
from clearinghouse.common.api.params import choice_param, is_uuid

from ..api.authentication import request_actor
from ..api.base import PartnerScopedViewSet
from ..models import Scope, WebhookDelivery, WebhookEndpoint, WebhookEventType
from .payloads import event_data
from .selectors import delivery_list
from .services import (
    delivery_redeliver,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    jsonable,
    webhook_ping,
)

# Plain strings for statuses: an enum per serializer field named "status" would collide in the
# schema with the other apps' (a drf-spectacular warning that fails ``check --deploy``).
DELIVERY_STATUSES = [s.value for s in WebhookDelivery.Status]


class EndpointSerializer(StrictModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "active",
            "created_at",
            "secret_rotated_at",
        ]
        read_only_fields = fields


# The receiver's address as ``transport.validate_endpoint_url`` takes it: http(s), a host name
# (on the public internet), no credentials, no fragment. In production only https (the pattern
# says https; development servers also take http).
ENDPOINT_URL_SCHEMA = {
    "type": "string",
    "format": "uri",
    "maxLength": 2000,
    "pattern": (
        r"^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
        r"(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&'()*+,;=:%/-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:%/?-]*)?$"
    ),
}


@extend_schema_field(ENDPOINT_URL_SCHEMA)
class EndpointURLField(StrictCharField):
    """The receiver's address; checked by the service."""


class EndpointCreateSerializer(serializers.Serializer):
    url = EndpointURLField(
        max_length=2000, help_text="HTTPS address of your receiver, without credentials."
    )
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices),
        allow_empty=False,
        min_length=1,  # so that the schema says minItems: 1
        max_length=len(WebhookEventType.values),
    )


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = StrictCharField(
        read_only=True, help_text="The signing secret. Shown only in this answer: keep it."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EventSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    type = StrictCharField(source="event_type", read_only=True)
    created_at = MomentField(read_only=True)
    data = serializers.SerializerMethodField(
        help_text="what the event carries, as you may see it now (built through the sharing "
        "decision at each read, like each attempt); null when none of it is shared any more"
    )

    def get_data(self, event) -> dict | None:
        request = self.context.get("request")
        given = request.headers.get("X-Request-ID", "")[:64] if request is not None else ""
        data = event_data(event, channel="api", request_id=given)
        return None if data is None else jsonable(data)


class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField(read_only=True)
    manual = serializers.BooleanField(read_only=True)
    attempted_at = MomentField(read_only=True)
    duration_ms = serializers.IntegerField(read_only=True)
    status_code = serializers.IntegerField(read_only=True, allow_null=True)
    error = StrictCharField(read_only=True)
    response_excerpt = StrictCharField(read_only=True)


class DeliverySerializer(StrictModelSerializer):
    status = StrictCharField(
        read_only=True, help_text="pending, failed (a retry is due), succeeded or gave_up"
    )
    event = EventSerializer(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempts",
            "redeliveries",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_response_excerpt",
            "acknowledged_signature_ok",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_log"]
        read_only_fields = fields


def _with_secret(issued):
    data = EndpointSerializer(issued.endpoint).data
    data["secret"] = issued.secret
    return data


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet
):
    """Your webhook endpoints, newest first. Each delivery is a signed HTTPS POST (see the
    README: Clearinghouse-Signature, replay window, retries)."""

    model = WebhookEndpoint
    serializer_class = EndpointSerializer
    required_scopes = {
        "GET": Scope.WEBHOOKS_MANAGE,
        "POST": Scope.WEBHOOKS_MANAGE,
        "DELETE": Scope.WEBHOOKS_MANAGE,
    }

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointWithSecretSerializer})
    def create(self, request):
        body = EndpointCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor, credential = request_actor(request)
        issued = endpoint_create(
            partner=self.partner,
            url=body.validated_data["url"],
            description=body.validated_data.get("description", ""),
            event_types=body.validated_data["event_types"],
            actor=actor,
            credential=credential,
        )
        return Response(_with_secret(issued), status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        actor, credential = request_actor(request)
        endpoint_delete(endpoint=self.get_object(), actor=actor, credential=credential)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=EndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret; the old one keeps signing alongside it for 24 hours."""
        actor, credential = request_actor(request)
        issued = endpoint_rotate_secret(
            endpoint=self.get_object(), actor=actor, credential=credential
        )
        return Response(_with_secret(issued))

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Send a test event (type ``ping``) to this endpoint."""
        actor, credential = request_actor(request)
        delivery = webhook_ping(endpoint=self.get_object(), actor=actor, credential=credential)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet
):
    """The delivery log: one row per event and endpoint, newest first, with the last answer;
    the detail has every attempt. Redeliver sends one again now."""

    model = WebhookDelivery
    serializer_class = DeliverySerializer
    required_scopes = {"GET": Scope.WEBHOOKS_MANAGE, "POST": Scope.WEBHOOKS_MANAGE}

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def scoped_queryset(self, partner):
        deliveries = delivery_list(partner=partner)
        if self.action == "retrieve":
            deliveries = deliveries.prefetch_related("attempt_log")
        if self.action != "list":
            return deliveries
        params = self.request.query_params
        status_ = choice_param(self.request, "status", DELIVERY_STATUSES)
        if status_:
            deliveries = deliveries.filter(status=status_)
        if "endpoint" in params:
            endpoint = (
                WebhookEndpoint.objects.for_partner(partner).filter(pk=params["endpoint"]).first()
                if is_uuid(params["endpoint"])
                else None
            )
            if endpoint is None:
                raise exceptions.ValidationError({"endpoint": "No endpoint of yours has this id."})
            deliveries = deliveries.filter(endpoint=endpoint)
        return deliveries

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=DELIVERY_STATUSES),
            OpenApiParameter("endpoint", uuid.UUID, description="an endpoint id"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send the delivery again now (a new round of attempts if it was done)."""
        actor, credential = request_actor(request)
        delivery = delivery_redeliver(
            delivery=self.get_object(), actor=actor, credential=credential
        )
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
