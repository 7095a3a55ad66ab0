from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import ApiCredential, Scope
from ..services import credential_revoke
from .authentication import ApiClient, request_actor, request_scopes
from .base import PartnerAPIView, PartnerScopedViewSet
from .serializers import CredentialSerializer, PartnerMeSerializer, RevokeSerializer


class PartnerMeView(PartnerAPIView):
    """The calling partner, the credential in use and its scopes."""

    required_scopes = {"GET": Scope.PARTNER_READ}

    @extend_schema(responses=PartnerMeSerializer, operation_id="partners_me")
    def get(self, request):
        credential = request.user.credential if isinstance(request.user, ApiClient) else None
        data = {
            "partner": self.partner,
            "credential": credential,
            "scopes": sorted(request_scopes(request)),
        }
        return Response(PartnerMeSerializer(data).data)


class CredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PartnerScopedViewSet):
    """The partner's API credentials. Keys are created in the portal, where the secret is shown
    once; here they can be listed and revoked."""

    model = ApiCredential
    serializer_class = CredentialSerializer
    required_scopes = {"GET": Scope.CREDENTIALS_MANAGE, "POST": Scope.CREDENTIALS_MANAGE}

    @extend_schema(request=RevokeSerializer, responses=CredentialSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        credential = self.get_object()
        body = RevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor, by_credential = request_actor(request)
        credential = credential_revoke(
            credential=credential,
            actor=actor,
            by_credential=by_credential,
            reason=body.validated_data.get("reason", ""),
        )
        return Response(CredentialSerializer(credential).data)
