from django.urls import path
from rest_framework.routers import SimpleRouter

from .agreements import AgreementViewSet
from .views import CredentialViewSet, PartnerMeView

router = SimpleRouter(trailing_slash=False)
router.register("credentials", CredentialViewSet, basename="credential")
router.register("agreements", AgreementViewSet, basename="agreement")

urlpatterns = [
    path("partners/me", PartnerMeView.as_view(), name="partner-me"),
    *router.urls,
]
