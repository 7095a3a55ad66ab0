from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import CredentialViewSet, PartnerMeView

router = SimpleRouter(trailing_slash=False)
router.register("credentials", CredentialViewSet, basename="credential")

urlpatterns = [
    path("partners/me", PartnerMeView.as_view(), name="partner-me"),
    *router.urls,
]
