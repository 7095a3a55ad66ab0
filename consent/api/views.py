from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from clearinghouse.common.api.problems import Conflict
from partners.api.base import PartnerAPIView, PartnerScopedViewSet
from partners.models import Scope
from partners.selectors import active_partner_by_slug

from .. import identity, selectors, services
from ..catalogue import CATEGORIES, PURPOSES
from ..models import ConsentGrant
from .serializers import (
    IDENTIFIER_PARAMETERS,
    CatalogueSerializer,
    ConsentCreateSerializer,
    ConsentSerializer,
    ConsentStatusQuerySerializer,
    ConsentStatusSerializer,
)


class ConsentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet):
    """Consents held by the calling partner (as grantee). Partners record consents they collected
    at their own touchpoints, with evidence; each grant gets a signed receipt."""

    model = ConsentGrant
    serializer_class = ConsentSerializer
    required_scopes = {"GET": Scope.CONSENT_READ, "POST": Scope.CONSENT_WRITE}
    ordering = "-granted_at"

    def scoped_queryset(self, partner):
        return ConsentGrant.objects.for_partner(partner).select_related("grantee")

    @extend_schema(request=ConsentCreateSerializer, responses={201: ConsentSerializer})
    def create(self, request):
        body = ConsentCreateSerializer(data=request.data, context={"programme": self.partner})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        grantee = self.partner
        if data.get("grantee"):
            grantee = active_partner_by_slug(data["grantee"])
            if grantee is None:
                raise exceptions.ValidationError({"grantee": "No active partner has this slug."})
        try:
            with transaction.atomic():
                customer = services.customer_resolve(
                    identifier=data["identifier"], partner=self.partner
                )
                grant = services.consent_grant(
                    customer=customer,
                    grantee=grantee,
                    purpose=data["purpose"],
                    categories=data.get("categories"),
                    policy_version=data.get("policy_version"),
                    source=ConsentGrant.Source.PARTNER,
                    collected_by=self.partner,
                    evidence={
                        **data["evidence"],
                        "collected_at": data["evidence"]["collected_at"].isoformat(),
                    },
                    expires_at=data.get("expires_at"),
                )
        except services.DuplicateGrant as exc:
            raise Conflict(exc.messages[0], code="duplicate_consent") from exc
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from exc
        return Response(ConsentSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ConsentSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Relay a customer's withdrawal made at the partner's touchpoint."""
        grant = services.consent_revoke(
            grant=self.get_object(), ended_by=ConsentGrant.Ended.PARTNER
        )
        return Response(ConsentSerializer(grant).data)


class ConsentStatusView(PartnerAPIView):
    """What one customer currently allows the calling partner, per purpose. An unknown customer
    answers like one who allows nothing."""

    required_scopes = {"GET": Scope.CONSENT_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=list(identity.KINDS), required=True),
            *IDENTIFIER_PARAMETERS[1:],
        ],
        responses=ConsentStatusSerializer,
    )
    def get(self, request):
        query = ConsentStatusQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            parsed = identity.parse_identifier(
                kind=query.validated_data["kind"],
                value=query.validated_data.get("value"),
                sha256=query.validated_data.get("sha256"),
                programme_id=self.partner.pk,
            )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"identifier": exc.messages}) from exc
        customer = selectors.customer_by_identifier(parsed)
        data = {
            "customer": customer.pk if customer else None,
            "purposes": selectors.consent_status(partner=self.partner, customer=customer),
        }
        return Response(ConsentStatusSerializer(data).data)


class CatalogueView(PartnerAPIView):
    """The purposes (with their current policy text) and data categories."""

    required_scopes = {"GET": Scope.PARTNER_READ}

    @extend_schema(responses=CatalogueSerializer)
    def get(self, request):
        return Response(
            {
                "purposes": [
                    {
                        "key": p.key,
                        "label": p.label,
                        "policy_version": p.current_version,
                        "policy": p.current_policy,
                        "default_categories": list(p.default_categories),
                    }
                    for p in PURPOSES.values()
                ],
                "categories": [
                    {"key": c.key, "label": c.label, "description": c.description}
                    for c in CATEGORIES.values()
                ],
            }
        )
