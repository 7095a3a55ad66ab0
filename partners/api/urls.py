from django.urls import path
from rest_framework.routers import SimpleRouter

from ..agreements.api import AgreementViewSet
from ..webhooks.api import WebhookDeliveryViewSet, WebhookEndpointViewSet
from .views import CredentialViewSet, PartnerMeView

router = SimpleRouter(trailing_slash=False)
router.register("credentials", CredentialViewSet, basename="credential")
router.register("agreements", AgreementViewSet, basename="agreement")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("partners/me", PartnerMeView.as_view(), name="partner-me"),
    *router.urls,
]
