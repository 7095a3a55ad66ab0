from django.urls import path
from rest_framework.routers import SimpleRouter

from .agreements import AgreementViewSet
from .views import CredentialViewSet, PartnerMeView
from .webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("credentials", CredentialViewSet, basename="credential")
router.register("agreements", AgreementViewSet, basename="agreement")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("partners/me", PartnerMeView.as_view(), name="partner-me"),
    *router.urls,
]
